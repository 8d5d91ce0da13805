"""Fixtures for the Azure tests: the stand-in started on a free port, and kagg pointed at it.

``KAGG_AZURE_ARM_URL``, ``KAGG_AZURE_SCM_URL`` and ``KAGG_AZURE_SITE_URL`` point at
the stand-in (the last two as templates with ``{app}``), and ``KAGG_AZURE_TEST_TOKEN``
(kagg's documented test/CI switch) gives the static token the stand-in expects, so
no test ever constructs DefaultAzureCredential.
"""

from __future__ import annotations

import secrets

import pytest

from azure_standin import SUB, TOKEN, AzureStandIn
from notebooks import HELLO, notebook_json  # noqa: F401  (the Azure tests import them from here)


@pytest.fixture
def azure(monkeypatch):
    standin = AzureStandIn().start()
    monkeypatch.setenv("KAGG_AZURE_ARM_URL", standin.arm)
    monkeypatch.setenv("KAGG_AZURE_SCM_URL", standin.scm)
    monkeypatch.setenv("KAGG_AZURE_SITE_URL", standin.site)
    monkeypatch.setenv("KAGG_AZURE_TEST_TOKEN", TOKEN)
    yield standin
    standin.stop()


@pytest.fixture
def appname():
    """A fresh app name per test (names are global on Azure, and in the stand-in)."""
    return f"kt-{secrets.token_hex(4)}"


__all__ = ["SUB", "TOKEN", "azure", "appname", "notebook_json", "HELLO"]

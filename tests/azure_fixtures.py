"""Fixtures for the Azure tests: the stand-in started on a free port, and kagg pointed at it.

``KAGG_AZURE_ARM_URL``, ``KAGG_AZURE_SCM_URL`` and ``KAGG_AZURE_SITE_URL`` point at
the stand-in (the last two as templates with ``{app}``), and ``KAGG_AZURE_TEST_TOKEN``
(kagg's documented test/CI switch) gives the static token the stand-in expects, so
no test ever constructs DefaultAzureCredential.
"""

from __future__ import annotations

import json
import secrets

import pytest

from azure_standin import SUB, TOKEN, AzureStandIn

HELLO = '''
def handler(name: str = "world", times: int = 1):
    return {"greeting": " ".join(["hello " + name] * times)}
'''


def notebook_json(source: str) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5,
                       "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
                       "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                                  "id": "c1", "source": source}]})


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


@pytest.fixture
def nb(tmp_path):
    path = tmp_path / "greet.ipynb"
    path.write_text(notebook_json(HELLO))
    return path


def entry(registry_path, name):
    return json.loads(registry_path.read_text())["endpoints"][name]


__all__ = ["SUB", "TOKEN", "azure", "appname", "nb", "entry", "notebook_json", "HELLO"]

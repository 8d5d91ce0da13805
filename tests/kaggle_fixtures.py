"""Pytest fixtures around the Kaggle stand-in (tests/kaggle_standin/).

``kaggle_standin``: a started stand-in whose ``env()`` (KAGG_KAGGLE_API_URL, KAGGLE_USERNAME,
KAGGLE_KEY) is applied with monkeypatch, so kagg in this process and every ``run_kagg``
subprocess talk to it; KAGGLE_CONFIG_DIR is already a temporary folder (conftest).
``kaggle_env``: that env as a dict, for subprocesses started by hand.
``kaggle_sdk``: the kaggle package itself pointed at the stand-in (its PROD endpoint replaced, as
the notes' last section says), for tests that drive ``KaggleApi`` / ``KaggleClient`` directly.
``kaggle_api()``: an authenticated KaggleApi; ``kaggle_cli(standin, *args)``: the real ``kaggle``
command in a subprocess, pointed at the stand-in (for comparisons such as the download benchmark).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator

import pytest

from kaggle_standin import KaggleStandIn


@pytest.fixture
def kaggle_standin(monkeypatch, tmp_path) -> Iterator[KaggleStandIn]:
    with KaggleStandIn(folder=tmp_path / "kaggle-standin") as standin:
        for key, value in standin.env().items():
            monkeypatch.setenv(key, value)
        yield standin


@pytest.fixture
def kaggle_env(kaggle_standin) -> dict[str, str]:
    return kaggle_standin.env()


@pytest.fixture
def kaggle_sdk(kaggle_standin, monkeypatch) -> KaggleStandIn:
    """Point kagglesdk's PROD endpoint at the stand-in for this test (KaggleApi passes PROD)."""
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

    monkeypatch.setitem(_env_to_endpoint, KaggleEnv.PROD, kaggle_standin.url)
    monkeypatch.delenv("KAGGLE_API_ENVIRONMENT", raising=False)
    return kaggle_standin


def kaggle_api():
    """A KaggleApi authenticated from the environment (use with the ``kaggle_sdk`` fixture)."""
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.authenticate()
    return api


_CLI = ("import sys, kagglesdk.kaggle_env as e; e._env_to_endpoint[e.KaggleEnv.PROD] = sys.argv[1]; "
        "sys.argv = ['kaggle', *sys.argv[2:]]; from kaggle.cli import main; sys.exit(main())")


def kaggle_cli(standin: KaggleStandIn, *args: str, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real ``kaggle`` command line against the stand-in in a subprocess (the CLI passes
    Kaggle's PROD endpoint explicitly, so it is replaced in that process before ``main`` runs)."""
    env = dict(os.environ, **standin.env())
    return subprocess.run([sys.executable, "-c", _CLI, standin.url, *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)

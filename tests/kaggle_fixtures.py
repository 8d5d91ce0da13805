"""Pytest fixtures around the Kaggle stand-in (tests/kaggle_standin/).

``kaggle_standin``: a started stand-in whose ``env()`` (KAGG_KAGGLE_API_URL, KAGGLE_USERNAME,
KAGGLE_KEY) is applied with monkeypatch, so kagg in this process and every ``run_kagg``
subprocess talk to it; KAGGLE_CONFIG_DIR is already a temporary folder (conftest).
``kaggle_env``: that env as a dict, for subprocesses started by hand.
``kaggle_sdk``: the kaggle package itself pointed at the stand-in (its PROD endpoint replaced, as
the notes' last section says), for tests that drive ``KaggleApi`` / ``KaggleClient`` directly.
"""

from __future__ import annotations

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

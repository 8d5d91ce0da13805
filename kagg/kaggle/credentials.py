"""Kaggle credentials through kaggle's own chain (access token, kaggle.json, KAGGLE_USERNAME /
KAGGLE_KEY, ``kaggle auth login``), turned into one-line errors.

``import kaggle`` authenticates at import time (prints help, may call the API): it is imported
here only, on the Kaggle code paths, with its output swallowed and the SDK pointed at
:func:`kagg.kaggle.settings.api_url` first. The secret values live in :class:`Credentials`
only; its ``repr`` hides them, and nothing in kagg writes them anywhere.
"""

from __future__ import annotations

import contextlib
import io
import threading
from dataclasses import dataclass, field
from typing import Optional

from kagg.errors import BadInput, KaggError

HOW_TO = ("set KAGGLE_USERNAME and KAGGLE_KEY, or KAGGLE_API_TOKEN, or put kaggle.json in ~/.kaggle "
          "(create a token at https://www.kaggle.com/settings), or run `kaggle auth login`")

_lock = threading.Lock()


@dataclass(frozen=True)
class Credentials:
    """Who calls Kaggle: a user name and either a legacy key or an access token."""

    username: str
    key: Optional[str] = field(default=None, repr=False)
    token: Optional[str] = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        """The secret values (for tests and scrubbing): never print these."""
        return [v for v in (self.key, self.token) if v]


def point_sdk_at_api() -> str:
    """Make kagglesdk's production endpoint the configured base URL (the one seam); returns it.

    kagglesdk reads its endpoint from a module table when a client is built; both kagg's own
    client and kaggle's ``KaggleApi`` (which always asks for PROD) then reach the same URL.
    """
    from kagglesdk import kaggle_env

    from kagg.kaggle.settings import api_url

    url = api_url()
    kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.PROD] = url
    return url


#: the longest kaggle's chain may take (an access token is checked over the network, with no timeout)
DEADLINE_S = 60.0


def _authenticate() -> "object":
    from kaggle.api.kaggle_api_extended import KaggleApi  # runs kaggle/__init__: authenticates

    api = KaggleApi()
    api.authenticate()
    return api


def _within_deadline(deadline_s: float) -> "object":
    """kaggle's chain in a worker thread, so a token check that hangs cannot hang kagg."""
    box: dict = {}

    def work() -> None:
        try:
            box["api"] = _authenticate()
        except BaseException as exc:  # SystemExit included: re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, daemon=True, name="kaggle-auth")
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        from kagg.errors import OperationFailed

        raise OperationFailed(f"checking the Kaggle credentials took over {deadline_s:g} s (the access token "
                              "check did not answer); check the network or KAGG_KAGGLE_API_URL and try again")
    if "error" in box:
        raise box["error"]
    return box["api"]


def load_credentials() -> Credentials:
    """Authenticate with kaggle's chain; BadInput (one line, how to fix it) when nothing is found."""
    with _lock:
        point_sdk_at_api()
        quiet_out, quiet_err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(quiet_out), contextlib.redirect_stderr(quiet_err):
                api = _within_deadline(DEADLINE_S)
        except SystemExit:
            raise BadInput(f"no Kaggle credentials found: {HOW_TO}") from None
        except ImportError as exc:
            raise BadInput(f"the kaggle package is not installed ({exc}); run: pip install 'kagg[kaggle]'") from None
        except KaggError:
            raise
        except Exception as exc:  # a network error while checking an access token, a bad kaggle.json
            raise BadInput(f"Kaggle credentials could not be checked ({_short(exc)}): {HOW_TO}") from None
    values = api.config_values
    username = values.get(api.CONFIG_NAME_USER)
    if not username:
        raise BadInput(f"the Kaggle credentials found name no user: {HOW_TO}")
    return Credentials(username=str(username), key=values.get(api.CONFIG_NAME_KEY),
                       token=values.get(api.CONFIG_NAME_TOKEN))


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]

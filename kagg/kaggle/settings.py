"""The one seam between kagg and Kaggle's API: ``KAGG_KAGGLE_API_URL``.

The command line, ``kagg batch`` and deployed functions all read the API base URL here, so
tests (a stand-in server) and users behind a proxy change one setting. The poll timings of
``kagg run`` / ``kagg kaggle logs -f`` live here too, so tests can shorten them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kagg.errors import BadInput

DEFAULT_API_URL = "https://api.kaggle.com"
API_URL_VAR = "KAGG_KAGGLE_API_URL"
POLL_VAR = "KAGG_KAGGLE_POLL"


def api_url() -> str:
    """Kaggle's API base URL (no trailing slash): ``$KAGG_KAGGLE_API_URL`` or Kaggle's own."""
    url = (os.environ.get(API_URL_VAR) or DEFAULT_API_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise BadInput(f"{API_URL_VAR}={url!r} is not an http(s) URL; set it to a base URL such as "
                       f"{DEFAULT_API_URL}, or unset it")
    return url


@dataclass(frozen=True)
class PollTimes:
    """How often a running kernel is asked about: ``first`` seconds at the start, growing by
    ``factor`` per quiet poll up to ``most`` (new log lines bring it back to ``first``)."""

    first: float = 10.0
    most: float = 60.0
    factor: float = 1.5


def poll_times() -> PollTimes:
    """``$KAGG_KAGGLE_POLL`` = ``FIRST[,MOST[,FACTOR]]`` in seconds (tests use e.g. ``0.05,0.2``)."""
    text = os.environ.get(POLL_VAR, "").strip()
    if not text:
        return PollTimes()
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise BadInput(f"{POLL_VAR}={text!r}: give FIRST[,MOST[,FACTOR]] in seconds, e.g. 10,60") from None
    if not 1 <= len(parts) <= 3 or any(p <= 0 for p in parts):
        raise BadInput(f"{POLL_VAR}={text!r}: give FIRST[,MOST[,FACTOR]], each above 0, e.g. 10,60")
    first = parts[0]
    most = parts[1] if len(parts) > 1 else max(first, PollTimes.most)
    factor = parts[2] if len(parts) > 2 else PollTimes.factor
    return PollTimes(first=first, most=max(first, most), factor=max(1.0, factor))

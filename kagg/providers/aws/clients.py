"""boto3 sessions and clients, made once per process and shared by every provider instance.

A batch deploys each item through a provider of its own, in parallel threads,
and each call may be retried: making a session (it reads the credential chain
and the config files) and a client (it loads the service model) for each of
them costs time and memory for nothing. So sessions are cached per process,
keyed by the environment that configures them (credentials, profile, endpoint,
config files, home folder), and clients per (service, region) within a session.

boto3 clients are thread-safe, sessions are not: sessions, clients and
everything read from a session (credentials, regions) are made under one lock.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Any, Optional

import kagg
from kagg.errors import BadInput

#: environment variables, besides every ``AWS_*`` one, that change what a session finds
_ALSO = ("HOME", "USERPROFILE")
#: sessions kept per process (one per distinct environment; tests make many)
MAX_SESSIONS = 16

_lock = threading.RLock()
_shared: "OrderedDict[str, Shared]" = OrderedDict()


class Shared:
    """One boto3 session and its clients; every method may be called from any thread."""

    def __init__(self, session: Any):
        self._session = session
        self._clients: dict[tuple[str, str], Any] = {}

    @property
    def session(self) -> Any:
        """The boto3 session itself: use it under :data:`lock` only, or through the methods below."""
        return self._session

    def client(self, service: str, region: str) -> Any:
        from kagg.providers.aws.retry import client_config

        with _lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, region_name=region, config=client_config(f"kagg/{kagg.__version__}"))
            return self._clients[key]

    def credentials(self) -> Any:
        """The chain's credentials, or None; may raise botocore's errors for a broken profile."""
        with _lock:
            return self._session.get_credentials()

    @property
    def region_name(self) -> Optional[str]:
        with _lock:
            return self._session.region_name

    def partition_for(self, region: str) -> str:
        with _lock:
            return self._session.get_partition_for_region(region)

    def regions(self, service: str, partition: Optional[str] = None) -> list[str]:
        """The regions botocore lists for ``service``: in one partition, or in all of them."""
        with _lock:
            partitions = [partition] if partition else self._session.get_available_partitions()
            found: set[str] = set()
            for p in partitions:
                found.update(self._session.get_available_regions(service, partition_name=p))
            return sorted(found)


def environment_key() -> str:
    """A digest of what configures a session here (the digest, not the secrets, is kept)."""
    items = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_") or k in _ALSO)
    return hashlib.sha256(repr(items).encode()).hexdigest()


def shared() -> Shared:
    """The session (and clients) for the current environment, made on first use."""
    key = environment_key()
    with _lock:
        found = _shared.get(key)
        if found is not None:
            _shared.move_to_end(key)
            return found
        try:
            import boto3.session
            from botocore.exceptions import BotoCoreError
        except ModuleNotFoundError:
            raise BadInput("the aws provider needs boto3, which is not installed; "
                           "run: pip install 'kagg[aws]'") from None
        try:
            session = boto3.session.Session()
        except BotoCoreError as exc:
            raise BadInput(f"AWS configuration cannot be used: {exc}; check AWS_PROFILE and ~/.aws/config")
        found = _shared[key] = Shared(session)
        while len(_shared) > MAX_SESSIONS:
            _shared.popitem(last=False)
        return found


def forget() -> None:
    """Drop every cached session and client (the next call reads the credential chain again)."""
    with _lock:
        _shared.clear()

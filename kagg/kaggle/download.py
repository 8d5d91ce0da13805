"""Downloading a kernel's outputs: in parallel, resumable, verified.

Each file is a plain GET of the URL Kaggle lists (no auth header). Files stream to
``NAME.part``; an interrupted one resumes with ``Range`` (a server that ignores it sends the
whole file again). Sizes and sha256 are checked against the kernel's manifest where it names
the file; an HTML page where a data file was expected (an expired URL's error page, which the
kaggle CLI used to save as the output) is refused. A file already there with the manifest's
sha256 is not fetched again.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from kagg.atomic import inside
from kagg.errors import BadInput, OperationFailed

CHUNK = 1 << 20
WORKERS = 8


@dataclass(frozen=True)
class Expected:
    size: Optional[int] = None
    sha256: Optional[str] = None


@dataclass
class Downloaded:
    name: str
    path: Path
    size: int
    sha256: str
    verified: bool     # checked against the manifest
    fetched: bool      # False: already there, unchanged


class Transient(Exception):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _looks_html(head: bytes) -> bool:
    start = head.lstrip()[:64].lower()
    return start.startswith(b"<!doctype html") or start.startswith(b"<html")


def _is_html_name(name: str) -> bool:
    return name.lower().endswith((".html", ".htm"))


class _Fetcher:
    """One requests session per thread (sessions are not thread-safe)."""

    def __init__(self, deadline_s: float):
        self.deadline_s = deadline_s
        self._local = threading.local()

    def session(self):
        s = getattr(self._local, "session", None)
        if s is None:
            import requests

            s = self._local.session = requests.Session()
        return s

    def fetch(self, name: str, url: str, target: Path, expected: Optional[Expected]) -> Downloaded:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential_jitter

        if expected and expected.sha256 and target.is_file() and target.stat().st_size == expected.size \
                and _sha256(target) == expected.sha256:
            return Downloaded(name, target, target.stat().st_size, expected.sha256, True, False)
        started = time.monotonic()
        retrying = Retrying(stop=stop_after_attempt(6) | stop_after_delay(self.deadline_s),
                            wait=wait_exponential_jitter(multiplier=0.5, max=10, jitter=0.5), reraise=True,
                            retry=retry_if_exception_type(Transient))
        try:
            retrying(self._fetch_once, name, url, target, expected, started)
        except Transient as exc:
            raise OperationFailed(f"downloading {name} failed ({exc}); run `kagg kaggle output JOB` "
                                  "again to resume it") from None
        size = target.stat().st_size
        sha = _sha256(target)
        if expected and expected.size is not None and size != expected.size:
            target.unlink()
            raise OperationFailed(f"{name}: downloaded {size} bytes, the kernel's manifest says {expected.size}; "
                                  "run `kagg kaggle output JOB` again")
        if expected and expected.sha256 and sha != expected.sha256:
            target.unlink()
            raise OperationFailed(f"{name}: sha256 {sha[:12]}… differs from the manifest's "
                                  f"{expected.sha256[:12]}…; run `kagg kaggle output JOB` again")
        return Downloaded(name, target, size, sha, bool(expected and (expected.sha256 or expected.size is not None)),
                          True)

    def _fetch_once(self, name: str, url: str, target: Path, expected: Optional[Expected], started: float) -> None:
        import requests

        part = target.with_name(target.name + ".part")
        have = part.stat().st_size if part.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        left = self.deadline_s - (time.monotonic() - started)
        if left <= 0:
            raise Transient("deadline reached")
        try:
            with self.session().get(url, headers=headers, stream=True, timeout=(min(10.0, left), min(60.0, left))) as r:
                if r.status_code == 416 and have:  # the part is already whole
                    part.replace(target)
                    return
                if r.status_code == 429 or r.status_code >= 500:
                    raise Transient(f"HTTP {r.status_code}")
                if r.status_code >= 400:
                    raise OperationFailed(f"downloading {name}: HTTP {r.status_code} from Kaggle's file server; "
                                          "the link may have expired: run `kagg kaggle output JOB` again")
                mode = "ab" if have and r.status_code == 206 else "wb"
                kind = r.headers.get("Content-Type", "")
                first = True
                with open(part, mode) as out:
                    for block in r.iter_content(CHUNK):
                        if first and mode == "wb" and not _is_html_name(name) and \
                                ("text/html" in kind or _looks_html(block)):
                            raise Transient("an HTML page came instead of the file")
                        first = False
                        out.write(block)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise Transient(type(exc).__name__) from None
        part.replace(target)


def download_files(files: list[tuple[str, str]], dest: Path, expected: Optional[dict[str, Expected]] = None,
                   workers: int = WORKERS, on_file: Optional[Callable[[Downloaded], None]] = None,
                   deadline_s: float = 1800.0) -> list[Downloaded]:
    """Fetch ``(name, url)`` pairs into ``dest`` (names may hold folders; none may leave ``dest``)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    targets = []
    for name, url in files:
        if not name or os.path.isabs(name) or ".." in Path(name).parts:
            raise BadInput(f"refusing the output file name {name!r}: it would land outside {dest}")
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        inside(dest, target)
        targets.append((name, url, target))
    fetcher = _Fetcher(deadline_s)
    expected = expected or {}

    def one(item):
        name, url, target = item
        done = fetcher.fetch(name, url, target, expected.get(name))
        if on_file:
            on_file(done)
        return done

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets)))) as pool:
        return list(pool.map(one, targets))

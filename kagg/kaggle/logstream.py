"""Reading a kernel's log as Kaggle streams it: ``GET {base}/v1/kernels/logs/stream/OWNER/SLUG
?versionLabel=vN`` — server-sent events while the session runs (ending with ``END_OF_LOG``), the
stored JSON list of ``{stream_name, time, data}`` once it is over. One connection replaces a
poll per interval; after a reconnect Kaggle replays from the start, so callers count events.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from kagg.kaggle.client import Transient, classify
from kagg.kaggle.jobs import JobId


def log_events(session: Any, base_url: str, job: JobId) -> Iterator[dict]:
    """The events, through ``session`` (kagglesdk's, with its auth and kagg's deadline adapter)."""
    import requests

    url = f"{base_url}/v1/kernels/logs/stream/{job.owner}/{job.slug}"
    headers = {k: v for k, v in session.headers.items() if k.lower() != "content-type"}
    headers["Accept"] = "text/event-stream, */*"
    params = {"versionLabel": job.version_label} if job.version_label else None
    try:
        response = session.get(url, stream=True, headers=headers, params=params)
        response.raise_for_status()
    except Exception as exc:
        raise classify(exc, f"log of {job}") from exc
    with response:
        kind = (response.headers.get("Content-Type") or "").lower()
        try:
            if kind.startswith("text/event-stream"):
                for raw in _sse_lines(response):
                    if not raw or not raw.startswith("data:"):
                        continue
                    payload = raw[5:].strip()
                    if payload == "END_OF_LOG":
                        return
                    try:
                        event = json.loads(payload)
                    except ValueError:
                        event = {"data": payload + "\n"}
                    yield event if isinstance(event, dict) else {"data": str(event)}
                raise Transient("the log stream ended early")
            try:
                entries = json.loads(response.text)
            except ValueError:
                entries = [{"data": line + "\n"} for line in response.text.splitlines()]
            for event in entries if isinstance(entries, list) else [entries]:
                yield event if isinstance(event, dict) else {"data": str(event)}
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise Transient(f"the log stream broke ({type(exc).__name__}: {exc})") from None


def _sse_lines(response: Any) -> Iterator[str]:
    """The stream's lines as soon as each arrives (``iter_lines`` waits for 512-byte chunks,
    which holds a quiet kernel's last lines back for minutes)."""
    raw = response.raw
    read = getattr(raw, "read1", None)
    buffer = b""
    while True:
        block = read(65536) if read is not None else raw.read(1)
        if not block:
            break
        buffer += block
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if buffer:
        yield buffer.decode("utf-8", "replace")

"""``kagg logs``: the function's recent entries from Cloud Logging (entries:list over REST).

A 2nd-gen function logs as its Cloud Run service (resource type
``cloud_run_revision``). When the log cannot be read, the error says where to
see it instead.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from kagg.errors import OperationFailed
from kagg.providers.gcp.clients import logging_url, shared
from kagg.providers.gcp.retry import RetryPolicy, call

PAGE = 200


def log_lines(project: str, region: str, service: str, follow: bool = False,
              poll_seconds: float = 5.0, hours: float = 1.0) -> Iterator[str]:
    """The function's log lines of the last ``hours``; with ``follow``, new ones as they come."""
    policy = RetryPolicy.from_extra({})
    session = shared().session
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - hours * 3600))
    seen: set[str] = set()
    console = (f"https://console.cloud.google.com/run/detail/{region}/{service}/logs?project={project}")
    while True:
        body: dict[str, Any] = {
            "resourceNames": [f"projects/{project}"], "orderBy": "timestamp asc", "pageSize": PAGE,
            "filter": f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}" '
                      f'AND resource.labels.location="{region}" AND timestamp>="{since}"'}
        while True:
            answer = call(lambda: session.post(f"{logging_url()}/v2/entries:list", json=body,
                                               timeout=(10, policy.call_timeout)),
                          policy, "read the function's log", sdk=False)
            if answer.status_code != 200:
                raise OperationFailed(f"Cloud Logging refused to read the log of {service} ({answer.status_code}: "
                                      f"{' '.join(answer.text.split())[:200]}); you need roles/logging.viewer, "
                                      f"or see it at {console}")
            page = answer.json()
            for entry in page.get("entries", []):
                if entry.get("insertId") in seen:
                    continue
                seen.add(entry.get("insertId"))
                since = max(since, entry.get("timestamp", since))
                yield f"{entry.get('timestamp', '')} {_text(entry)}\n"
            if not page.get("nextPageToken"):
                break
            body["pageToken"] = page["nextPageToken"]
        if not follow:
            return
        time.sleep(poll_seconds)


def _text(entry: dict) -> str:
    if "textPayload" in entry:
        return str(entry["textPayload"]).rstrip()
    payload = entry.get("jsonPayload") or {}
    if "message" in payload:
        return str(payload["message"]).rstrip()
    request = entry.get("httpRequest") or {}
    if request:
        return f"{request.get('requestMethod', '')} {request.get('requestUrl', '')} {request.get('status', '')}"
    return str(payload or entry.get("protoPayload") or "")

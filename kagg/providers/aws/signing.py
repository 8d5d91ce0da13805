"""Talking to a deployed function: SigV4 for private function URLs, and its CloudWatch logs.

Private (``AWS_IAM``) function URLs accept only signed requests, so ``kagg
invoke`` and ``kagg monitor`` sign with the same credential chain a deploy
uses; ``kagg logs`` reads the function's log group.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Iterator

from kagg.providers.aws.retry import RetryPolicy, call


def sign_request(credentials: Any, region: str, method: str, url: str, headers: dict[str, str],
                 body: bytes) -> dict[str, str]:
    """The headers to send, with ``Authorization`` (SigV4, service ``lambda``) and the payload hash."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    payload = body or b""
    request = AWSRequest(method=method.upper(), url=url, data=payload, headers=dict(headers))
    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(payload).hexdigest()
    SigV4Auth(credentials.get_frozen_credentials(), "lambda", region).add_auth(request)
    return dict(request.headers.items())


def log_lines(client: Any, function_name: str, follow: bool = False, poll_seconds: float = 2.0) -> Iterator[str]:
    """The function's log lines of the last hour; with ``follow``, new ones as they come."""
    policy = RetryPolicy.from_extra({})
    start = int((time.time() - 3600) * 1000)
    seen: set[str] = set()
    while True:
        kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function_name}", "startTime": start}
        while True:
            page = call(client.filter_log_events, policy, missing_ok=True, **kwargs)
            if page is None:
                break
            for event in page.get("events", []):
                if event["eventId"] in seen:
                    continue
                seen.add(event["eventId"])
                start = max(start, event["timestamp"])
                when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["timestamp"] / 1000))
                yield f"{when} {event['message'].rstrip()}\n"
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        if not follow:
            return
        time.sleep(poll_seconds)

"""Faults the Google stand-in injects, and Google's error shape (google.rpc.Status with ErrorInfo).

The messages and details are Google's own: a disabled API says "has not been
used in project … or it is disabled" with reason SERVICE_DISABLED; a missing
permission says "Permission '…' denied" with the permission in the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

PROJECT_NUMBER = "123456789012"


@dataclass
class Faults:
    """What the stand-in does to the next requests."""

    #: the next N API requests (not token, upload or invoke) answer this status (429, 503 or 409 ABORTED)
    transient: int = 0
    transient_status: int = 503
    #: action -> permission: answered 403 PERMISSION_DENIED naming the permission
    deny: dict[str, str] = field(default_factory=dict)
    #: the Cloud Functions API is "not enabled" in the project
    disabled: bool = False
    #: the next create/update operation fails its build / its container health check
    build_failure: bool = False
    health_failure: bool = False
    #: the next N PUTs to an upload URL answer 403 (a signed URL whose permission has not propagated yet)
    upload_forbidden: int = 0
    #: action -> how many times: acted on, then the connection is closed without an answer
    lose_reply: dict[str, int] = field(default_factory=dict)




# -- faults ------------------------------------------------------------------------------------
def inject(faults: Faults, seen: Any) -> Optional[tuple]:
    """The answer a fault gives to ``seen`` (status, body, headers), or None to answer normally.
    Called under the stand-in's lock."""
    if faults.disabled and not seen.action.startswith(("iam.", "logging.")):
        return 403, _error(403, "PERMISSION_DENIED",
                           f"Cloud Functions API has not been used in project {PROJECT_NUMBER} before or it is "
                           f"disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
                           f"cloudfunctions.googleapis.com/overview?project={PROJECT_NUMBER} then retry.",
                           {"reason": "SERVICE_DISABLED", "domain": "googleapis.com",
                            "metadata": {"service": "cloudfunctions.googleapis.com",
                                         "consumer": f"projects/{PROJECT_NUMBER}"}}), {}
    permission = faults.deny.get(seen.action)
    if permission:
        return 403, _error(403, "PERMISSION_DENIED", f"Permission '{permission}' denied on '{seen.path[4:]}'",
                           {"reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                            "metadata": {"permission": permission}}), {}
    if faults.transient > 0 and seen.action != "operations.get":
        faults.transient -= 1
        status = faults.transient_status
        name = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 409: "ABORTED"}[status]
        return status, _error(status, name, {429: "Quota exceeded for quota metric 'Write requests'",
                                             503: "The service is currently unavailable.",
                                             409: "There were concurrent policy changes."}[status]), {}
    return None



def _error(code: int, status: str, message: str, info: Optional[dict] = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if info:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", **info}]
    return {"error": error}

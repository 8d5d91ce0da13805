"""Google Cloud Functions (2nd gen), through google-cloud-functions / google-cloud-run (REST).

One job per module: ``settings`` (defaults and local checks), ``credentials``
(the credential chain, the project, impersonation), ``clients`` (the API base
URL and the SDK clients), ``retry`` and ``failures`` (transient errors retried,
the rest said in one line), ``remote`` (the read-only calls, as a
``RemoteState``), ``planner`` (a pure function from that state to the calls),
``executor`` (making them), ``teardown`` (delete), ``signing`` (ID tokens for
private calls), ``logs`` and ``provider`` (the ``GCPProvider`` that glues them).
See docs/gcp.md.

``GCPProvider`` is loaded on first use, so importing a single module of this
package does not import the Google SDKs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GCPProvider"]


def __getattr__(name: str) -> Any:
    if name == "GCPProvider":
        from kagg.providers.gcp.provider import GCPProvider

        return GCPProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

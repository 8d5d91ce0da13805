"""AWS Lambda behind a function URL, through boto3 and the standard credential chain.

One job per module: ``settings`` (defaults and local checks), ``remote`` (the
read-only calls, as a ``RemoteState``), ``planner`` (a pure function from that
state to the calls), ``executor`` (making them), ``retry``, ``deps`` (wheels for
Lambda's platform), ``signing`` (SigV4 and logs) and ``provider`` (the
``AWSProvider`` class that glues them). See docs/aws.md.

``AWSProvider`` is loaded on first use, so importing a single module of this
package (``kagg.providers.aws.retry``) does not import the others.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AWSProvider"]


def __getattr__(name: str) -> Any:
    if name == "AWSProvider":
        from kagg.providers.aws.provider import AWSProvider

        return AWSProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Azure Functions on the Flex Consumption plan, through the Azure management SDKs.

One job per module: ``settings`` (defaults, names and local checks), ``endpoints``
(the three base URLs and the loopback rule), ``credentials`` (azure-identity, lazily,
or an injected credential), ``clients`` (the management clients), ``errors`` (Azure's
answers as kagg's one-line errors), ``remote`` (the read-only calls, as a
``RemoteState``), ``planner`` (a pure function from that state to the calls),
``executor`` (making them), ``publish`` (the one-deploy upload and its polling),
``teardown`` (delete and ``--purge``) and ``provider`` (the ``AzureProvider`` class).
See docs/azure.md.

``AzureProvider`` is loaded on first use, so ``kagg --help`` imports no Azure module.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AzureProvider"]


def __getattr__(name: str) -> Any:
    if name == "AzureProvider":
        from kagg.providers.azure.provider import AzureProvider

        return AzureProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


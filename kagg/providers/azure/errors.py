"""Azure's answers as kagg's one-line errors: what went wrong and what to do.

Retries happen below (azure-core's retry policy for ARM, tenacity for the
deployment host); what reaches this module has used them up or is not transient.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from kagg.errors import BadInput, OperationFailed, TransientError
from kagg.providers.azure.settings import CREDENTIAL_WAYS

T = TypeVar("T")
#: ARM error codes that are the user's set-up, not a passing failure
_SETUP = {
    "MissingSubscriptionRegistration": "the subscription has not registered the resource provider it names; "
                                       "run `az provider register --namespace Microsoft.Web` (and "
                                       "Microsoft.Storage), then deploy again",
    "AuthorizationFailed": "the signed-in identity may not do this; it needs Contributor on the resource group "
                           "(or the subscription, to create the group): see docs/azure.md",
    "InvalidAuthenticationToken": f"the Azure token was refused; {CREDENTIAL_WAYS}",
    "ExpiredAuthenticationToken": f"the Azure token has expired; {CREDENTIAL_WAYS}",
    "SubscriptionNotFound": "the subscription was not found; check --subscription (`az account list`)",
    "LocationNotAvailableForResourceType": "that location does not offer Flex Consumption; choose another "
                                           "--location (`az functionapp list-flexconsumption-locations`)",
}


def code_of(exc: Any) -> Optional[str]:
    error = getattr(exc, "error", None)
    return getattr(error, "code", None) or None


def message_of(exc: Any) -> str:
    error = getattr(exc, "error", None)
    text = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:300]


def translate(exc: Exception, what: str) -> Exception:
    """The kagg error for an azure-core exception raised by ``what`` (a short description)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        return BadInput(f"no usable Azure credentials for {what}; {CREDENTIAL_WAYS}")
    if isinstance(exc, HttpResponseError):
        status, code = exc.status_code, code_of(exc)
        if code in _SETUP:
            return BadInput(f"{what}: {code}: {_SETUP[code]}")
        if status in (401, 403):
            return BadInput(f"{what} was refused ({status} {code or ''}: {message_of(exc)}); {_SETUP['AuthorizationFailed']}")
        if status is not None and (status == 429 or status >= 500):
            return TransientError(f"{what} kept failing ({status} {code or ''}) after retries: {message_of(exc)}; "
                                  "try again later")
        return OperationFailed(f"{what} failed ({status} {code or ''}): {message_of(exc)}")
    if isinstance(exc, ServiceRequestError):
        return TransientError(f"{what}: Azure could not be reached ({message_of(exc)}); check the network "
                              "(or KAGG_AZURE_ARM_URL) and try again")
    return exc


def arm(fn: Callable[..., T], what: str, *args: Any, missing_ok: bool = False, **kwargs: Any) -> Optional[T]:
    """Call an SDK operation; None for a 404 when ``missing_ok``; kagg errors for the rest."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    try:
        return fn(*args, **kwargs)
    except ResourceNotFoundError:
        if missing_ok:
            return None
        raise OperationFailed(f"{what}: not found in Azure; it may have been deleted meanwhile, deploy again") from None
    except AzureError as exc:
        raise translate(exc, what) from exc


def raise_for(response: Any, what: str) -> None:
    """Raise the kagg error for a raw ARM response that failed."""
    from azure.core.exceptions import HttpResponseError

    from azure.mgmt.core.exceptions import ARMErrorFormat

    exc = HttpResponseError(response=response, error_format=ARMErrorFormat)
    raise translate(exc, what)

"""The three base URLs kagg talks to, and the one rule for plain http.

``KAGG_AZURE_ARM_URL`` (the management API), ``KAGG_AZURE_SCM_URL`` (the app's
deployment host) and ``KAGG_AZURE_SITE_URL`` (the app itself) default to Azure's
public cloud; the last two are templates where ``{app}`` stands for the app name.
Sovereign clouds use the same switch. A bearer token is only ever sent over
https, except to a loopback address (a local stand-in): that exception is taken
per URL, never for a real host.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from kagg.errors import BadInput

DEFAULT_ARM = "https://management.azure.com"
DEFAULT_SCM = "https://{app}.scm.azurewebsites.net"
DEFAULT_SITE = "https://{app}.azurewebsites.net"


def _setting(var: str, default: str) -> str:
    value = (os.environ.get(var) or default).strip().rstrip("/")
    scheme = urlsplit(value).scheme
    if scheme not in ("https", "http") or not urlsplit(value).hostname:
        raise BadInput(f"{var}={value!r} is not an http(s) URL; unset it to use Azure's own ({default})")
    if scheme == "http" and not is_loopback(value):
        raise BadInput(f"{var}={value!r} uses plain http to a remote host; tokens go over https only "
                       "(plain http is accepted for a loopback stand-in alone)")
    return value


def arm_url() -> str:
    return _setting("KAGG_AZURE_ARM_URL", DEFAULT_ARM)


def scm_url(app: str) -> str:
    return _setting("KAGG_AZURE_SCM_URL", DEFAULT_SCM).replace("{app}", app)


def site_url(app: str) -> str:
    """The app's base URL, with a trailing slash like the other providers' URLs."""
    return _setting("KAGG_AZURE_SITE_URL", DEFAULT_SITE).replace("{app}", app) + "/"


def is_loopback(url: str) -> bool:
    """True for http(s) URLs on 127.0.0.0/8, ::1 or localhost: a stand-in on this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_ok(url: str) -> bool:
    """Whether a bearer token may go to ``url`` over plain http: only to a loopback stand-in."""
    return urlsplit(url).scheme == "http" and is_loopback(url)


def token_scope(arm: str) -> str:
    """The scope of ARM tokens; the SCM host takes the same token."""
    return ("https://management.azure.com" if arm == DEFAULT_ARM else arm) + "/.default"

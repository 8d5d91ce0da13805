"""Entry point for functions-framework and Google Cloud Functions (2nd gen): ``--target kagg_http``.

Loading happens at import, which functions-framework does at startup, so the
instance's cold start is paid before the first request, as on GCF.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import flask  # noqa: E402  (functions-framework depends on it)
import kagg_runtime  # noqa: E402

APP = kagg_runtime.load(_HERE)


def _headers(environ: dict) -> dict:
    """Lower-case header names straight from the WSGI environ (werkzeug's Headers is slower)."""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k[:5] == "HTTP_"}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    return headers


def kagg_http(request: "flask.Request") -> "flask.Response":
    """functions-framework HTTP function: flask request in, flask response out."""
    environ = request.environ
    resp = APP.handle(kagg_runtime.Request(
        request.method,
        request.path,
        dict(request.args.lists()) if environ.get("QUERY_STRING") else {},
        lambda: _headers(environ),
        request.get_data(),
    ))
    return flask.Response(resp.body, status=resp.status, headers=resp.headers)

"""Entry point for Azure Functions, Python v2 programming model.

One HTTP function, ``kagg_http``, takes every path (``route="{*path}"``) and
every method, so the runtime answers 404/405 in the contract's JSON shape.
host.json sets ``extensions.http.routePrefix`` to ``""``: the contract's
``GET /health`` is then ``https://APP.azurewebsites.net/health`` and the
function itself ``https://APP.azurewebsites.net/`` instead of under ``/api``.
Calls need a function key (``x-functions-key`` header or ``?code=``);
``code`` is removed from the query before binding unless the function takes
a parameter of that name. The app setting ``KAGG_AUTH_LEVEL=anonymous``
(``kagg deploy --azure --public``) makes the route anonymous instead: the worker
reads it when it indexes this file, so switching needs no new zip.
"""

import os
import sys
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import kagg_runtime  # noqa: E402

APP = kagg_runtime.load(_HERE)
_KEEP_CODE = any(p.get("name") == "code" for p in APP.manifest.get("parameters") or [])

_AUTH = func.AuthLevel.ANONYMOUS if os.environ.get("KAGG_AUTH_LEVEL") == "anonymous" else func.AuthLevel.FUNCTION
app = func.FunctionApp(http_auth_level=_AUTH)


def to_request(req: func.HttpRequest) -> kagg_runtime.Request:
    """An Azure request as a runtime request (the query from the URL, where repeats survive)."""
    url = urlsplit(req.url)
    if url.query:
        query = parse_qs(url.query, keep_blank_values=True)
    else:
        query = {k: [v] for k, v in req.params.items()}
    if not _KEEP_CODE:
        query.pop("code", None)
    route_path = req.route_params.get("path")
    if route_path is not None:
        path = "/" + route_path
    else:
        path = url.path or "/"
    headers = {k.lower(): v for k, v in req.headers.items()}
    return kagg_runtime.Request(req.method, path, query, headers, req.get_body() or b"")


@app.route(route="{*path}", methods=[func.HttpMethod.GET, func.HttpMethod.POST, func.HttpMethod.PUT,
                                     func.HttpMethod.PATCH, func.HttpMethod.DELETE,
                                     func.HttpMethod.HEAD, func.HttpMethod.OPTIONS])
def kagg_http(req: func.HttpRequest) -> func.HttpResponse:
    """Every request of the function app goes through the runtime."""
    resp = APP.handle(to_request(req))
    return func.HttpResponse(resp.body, status_code=resp.status, headers=resp.headers,
                             mimetype=kagg_runtime.JSON_CONTENT_TYPE)

"""Entry point for AWS Lambda behind a function URL (payload format 2.0): ``lambda_function.handler``.

Loading happens at import, i.e. during Lambda's init phase, so the cold start
is reported by the runtime as ``Server-Timing: init``. Standard library only:
the deployment package holds nothing else but the notebook's dependencies.
"""

import binascii  # base64 would import re and struct at cold start for the same two functions
import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import kagg_runtime  # noqa: E402

APP = kagg_runtime.load(_HERE)


def to_request(event: dict) -> kagg_runtime.Request:
    """A payload-2.0 event as a runtime request.

    An event that is not an HTTP event (``aws lambda invoke --payload '{"a": 1}'``)
    is taken as the JSON body of ``POST /``.
    """
    if not isinstance(event, dict) or ("requestContext" not in event and "rawPath" not in event):
        return kagg_runtime.Request("POST", "/", {}, {"content-type": "application/json"},
                                    json.dumps(event).encode("utf-8"))
    http = (event.get("requestContext") or {}).get("http") or {}
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    cookies = event.get("cookies")
    if cookies and "cookie" not in headers:
        headers["cookie"] = "; ".join(cookies)
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        data = binascii.a2b_base64(body)
    else:
        data = body.encode("utf-8")
    if event.get("rawQueryString"):
        from urllib.parse import parse_qs  # only requests with a query string pay for it

        query = parse_qs(event["rawQueryString"], keep_blank_values=True)
    elif "rawQueryString" in event:
        query = {}
    else:  # API Gateway REST (payload 1.0) in front of the function
        query = dict(event.get("multiValueQueryStringParameters") or {})
    return kagg_runtime.Request(
        http.get("method") or event.get("httpMethod") or "GET",
        event.get("rawPath") or http.get("path") or event.get("path") or "/",
        query,
        headers,
        data,
    )


def to_result(resp: kagg_runtime.Response) -> dict:
    """A runtime response as a payload-2.0 result; bodies that are not UTF-8 go base64."""
    headers = dict(resp.headers)
    result = {"statusCode": resp.status, "headers": headers}
    try:
        result["body"] = resp.body.decode("utf-8")
        result["isBase64Encoded"] = False
    except UnicodeDecodeError:
        result["body"] = binascii.b2a_base64(resp.body, newline=False).decode("ascii")
        result["isBase64Encoded"] = True
    for name in [k for k in headers if k.lower() == "set-cookie"]:
        result["cookies"] = [headers.pop(name)]
    return result


def handler(event: dict, context: object = None) -> dict:
    """The Lambda handler."""
    return to_result(APP.handle(to_request(event)))

"""The app host of the Azure stand-in: the deployed zip run by azure-functions, as the worker does.

When a deployment succeeds the stand-in unzips it and starts this module's
worker in a subprocess: it imports ``function_app`` (indexing: an import error
means "0 functions loaded", reported back with its message), then answers one
request per line with the function's ``func.HttpResponse``. So ``kagg invoke``
against the stand-in runs the artifact's own code through azure-functions, and
the function's auth level is what the artifact declares.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

WORKER = r"""
import base64, json, sys, traceback
sys.path.insert(0, sys.argv[1])
try:
    import azure.functions as func
    import function_app
    fns = function_app.app.get_functions()
    info = []
    for fn in fns:
        trig = [b for b in fn.get_bindings() if b.type == "httpTrigger"][0]
        info.append({"name": fn.get_function_name(), "route": trig.route,
                     "auth_level": str(getattr(trig.auth_level, "value", trig.auth_level)).lower()})
    print(json.dumps({"ok": True, "functions": info}), flush=True)
except BaseException as exc:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    print(json.dumps({"ok": False, "error": last}), flush=True)
    sys.exit(0)
user = fns[0].get_user_function()
for line in sys.stdin:
    spec = json.loads(line)
    req = func.HttpRequest(method=spec["method"], url=spec["url"], headers=spec["headers"], params=spec["params"],
                           route_params={"path": spec["path"]}, body=base64.b64decode(spec["body"]))
    resp = user(req)
    print(json.dumps({"status": resp.status_code, "headers": dict(resp.headers),
                      "body": base64.b64encode(resp.get_body()).decode()}), flush=True)
"""


class AppHost:
    """One running deployment of one app (a worker process)."""

    def __init__(self, folder: Path, settings: dict[str, str]):
        self.folder = folder
        env = {**os.environ, **settings}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(folder)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=folder,
                                     env=env)
        assert self.proc.stdout is not None
        self.index = json.loads(self.proc.stdout.readline() or '{"ok": false, "error": "worker exited"}')
        self.lock = threading.Lock()

    @property
    def functions(self) -> list[dict]:
        return self.index.get("functions", []) if self.index.get("ok") else []

    @property
    def error(self) -> Optional[str]:
        return None if self.index.get("ok") else self.index.get("error")

    def call(self, method: str, url: str, path: str, headers: dict, params: dict, body: bytes) -> dict:
        spec = {"method": method, "url": url, "path": path, "headers": headers, "params": params,
                "body": base64.b64encode(body).decode()}
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(spec) + "\n")
            self.proc.stdin.flush()
            answer = json.loads(self.proc.stdout.readline())
        answer["body"] = base64.b64decode(answer["body"])
        return answer

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

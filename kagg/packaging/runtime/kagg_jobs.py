"""``/jobs`` on a deployed function: start, follow, list and stop Kaggle training runs (docs/jobs.md).

Shipped beside kagg_runtime.py only when the notebook has ``train`` cells, with the kernel that
kagg's builder made at deploy time (``kagg_jobs.json``, a template): a request validates its
parameters against the train cells' ``parameters`` cell, fills them in and pushes. The function
keeps no state: a job's id is its kernel (``owner/slug/vN``, base64url-encoded) and an
``Idempotency-Key`` determines the slug, so a retry on any instance finds the kernel pushed
before. The runtime imports this module on the first ``/jobs`` request only; this module imports
kagglesdk (through kagg_jobs_kaggle) on the first call that reaches Kaggle.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import re
import threading
import time

TEMPLATE_FILE = "kagg_jobs.json"
GPU_CAP = re.compile(r"maximum .*gpu session", re.I)
#: seconds a client is told to wait: the GPU cap (a session must end), Kaggle unavailable
RETRY_AFTER_GPU_S = 60
RETRY_AFTER_DOWN_S = 30
#: pushes sent again after a look-up showed that an unclear one did not land
PUSH_TRIES = 4
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_JOB = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})/([a-z0-9][a-z0-9-]{2,99})/v([1-9][0-9]{0,8})$")
_STATUS = {"QUEUED": "queued", "NEW_SCRIPT": "queued", "RUNNING": "running", "COMPLETE": "complete",
           "ERROR": "error", "CANCEL_REQUESTED": "stopped", "CANCEL_ACKNOWLEDGED": "stopped"}
RESULT_FILE = "kagg-result.json"
#: how long GET /jobs/ID/logs reads a running session's log stream (seconds)
LOG_WAIT_VAR = "KAGG_JOBS_LOG_WAIT_S"


def load(root: str, runtime) -> "Jobs":
    """The jobs service of the artifact in ``root`` (``runtime`` is the kagg_runtime module)."""
    with open(os.path.join(root, TEMPLATE_FILE), "rb") as f:
        return Jobs(json.load(f), runtime)


# --------------------------------------------------------------------------------------------
# The kernel from the template
# --------------------------------------------------------------------------------------------

def injected_source(values: dict) -> str:
    """The cell papermill-style injection adds after the parameters cell (as kagg's builder writes it)."""
    lines = ["# Parameters (injected by kagg, as papermill does)"]
    lines += [f"{name} = {value!r}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def _header(template: dict, title: str, effective: dict) -> str:
    lines = [f"# {title}", "", template["header"]["built"]]
    if effective:
        shown = ", ".join(f"`{k}={json.dumps(v, ensure_ascii=False)}`" for k, v in effective.items())
        lines += ["", f"Parameters: {shown}."]
    if template["header"].get("modules"):
        lines += ["", template["header"]["modules"]]
    return "\n".join(lines)


def render(template: dict, owner: str, slug: str, injected: dict) -> tuple[dict, str]:
    """(kernel metadata, notebook text) of the job ``owner/slug`` with ``injected`` parameters:
    the same bytes kagg's builder gives for that request (tests compare them)."""
    nb = json.loads(template["notebook"])
    effective = {p["name"]: p.get("default") for p in template["parameters"]}  # in the cell's order
    effective.update(injected)
    config = dict(template["config"], job=f"{owner}/{slug}", parameters=effective, injected=injected)
    labels = dict(config["cells"])
    cells = nb["cells"]
    if injected:
        source = injected_source(injected)
        labels.setdefault(hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest(),
                          "the injected parameters")
        where = next(i for i, c in enumerate(cells) if c.get("id") == template["parameters_cell"])
        cells.insert(where + 1, {"cell_type": "code", "execution_count": None, "id": "injected-parameters",
                                 "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "source": source})
    config["cells"] = labels
    line = "_kagg_config = _kagg_json.loads(" + repr(json.dumps(config, sort_keys=True, ensure_ascii=False)) + ")"
    for cell in cells:
        if cell.get("id") == "kagg-start":
            cell["source"] = template["start"][0] + line + template["start"][1]
        elif cell.get("id") == "kagg-header":
            cell["source"] = _header(template, slug, effective)
    metadata = dict(template["metadata"], id=f"{owner}/{slug}", title=slug, code_file=f"{slug}.ipynb")
    competition = template.get("competition_parameter")
    if competition and effective.get(competition):
        metadata["competition_sources"] = [str(effective[competition])]
    return metadata, json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------------------------

def encode_id(owner: str, slug: str, version: int) -> str:
    raw = f"{owner}/{slug}/v{version}".encode("ascii")
    return binascii.b2a_base64(raw, newline=False).decode("ascii").translate(_TO_URL).rstrip("=")


_TO_URL = str.maketrans("+/", "-_")
_FROM_URL = str.maketrans("-_", "+/")


def decode_id(job_id: str) -> "tuple[str, str, int] | None":
    if not job_id or len(job_id) > 300 or not re.match(r"^[A-Za-z0-9_-]+$", job_id):
        return None
    try:
        raw = binascii.a2b_base64(job_id.translate(_FROM_URL) + "=" * (-len(job_id) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    match = _JOB.match(raw)
    return (match.group(1), match.group(2), int(match.group(3))) if match else None


# --------------------------------------------------------------------------------------------
# The routes
# --------------------------------------------------------------------------------------------

class Jobs:
    """One per instance. Thread-safe: requests for the same Idempotency-Key wait for each other."""

    def __init__(self, template: dict, runtime, env=os.environ) -> None:
        self.t = template
        self.rt = runtime
        self.env = env
        self.binder = runtime._Binder(template["parameters"], False)
        self.prefix = template["slug_prefix"]
        self.identity = template["function"]
        self._kaggle = None
        self._kaggle_lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(64)]

    def _error(self, status: int, type_: str, message: str, headers: "dict | None" = None):
        return self.rt.HTTPError(status, type_, message, headers)

    def kaggle(self):
        if self._kaggle is None:
            with self._kaggle_lock:
                if self._kaggle is None:
                    try:
                        import kagg_jobs_kaggle
                    except ImportError as exc:
                        raise self._error(503, "KaggleClientMissing",
                                          f"the function cannot load its Kaggle client ({exc}); deploy it again "
                                          "so that kagglesdk is installed with it") from None
                    self._kaggle = kagg_jobs_kaggle.Kaggle(self.env)
        return self._kaggle

    def handle(self, req, method: str, path: str) -> tuple[int, bytes, "dict | None"]:
        """Answer ``/jobs``, ``/jobs/ID``, ``/jobs/ID/logs``; errors as the runtime's HTTPError."""
        if self.t.get("access") != "open":
            raise self._error(403, "JobsClosed",
                              "this endpoint is public, so /jobs is closed (it would let anyone spend the "
                              "owner's Kaggle GPU quota); its owner can open it with kagg deploy --public-jobs")
        import kagg_jobs_kaggle as kk  # the exceptions (kagglesdk itself is imported on the first call)

        parts = path.split("/")[2:]
        try:
            if not parts:
                if method == "POST":
                    return self.start(req)
                if method == "GET":
                    return 200, self._json(self.list(req)), None
                raise self._error(405, "MethodNotAllowed", f"{method} is not allowed on /jobs; use GET, POST",
                                  {"Allow": "GET, POST"})
            job = self._job(parts[0])
            if job[0] != self.kaggle().username:  # another account's kernel: not this function's job
                raise self._error(404, "NotFound", f"no job {parts[0][:80]} on this function; `GET /jobs` lists its jobs")
            if len(parts) == 1:
                if method == "GET":
                    return 200, self._json(self.status(job)), None
                if method == "DELETE":
                    return 200, self._json(self.stop(job)), None
                raise self._error(405, "MethodNotAllowed", f"{method} is not allowed on /jobs/ID; use GET, DELETE",
                                  {"Allow": "GET, DELETE"})
            if len(parts) == 2 and parts[1] == "logs":
                if method != "GET":
                    raise self._error(405, "MethodNotAllowed", f"{method} is not allowed on /jobs/ID/logs; use GET",
                                      {"Allow": "GET"})
                return 200, self._json(self.logs(job)), None
            raise self._error(404, "NotFound", f"no route {path}; use /jobs, /jobs/ID or /jobs/ID/logs")
        except kk.NoCredentials as exc:
            raise self._error(503, "NoKaggleCredentials", str(exc)) from None
        except kk.Unavailable as exc:
            raise self._error(503, "KaggleUnavailable", f"{exc}; try again later",
                              {"Retry-After": str(RETRY_AFTER_DOWN_S)}) from None
        except kk.Refused as exc:
            raise self._error(502, "KaggleRefused", str(exc)) from None
        except kk.NotFound:
            raise self._error(404, "NotFound", f"no job {parts[0]}: Kaggle has no such kernel (a stopped job's "
                                               "kernel is deleted)") from None

    @staticmethod
    def _json(value) -> bytes:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")

    def _job(self, job_id: str) -> tuple[str, str, int]:
        job = decode_id(job_id)
        if job is None or not job[1].startswith(self.prefix):
            raise self._error(404, "NotFound", f"no job {job_id[:80]} on this function; `GET /jobs` lists its jobs")
        return job

    def _slug(self, key: "str | None") -> str:
        if key is None:
            return self.prefix + os.urandom(8).hex()
        digest = hashlib.sha256(f"kagg-job-key-1\0{self.identity}\0{key}".encode("utf-8")).hexdigest()
        return self.prefix + "k" + digest[:15]

    # -- POST /jobs ----------------------------------------------------------------------------
    def start(self, req) -> tuple[int, bytes, dict]:
        values = self.binder.bind_json(self.rt._json_object(req.body))  # 400s before any call to Kaggle
        key = req.headers.get("idempotency-key")
        if key is not None and not _KEY.match(key):
            raise self._error(400, "InvalidIdempotencyKey",
                              "the Idempotency-Key header must be 1-200 printable ASCII characters without spaces")
        kaggle = self.kaggle()
        owner, slug = kaggle.username, self._slug(key)
        deadline = kaggle.deadline()
        if key is None:
            version = self._push(kaggle, owner, slug, values, deadline)
        else:
            with self._stripes[int(slug[-6:], 16) % len(self._stripes)]:  # a duplicate waits, then finds it
                version = kaggle.current_version(owner, slug, deadline)
                if version is None:
                    version = self._push(kaggle, owner, slug, values, deadline)
        job_id = encode_id(owner, slug, version)
        url = f"/jobs/{job_id}"
        return 202, self._json({"id": job_id, "status": "queued", "status_url": url}), {"Location": url}

    def _push(self, kaggle, owner: str, slug: str, values: dict, deadline: float) -> int:
        """SaveKernel once; after an unclear outcome, look the slug up before pushing again."""
        import kagg_jobs_kaggle as kk

        metadata, text = render(self.t, owner, slug, values)
        wait = 0.5
        for _ in range(PUSH_TRIES):
            try:
                version, error = kaggle.save(metadata, text, deadline)
            except kk.Transient as exc:
                found = kaggle.current_version(owner, slug, deadline)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise kk.Unavailable(f"Kaggle did not take the push ({exc})") from None
                time.sleep(min(left, wait))
                wait *= 2
                continue
            if error and GPU_CAP.search(error):
                raise self._error(429, "GpuSessionsBusy",
                                  f"Kaggle refused the push: {' '.join(error.split())}; try again when one of "
                                  "the account's GPU sessions has ended", {"Retry-After": str(RETRY_AFTER_GPU_S)})
            if error:
                raise kk.Refused(f"Kaggle refused the push: {' '.join(error.split())}")
            return version
        raise kk.Unavailable("Kaggle did not take the push")

    # -- GET /jobs, /jobs/ID, /jobs/ID/logs, DELETE /jobs/ID ----------------------------------------
    def list(self, req) -> dict:
        raw = (req.query.get("limit") or ["20"])[-1]
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise self._error(400, "InvalidParameter", f"limit must be a whole number from 1 to 100, got {raw[:20]!r}")
        kaggle = self.kaggle()
        rows = kaggle.kernels(kaggle.username, self.prefix, 100, kaggle.deadline())
        jobs = []
        for slug, version, last_run in rows:
            if slug.startswith(self.prefix):
                job_id = encode_id(kaggle.username, slug, version)
                jobs.append({"id": job_id, "status_url": f"/jobs/{job_id}", "last_run": last_run})
        return {"jobs": jobs[:int(raw)]}

    def _state(self, job: tuple[str, str, int]) -> tuple:
        """The client, the request's deadline, the job's status in the contract's words, Kaggle's failure."""
        kaggle = self.kaggle()
        deadline = kaggle.deadline()
        state, failure = kaggle.status(*job, deadline)
        return kaggle, deadline, _STATUS.get(state, "running"), failure

    def status(self, job: tuple[str, str, int]) -> dict:
        owner, slug, version = job
        kaggle, deadline, status, failure = self._state(job)
        out = {"id": encode_id(owner, slug, version), "status": status, "failure": failure or None,
               "started_at": None, "finished_at": None, "outputs": [], "result": None}
        if status not in ("complete", "error"):
            return out
        files, _log = kaggle.outputs(owner, slug, version, deadline)
        urls = dict(files)
        result = kaggle.fetch_json(urls[RESULT_FILE], deadline) if RESULT_FILE in urls else None
        sizes = {o.get("name"): o.get("size") for o in (result or {}).get("outputs") or [] if isinstance(o, dict)}
        out["outputs"] = [{"name": name, "size": sizes.get(name), "url": url} for name, url in files]
        out["result"] = result
        timings = (result or {}).get("timings") or {}
        out["started_at"], out["finished_at"] = timings.get("started_at"), timings.get("finished_at")
        if status == "complete" and (result is None or result.get("status") != "complete"):
            out["status"] = "error"
            out["failure"] = ((result or {}).get("error") or
                              "the kernel ended without kagg's end marker and result (its cells did not all run)")
        elif status == "error" and not failure:
            out["failure"] = (result or {}).get("error") or "the kernel failed; GET /jobs/ID/logs shows its log"
        return out

    def logs(self, job: tuple[str, str, int]) -> dict:
        owner, slug, version = job
        kaggle, deadline, status, _failure = self._state(job)
        if status in ("queued", "running"):  # Kaggle lists a session's log once it is over: read the stream
            text = kaggle.live_log(owner, slug, version, float(self.env.get(LOG_WAIT_VAR) or 2.0))
        else:
            text = log_text(kaggle.outputs(owner, slug, version, deadline, most=1)[1])
        return {"id": encode_id(owner, slug, version), "status": status, "log": text}

    def stop(self, job: tuple[str, str, int]) -> dict:
        owner, slug, version = job
        kaggle = self.kaggle()
        kaggle.delete(owner, slug, kaggle.deadline())
        return {"id": encode_id(owner, slug, version), "status": "stopped",
                "note": "Kaggle has no cancel call: the kernel was deleted, which ends its session"}


def log_text(log: str) -> str:
    """Kaggle's stored log (a JSON list of ``{stream_name, time, data}``) as plain text."""
    if not (log or "").lstrip().startswith("["):
        return log or ""
    import kagg_jobs_kaggle

    return kagg_jobs_kaggle._joined(log)

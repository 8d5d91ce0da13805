"""The code that runs INSIDE a kagg-built Kaggle kernel (stdlib only: it is embedded as source).

The kernel's first cell runs :func:`start`: print the start marker, unpack the modules shipped
beside the notebook, decide whether the checkpoints of an earlier job are used, write a
``running`` manifest. The last cell runs :func:`finish`: list the outputs, write the manifest,
remove the scratch files, print the end marker. Papermill (Kaggle's runner) stops at the first
failing cell, so the end cell never runs then: an IPython ``post_run_cell`` hook (or the local
driver) calls :func:`cell_failed`, which writes the manifest with status ``error``.

Layout under the root (``KAGG_KAGGLE_ROOT``, ``/kaggle`` on Kaggle): inputs ``input/<slug>/``,
outputs ``working/outputs/``, checkpoints ``working/checkpoints/``, manifest
``working/kagg-result.json``. See docs/kaggle-kernel.md.
"""

import base64
import datetime
import glob
import hashlib
import io
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
import zipfile

FORMAT = 1
RESULT_FILE = "kagg-result.json"
CHECKPOINT_META = "kagg-checkpoint.json"
# built from parts so the kernel's own source never contains a marker: only its output does
START_MARKER = "[kagg] " + "KERNEL-START"
END_MARKER = "[kagg] " + "KERNEL-END"
FAILED_MARKER = "[kagg] " + "KERNEL-FAILED"

_state = {}


def root():
    """The kernel's root folder: ``KAGG_KAGGLE_ROOT`` when set (local runs, tests), else /kaggle."""
    return os.environ.get("KAGG_KAGGLE_ROOT") or "/kaggle"


def working():
    return os.path.join(root(), "working")


def checkpoint_dir():
    """The folder training code saves checkpoints in (created; a resumed run finds them there)."""
    path = os.path.join(working(), "checkpoints")
    os.makedirs(path, exist_ok=True)
    if _state.get("config") is not None and not os.path.exists(os.path.join(path, CHECKPOINT_META)):
        _write_checkpoint_meta(path)
    return pathlib.Path(path)


def output_dir():
    """The folder whose files are the run's outputs (listed with sha256 in the manifest)."""
    path = os.path.join(working(), "outputs")
    os.makedirs(path, exist_ok=True)
    return pathlib.Path(path)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _say(text):
    print(text, flush=True)


def _shown(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# -- start -----------------------------------------------------------------------------------------

def start(config, archive=""):
    """Run at the top of the kernel; ``config`` is what kagg's kernel builder decided."""
    _state.clear()
    _state.update(config=config, started=time.time(), started_at=_now(), clock=time.monotonic(),
                  cells={}, status="running", error=None, scratch=None, done=False)
    _say(START_MARKER + " " + config.get("job", ""))
    os.makedirs(working(), exist_ok=True)
    os.environ["KAGG_CHECKPOINT_DIR"] = os.path.join(working(), "checkpoints")
    os.environ["KAGG_OUTPUT_DIR"] = os.path.join(working(), "outputs")
    os.makedirs(os.environ["KAGG_OUTPUT_DIR"], exist_ok=True)
    try:
        if archive:
            _unpack(archive, config.get("archive_sha256"))
        _state["checkpoint"] = _resume(config)
    except BaseException as exc:
        _state["checkpoint"] = _state.get("checkpoint") or {"decision": "none", "source": None, "reason": None}
        _fail("kagg start", exc)
        raise
    decision = _state["checkpoint"]
    if decision["decision"] != "none" or decision.get("reason"):
        _say("[kagg] checkpoint: " + decision["decision"] + (": " + decision["reason"] if decision.get("reason") else ""))
    _state["start_seconds"] = round(time.monotonic() - _state["clock"], 3)
    _write_result()
    _hook_ipython()


def _unpack(archive, expected):
    """The modules beside the notebook: a base64 zip, unpacked to a scratch folder put on sys.path."""
    data = base64.b64decode("".join(archive.split()))
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise RuntimeError("the kernel's code archive is damaged (sha256 mismatch); build the kernel again")
    scratch = tempfile.mkdtemp(prefix="kagg-code-")
    _state["scratch"] = scratch
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if name.startswith("/") or ".." in parts:
                raise RuntimeError("the kernel's code archive names a path outside its folder: " + name)
        zf.extractall(scratch)
    sys.path.insert(0, scratch)


def _find_source(slug):
    """Where an attached kernel's output is mounted: input/<slug>, or one or two levels deeper."""
    base = os.path.join(root(), "input")
    for pattern in ((slug,), ("*", slug), ("*", "*", slug)):
        found = sorted(glob.glob(os.path.join(base, *pattern)))
        if found:
            return found[0]
    return None


def _resume(config):
    job = config.get("resume_from")
    if not job:
        return {"decision": "none", "source": None, "reason": None}
    force = bool(config.get("force_resume"))
    slug = job.split("/")[1] if "/" in job else job
    folder = _find_source(slug)
    if folder is None:
        return {"decision": "none", "source": job,
                "reason": "the output of " + job + " is not mounted under " + os.path.join(root(), "input")}
    ckpt = os.path.join(folder, "checkpoints")
    if not os.path.isdir(ckpt) or not any(n != CHECKPOINT_META for n in os.listdir(ckpt)):
        return {"decision": "none", "source": job, "reason": job + " left no checkpoints"}
    reasons = _mismatches(config, os.path.join(ckpt, CHECKPOINT_META))
    if reasons and not force:
        _say("[kagg] checkpoint of " + job + " ignored: " + "; ".join(reasons))
        return {"decision": "ignored", "source": job, "reason": "; ".join(reasons)}
    files = _copy_tree(ckpt, os.path.join(working(), "checkpoints"))
    _write_checkpoint_meta(os.path.join(working(), "checkpoints"))
    if reasons:
        return {"decision": "forced", "source": job, "reason": "used despite: " + "; ".join(reasons), "files": files}
    return {"decision": "used", "source": job, "reason": None, "files": files}


def _mismatches(config, meta_path):
    """Why the checkpoints do not belong to this run: code hash, then each compatibility parameter."""
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return ["the checkpoints have no readable " + CHECKPOINT_META]
    out = []
    if meta.get("code_hash") != config.get("code_hash"):
        out.append("training code changed (code hash " + str(meta.get("code_hash"))[:12] + " ≠ "
                   + str(config.get("code_hash"))[:12] + ")")
    before = meta.get("parameters") if isinstance(meta.get("parameters"), dict) else {}
    now = config.get("parameters") or {}
    for key in config.get("compat") or []:
        if key not in before:
            out.append(key + " was not a parameter of that run")
        elif _shown(before[key]) != _shown(now.get(key)):
            out.append(key + " " + _shown(before[key]) + " ≠ " + _shown(now.get(key)))
    return out


def _copy_tree(src, dst):
    """Copy without permissions: the input mount is read-only, the copies must stay writable."""
    count = 0
    for folder, dirs, names in os.walk(src):
        dirs.sort()
        rel = os.path.relpath(folder, src)
        target = os.path.join(dst, rel) if rel != "." else dst
        os.makedirs(target, exist_ok=True)
        for name in sorted(names):
            if name == CHECKPOINT_META and rel == ".":
                continue
            shutil.copyfile(os.path.join(folder, name), os.path.join(target, name))
            count += 1
    return count


def _write_checkpoint_meta(folder):
    """What the next run compares before it uses these checkpoints (written as soon as the folder is)."""
    config = _state["config"]
    meta = {"format": FORMAT, "job": config.get("job"), "notebook": config.get("notebook"),
            "code_hash": config.get("code_hash"), "parameters": config.get("parameters") or {},
            "compat": config.get("compat") or []}
    os.makedirs(folder, exist_ok=True)
    _write_json(os.path.join(folder, CHECKPOINT_META), meta)


# -- cells -------------------------------------------------------------------------------------------

def _label(source):
    key = hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()
    return (_state.get("config") or {}).get("cells", {}).get(key, "a cell")


def before_cell(source):
    _state["cell_clock"] = time.monotonic()


def after_cell(source, error=None):
    """Called after every cell (IPython's post_run_cell, or the local driver)."""
    if _state.get("done") or not _state.get("config"):
        return
    label = _label(source)
    began = _state.pop("cell_clock", None)
    if began is not None and label != "a cell":
        _state["cells"][label] = round(time.monotonic() - began, 3)
    if error is not None:
        cell_failed(error, label)


def cell_failed(error, label="a cell"):
    """A cell raised: papermill stops here, so write the error manifest now."""
    if _state.get("done"):
        return
    _fail(label, error)
    _say(FAILED_MARKER + " " + label + ": " + _state["error"]["type"] + ": " + _state["error"]["message"])


def _fail(label, error):
    message = " ".join(str(error).split())
    _state["error"] = {"cell": label, "type": type(error).__name__, "message": message[:500]}
    _state["status"] = "error"
    _end()


def _hook_ipython():
    try:
        shell = get_ipython()  # noqa: F821 - defined by IPython in a notebook
    except NameError:
        return
    if shell is None or getattr(shell, "_kagg_hooked", False):
        return

    def pre(info=None, *args):
        before_cell(getattr(info, "raw_cell", "") or "")

    def post(result=None, *args):
        info = getattr(result, "info", None)
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        after_cell(getattr(info, "raw_cell", "") or "", error)

    shell.events.register("pre_run_cell", pre)
    shell.events.register("post_run_cell", post)
    shell._kagg_hooked = True


# -- finish ------------------------------------------------------------------------------------------

def finish():
    """Run as the kernel's last cell: everything ran."""
    if _state.get("done"):
        return
    _state["status"] = "complete"
    _end()
    _say(END_MARKER + " " + (_state["config"].get("job") or "") + " complete")


def _end():
    _state["done"] = True
    ckpt = os.path.join(working(), "checkpoints")
    if os.path.isdir(ckpt) and any(n != CHECKPOINT_META for n in os.listdir(ckpt)):
        _write_checkpoint_meta(ckpt)
    _write_result()
    scratch = _state.get("scratch")
    if scratch:
        if scratch in sys.path:
            sys.path.remove(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        _state["scratch"] = None


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_under(folder):
    out = []
    base = working()
    for current, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(current, name)
            if os.path.isfile(path):
                rel = os.path.relpath(path, base).replace(os.sep, "/")
                out.append({"name": rel, "size": os.path.getsize(path), "sha256": _sha256(path)})
    return out


def _write_result():
    config = _state["config"]
    finished = _state.get("done")
    checkpoint = dict(_state.get("checkpoint") or {"decision": "none", "source": None, "reason": None})
    saved = _files_under(os.path.join(working(), "checkpoints")) if finished else []
    checkpoint["saved"] = len([f for f in saved if not f["name"].endswith("/" + CHECKPOINT_META)])
    timings = {"started_at": _state["started_at"], "start_seconds": _state.get("start_seconds"),
               "cells": dict(_state["cells"])}
    if finished:
        timings["finished_at"] = _now()
        timings["seconds"] = round(time.monotonic() - _state["clock"], 3)
    result = {"format": FORMAT, "status": _state["status"], "job": config.get("job"),
              "notebook": config.get("notebook"), "parameters": config.get("parameters") or {},
              "injected": config.get("injected") or {}, "code_hash": config.get("code_hash"),
              "outputs": _files_under(os.path.join(working(), "outputs")) if finished else [],
              "timings": timings, "checkpoint": checkpoint, "error": _state.get("error")}
    _write_json(os.path.join(working(), RESULT_FILE), result)


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)

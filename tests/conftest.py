"""Fixtures shared by every test.

``_cloud_hygiene`` runs for every test: fake cloud credentials, metadata
lookups disabled, Kaggle config in a temporary folder, and a registry of the
test's own, so no test can reach a cloud metadata address or a user's files.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the shared corpus of real notebooks, outside this repository (KAGG_CORPUS to point elsewhere)
CORPUS = Path(os.environ.get("KAGG_CORPUS") or ROOT.parent / "shared" / "corpus" / "notebooks")
#: for tests that read the corpus: skipped, saying why, on a checkout that has no corpus beside it
needs_corpus = pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").is_file(),
                                  reason=f"the notebook corpus is not at {CORPUS} (set KAGG_CORPUS)")
EXAMPLES = ROOT / "examples"
T = TypeVar("T")

# the Kaggle stand-in's fixtures (kaggle_standin, kaggle_env, kaggle_sdk) for every test
from kaggle_fixtures import kaggle_env, kaggle_sdk, kaggle_standin  # noqa: E402,F401


@pytest.fixture(autouse=True)
def _cloud_hygiene(monkeypatch, tmp_path_factory):
    """Fake credentials and no metadata endpoints for every test (notes: "Test hygiene")."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws_config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws_credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))  # no user ADC from ~/.config/gcloud
    for var in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(home / "azure"))
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTION_ID",
                "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_PASSWORD", "IDENTITY_ENDPOINT",
                "MSI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    # every API base URL kagg knows points at a closed port unless a test starts a stand-in
    dead = "http://127.0.0.1:9"
    monkeypatch.setenv("KAGG_KAGGLE_API_URL", dead)
    monkeypatch.setenv("KAGG_GCP_API_URL", dead)
    monkeypatch.setenv("KAGG_AZURE_ARM_URL", dead)
    monkeypatch.setenv("KAGG_AZURE_SCM_URL", dead)
    monkeypatch.setenv("KAGG_AZURE_SITE_URL", dead)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / "kaggle"))
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.delenv("KAGG_DEBUG", raising=False)
    monkeypatch.setenv("KAGG_REGISTRY", str(home / "endpoints.json"))
    monkeypatch.setenv("KAGG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kagg-cache"))  # shared per run
    yield


@pytest.fixture
def registry_path(tmp_path, monkeypatch) -> Path:
    """A fresh registry file path for this test, also exported as KAGG_REGISTRY."""
    path = tmp_path / "endpoints.json"
    monkeypatch.setenv("KAGG_REGISTRY", str(path))
    return path


def wait_until(predicate: Callable[[], T], timeout: float = 60, what: str = "the condition") -> T:
    """Poll ``predicate`` until it returns something true, and return that; fail after ``timeout``
    seconds (a limit for a broken run, never a measurement). Use this, not a sleep, to wait for
    another process or thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def holding(script: str) -> subprocess.Popen:
    """Another process running ``script``, which takes a lock, prints ``held`` and keeps it until
    its stdin is closed (then :func:`reap` it): returned once the lock is held."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def reap(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Wait for ``proc``, asked to stop already, to exit; kill it if it has not within ``timeout``."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_kagg(*args: str, env: dict | None = None, cwd: Path | None = None, input: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (``python -m kagg``), as a user would."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "kagg", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, input=input, timeout=timeout)


@pytest.fixture
def kagg():
    """Call as ``kagg("deploy", "nb.ipynb")``; returns the CompletedProcess."""
    return run_kagg


@pytest.fixture
def nb(tmp_path) -> Path:
    """``greet.ipynb``: the notebook the cloud-provider tests deploy (tests/notebooks.py HELLO)."""
    from notebooks import HELLO, notebook_json

    path = tmp_path / "greet.ipynb"
    path.write_text(notebook_json(HELLO))
    return path


def entry(registry_path: Path, name: str) -> dict:
    """The registry entry ``name`` as the file holds it."""
    return json.loads(registry_path.read_text())["endpoints"][name]


@pytest.fixture
def reg(registry_path):
    """A registry for one test; every endpoint left in it is deleted afterwards (servers stop)."""
    yield registry_path
    if registry_path.exists():
        for name in json.loads(registry_path.read_text())["endpoints"]:
            run_kagg("delete", name)


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 for the block; yields its base URL."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

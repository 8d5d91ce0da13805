"""The zip kagg uploads to Cloud Functions, served the way GCF's Python buildpack serves it.

The test takes the bytes the stand-in received on the signed upload URL,
unzips them into an empty folder and runs ``functions-framework --target
kagg_http --source main.py`` there in a subprocess: the same entry point, the
same framework and the requirements.txt Cloud Build would install.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from aws_fixtures import HELLO, notebook_json
from conftest import run_kagg
from gcp_fixtures import fid, gcp, google_standin, sa_key  # noqa: F401
from test_shim_gcf import Server, call


@pytest.fixture
def nb(tmp_path):
    path = tmp_path / "greet.ipynb"
    path.write_text(notebook_json(HELLO, requirements=["requests"]))
    return path


def test_the_uploaded_zip_runs_under_functions_framework(gcp, nb, fid, registry_path, tmp_path):
    assert run_kagg("deploy", str(nb), "--gcp", "--name", fid).returncode == 0
    data = gcp.uploaded(fid)
    assert data is not None
    source = tmp_path / "source"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        zf.extractall(source)
    assert {"main.py", "kagg_runtime.py", "kagg.json", "requirements.txt"} <= set(names)
    requirements = (source / "requirements.txt").read_text().splitlines()
    assert requirements[0].startswith("requests") and requirements[-1].startswith("functions-framework>=3")

    server = Server(source, tmp_path / "ff.log")
    try:
        server.wait_ready()
        status, _, body = server.first_health
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok" and health["function"] == fid
        status, headers, body = call("POST", server.url + "/", json.dumps({"name": "gcf"}).encode(),
                                     {"content-type": "application/json"})
        assert status == 200 and json.loads(body) == {"greeting": "hello gcf"}
        assert {"x-kagg-instance", "server-timing"} <= {k.lower() for k in headers}
        status, _, body = call("GET", server.url + "/?name=boom")
        assert status == 500 and json.loads(body)["error"]["type"] == "ValueError"
    finally:
        server.stop()
    assert run_kagg("delete", fid).returncode == 0


def test_the_zip_is_deterministic_and_its_sha_is_the_label(gcp, nb, fid, registry_path):
    assert run_kagg("deploy", str(nb), "--gcp", "--name", fid).returncode == 0
    first = gcp.uploaded(fid)
    sha = json.loads(registry_path.read_text())["endpoints"][fid]["artifact_sha256"]
    import hashlib

    assert hashlib.sha256(first).hexdigest() == sha and gcp.function(fid)["labels"]["kagg-sha256"] == sha[:63]
    forced = run_kagg("deploy", str(nb), "--gcp", "--name", fid, "--force")
    assert forced.returncode == 0, forced.stderr
    assert gcp.uploaded(fid) == first  # built and uploaded again: byte for byte the same
    assert run_kagg("delete", fid).returncode == 0

"""``kagg serve`` and the local loop: every way of ending it cleans up, a broken edit keeps the
last good version serving, and errors from notebook code name the notebook's cell and line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, free_port, run_kagg, wait_until
from kagg.providers.local.process import port_is_free
from notebooks import write


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return json.loads(resp.read())
    except OSError:
        return None



class Served:
    """``kagg serve NB`` in a subprocess, with its output collected in a file."""

    def __init__(self, nb: Path, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.out = tmp / "serve.out"
        self.tmpdir = tmp / "tmp"
        self.tmpdir.mkdir()
        env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(self.tmpdir))
        self.proc = subprocess.Popen([sys.executable, "-m", "kagg", "serve", str(nb), "--port", str(self.port)],
                                     stdout=open(self.out, "w"), stderr=subprocess.STDOUT, env=env)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def served(tmp_path):
    made = []

    def start(nb: Path) -> Served:
        s = Served(nb, tmp_path)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_every_way_of_ending_serve_stops_its_server(tmp_path, served, sig):
    nb = write(tmp_path / "live.ipynb", 'def handler():\n    return {"v": 1}')
    s = served(nb)
    wait_until(lambda: get(s.url) == {"v": 1}, what="the server to answer")
    s.proc.send_signal(sig)  # to kagg serve alone, as `kill PID` does
    assert s.proc.wait(timeout=30) in (0, 130), s.output()
    wait_until(lambda: port_is_free(s.port), timeout=20, what="the port to be free")
    assert list(s.tmpdir.iterdir()) == [], "kagg serve left its temporary folder"


def test_a_broken_edit_keeps_the_last_good_version_serving(tmp_path, served):
    nb = write(tmp_path / "live.ipynb", 'def handler():\n    return {"v": 1}')
    s = served(nb)
    wait_until(lambda: get(s.url) == {"v": 1}, what="the first version")
    write(nb, "x = 1", "y = 2\nz = undefined_name + 1\ndef handler():\n    return {'v': 2}")
    wait_until(lambda: "Still serving the last good version" in s.output(), what="the failed reload report")
    out = s.output()
    assert "The edited notebook failed to start: cell 2, line 2: NameError: name 'undefined_name'" in out, out
    wait_until(lambda: get(s.url) == {"v": 1}, what="the last good version to answer again")
    write(nb, 'def handler():\n    return {"v": 3}')
    wait_until(lambda: get(s.url) == {"v": 3}, what="the fixed version")


def test_a_failed_deploy_names_the_cell_and_line(registry_path, tmp_path):
    nb = write(tmp_path / "broken.ipynb", "import os", "a = 1\nb = 2\nc = missing_thing\n",
               "def handler():\n    return 1")
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 1
    assert "cell 2, line 3: NameError: name 'missing_thing' is not defined" in res.stderr, res.stderr


def test_logs_name_the_cell_of_a_traceback(registry_path, tmp_path):
    nb = write(tmp_path / "oops.ipynb", "def handler(x: int = 0):\n    if x:\n        raise ValueError('bad x')\n    return 1")
    try:
        assert run_kagg("deploy", str(nb)).returncode == 0
        assert run_kagg("invoke", "oops", '{"x": 1}').returncode == 1
        logs = run_kagg("logs", "oops")
        assert "[notebook cell 1, line 3]" in logs.stdout, logs.stdout
    finally:
        run_kagg("delete", "oops")


def test_deploy_says_it_waits_and_takes_a_startup_timeout(registry_path, tmp_path):
    nb = write(tmp_path / "slowstart.ipynb", "import time\ntime.sleep(30)\ndef handler():\n    return 1")
    res = run_kagg("deploy", str(nb), "--startup-timeout", "2s")
    assert res.returncode == 1
    assert "waiting for the notebook's cold start" in res.stderr and "up to 2 s" in res.stderr
    assert "--startup-timeout" in res.stderr.splitlines()[-1]
    assert json.loads(registry_path.read_text())["endpoints"] == {}

"""The local server survives its own code and its callers: a notebook that exits, slow clients."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request

import pytest

from conftest import run_kagg, wait_until
from kagg.providers.local.process import Server, is_running
from notebooks import write

EXITS = ('import os\n'
         'def handler(x: int = 1):\n'
         '    if x == 3:\n'
         '        os._exit(3)\n'
         '    return {"v": x}')


def answers(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False



def test_a_server_killed_by_its_notebook_is_restarted_and_says_so(reg, tmp_path):
    nb = write(tmp_path / "quitter.ipynb", EXITS)
    assert run_kagg("deploy", str(nb)).returncode == 0
    entry = json.loads(reg.read_text())["endpoints"]["quitter"]
    url = entry["url"]
    res = run_kagg("invoke", "quitter", '{"x": 3}')  # os._exit(3): gunicorn's master halts
    assert res.returncode == 1 and "unexpected" not in res.stderr
    wait_until(lambda: answers(url + "?x=2"))
    assert is_running(Server.from_data(entry["provider_data"])), "the recorded server is still the one serving"
    logs = run_kagg("logs", "quitter")
    assert "the server exited (code 3); kagg restarts it" in logs.stdout
    assert "RuntimeWarning" not in logs.stdout
    assert json.loads(run_kagg("invoke", "quitter", '{"x": 5}').stdout) == {"v": 5}
    requests = [ln for ln in run_kagg("logs", "quitter").stdout.splitlines() if " kagg POST / " in ln]
    assert requests and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ kagg POST / \d{3} ", ln) for ln in requests)
    listed = json.loads(run_kagg("endpoints", "list", "--json").stdout)
    assert listed[0]["health"] == "up, restarted 1x (last exit code 3)"
    assert "restarted 1x" in run_kagg("endpoints", "list").stdout
    run_kagg("delete", "quitter")
    assert json.loads(reg.read_text())["endpoints"] == {}


@pytest.mark.slow
def test_health_answers_while_fifty_clients_trickle_their_headers(reg, tmp_path):
    nb = write(tmp_path / "steady.ipynb", 'def handler():\n    return "ok"')
    assert run_kagg("deploy", str(nb)).returncode == 0
    url = json.loads(reg.read_text())["endpoints"]["steady"]["url"]
    port = int(url.rsplit(":", 1)[1].strip("/"))
    stop = threading.Event()
    cut_off = []

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                if stop.is_set():
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    cut_off.append(1)  # the server closed it: the header deadline
                    return
                stop.wait(0.5)

    clients = [threading.Thread(target=trickle, daemon=True) for _ in range(50)]
    for c in clients:
        c.start()
    try:
        time.sleep(1.0)  # let every slow client connect and start trickling
        results = []
        for _ in range(16):  # ~8 s of health checks while they trickle
            started = time.monotonic()
            results.append(answers(url + "health", timeout=3.0))
            time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
        assert all(results), f"/health failed {results.count(False)} of {len(results)} times"
        wait_until(lambda: len(cut_off) == 50, timeout=30)  # cut off at the header deadline (10 s)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=5)


def test_free_ports_handed_out_are_never_handed_out_twice():
    """The system may give a just-probed port to the next probe; a batch plans many local
    endpoints before their servers bind, so one process never hands a port out twice."""
    from kagg.providers.local.process import pick_free_port

    ports = [pick_free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)

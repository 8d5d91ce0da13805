"""Fetching a notebook URL (``kagg convert URL``, ``kagg deploy URL``) against hostile servers:
a total deadline (``KAGG_FETCH_TIMEOUT``, 60 s by default) however slowly the server
trickles, credentials in the URL sent as Basic auth and never shown, huge answers refused
without reading them whole. Servers are started here, on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import free_port, run_kagg
from test_invoke_hostile import (GOOD_AUTH, PASSWORD, TOKEN, USER, Request, _big, answer, measured_kagg,
                                 no_secrets, one_error_line, serve, shown, with_credentials)

__all__ = ["serve"]  # the fixture, shared with the invoke tests

NOTEBOOK = json.dumps({
    "nbformat": 4, "nbformat_minor": 5, "metadata": {},
    "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None, "outputs": [],
               "source": "def handler(x: int = 1):\n    return {'y': x}\n"}],
}).encode()


def _trickled_notebook(stop: threading.Event, every: float = 0.5):
    """The notebook, one byte every ``every`` s (the old fetch waited that long per byte, 30 s each)."""
    def behaviour(conn, req: Request) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(NOTEBOOK))
        for byte in NOTEBOOK:
            if stop.wait(every):
                return
            conn.sendall(bytes([byte]))
    return behaviour


def test_a_trickling_notebook_url_is_cut_at_the_fetch_timeout(serve):
    stop = threading.Event()
    server = serve(_trickled_notebook(stop))
    url = f"{server.url}nb.ipynb?token={TOKEN}"
    try:
        started = time.monotonic()
        res = run_kagg("convert", url, env={"KAGG_FETCH_TIMEOUT": "2"}, timeout=90)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
    assert res.returncode == 1, (res.stdout, res.stderr)
    line = one_error_line(res)
    expected = f"Error: could not fetch {server.url}nb.ipynb?token=***: no complete answer within 2 s"
    assert line.startswith(expected), line
    assert "bytes of the body had arrived" in line and "KAGG_FETCH_TIMEOUT" in line, line
    assert elapsed < 20, elapsed  # 2 s and a Python start; the old fetch took minutes
    no_secrets(res.stderr)


def test_a_bad_fetch_timeout_is_bad_input(serve):
    res = run_kagg("convert", "http://127.0.0.1:9/nb.ipynb", env={"KAGG_FETCH_TIMEOUT": "soon"})
    assert res.returncode == 2 and "KAGG_FETCH_TIMEOUT" in one_error_line(res)


def test_credentials_in_a_notebook_url_authenticate_and_are_not_shown(serve):
    def notebook_for_alice(conn, req: Request) -> None:
        if req.headers.get("authorization") != GOOD_AUTH:
            answer(conn, 401, b"who are you?")
        elif req.target.startswith("/nb.ipynb"):
            answer(conn, 200, NOTEBOOK)
        else:
            answer(conn, 404, b"not here")

    server = serve(notebook_for_alice)
    res = run_kagg("convert", with_credentials(server, "/nb.ipynb"), "--json")
    assert res.returncode == 0, res.stderr
    assert server.requests[0].headers["authorization"] == GOOD_AUTH
    assert server.requests[0].headers["host"] == f"127.0.0.1:{server.port}"

    missing = run_kagg("convert", with_credentials(server, "/other.ipynb"))
    assert missing.returncode == 2
    assert one_error_line(missing).startswith(f"Error: {shown(server, '/other.ipynb')} was not found (HTTP 404)")

    port = free_port()
    refused = run_kagg("convert", f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/nb.ipynb?token={TOKEN}")
    assert refused.returncode == 1
    assert one_error_line(refused).startswith(f"Error: could not fetch http://{USER}:***@127.0.0.1:{port}/nb.ipynb")
    no_secrets(res.stdout, res.stderr, missing.stderr, refused.stderr)  # stdout: the recorded source
    assert json.loads(res.stdout)["source"]["path"] == shown(server, "/nb.ipynb")


@pytest.mark.parametrize("framing, peak", [("length", 150), ("close", 350)])
def test_a_huge_notebook_url_is_refused_without_reading_it_whole(serve, tmp_path, framing, peak):
    """A Content-Length over the limit is refused before the body is read; without one, the
    fetch stops one chunk past the limit (200 MB), never reading the whole 300 MB."""
    server = serve(_big(300 << 20, framing))
    res = measured_kagg("convert", f"{server.url}big.ipynb", cwd=tmp_path)
    assert res["rc"] == 2, res
    assert one_error_line(res["stderr"]) == (
        f"Error: {server.url}big.ipynb is larger than 200 MB; that is not a notebook kagg can serve")
    assert res["peak"] < peak * 1000 * 1000, res["peak"] >> 20


def test_a_blob_url_is_fetched_raw(monkeypatch):
    """The request for a GitHub blob page goes to the raw file (no network: the opener is stopped there)."""
    import urllib.error
    import urllib.request

    from kagg.errors import BadInput
    from kagg.notebook.loading import load_notebook

    seen = []

    def fake_open(self, request, data=None, timeout=None):
        seen.append(request.full_url)
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", fake_open)
    with pytest.raises(BadInput) as exc:
        load_notebook("https://github.com/o/r/blob/main/nb.ipynb")
    assert seen == ["https://raw.githubusercontent.com/o/r/main/nb.ipynb"]
    assert "raw.githubusercontent.com" in str(exc.value) and "HTTP 404" in str(exc.value)

"""Script mode in the runtime: each request's values wherever the notebook reads them, and only there.

The notebooks are converted by kagg and served by the runtime in-process. The papermill
comparison is tests/test_script_mode_papermill.py; these tests cover what papermill cannot
show: concurrent requests, threads the notebook starts, state kept between requests.
"""

from __future__ import annotations

import json
import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from functions import import_runtime
from kagg.notebook.convert import convert_source
from kagg.packaging.builder import write_tree
from notebooks import write

rt = import_runtime()


def serve(tmp_path, *cells, name="nb"):
    fn = convert_source(str(write(tmp_path / f"{name}.ipynb", *cells)))
    assert fn.mode == "script"
    write_tree(fn, (), tmp_path / name)
    return rt.load(tmp_path / name, log=False)


def post(app, body):
    return app.handle(rt.Request("POST", "/", {}, {}, json.dumps(body)))


def answer(app, body):
    resp = post(app, body)
    assert resp.status == 200, resp.body
    return resp.json()


@pytest.fixture
def sync_module(monkeypatch):
    """A module the notebook imports to meet the test's threads (no sleeps: barriers)."""
    module = types.ModuleType("kagg_test_sync")
    monkeypatch.setitem(sys.modules, "kagg_test_sync", module)
    return module


def test_concurrent_requests_each_see_their_own_values(tmp_path, sync_module):
    sync_module.barrier = threading.Barrier(8, timeout=30)
    app = serve(tmp_path, "import kagg_test_sync\n\ndef read():\n    return x",
                ("x = 0\nwait = False", ["parameters"]),
                "before = read()\nif wait:\n    kagg_test_sync.barrier.wait()  # all 8 requests are in the notebook\n"
                "result = [before, read(), x]")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: answer(app, {"x": i, "wait": True}), range(8)))
    assert answers == [[i, i, i] for i in range(8)]
    assert answer(app, {}) == [0, 0, 0]


def test_threads_started_by_the_notebook_see_the_request(tmp_path):
    app = serve(tmp_path, "import threading\n\ndef read(out):\n    out.append(x)",
                ("x = 0", ["parameters"]),
                "out = []\nt = threading.Thread(target=read, args=(out,))\nt.start()\nt.join()\nresult = out")
    assert answer(app, {"x": 3}) == [3]
    assert answer(app, {}) == [0]


def test_a_thread_cannot_guess_between_concurrent_requests(tmp_path, sync_module):
    sync_module.barrier = threading.Barrier(2, timeout=30)
    sync_module.after_read = threading.Barrier(2, timeout=30)  # no request ends before both threads read
    app = serve(tmp_path, "import kagg_test_sync\nfrom concurrent.futures import ThreadPoolExecutor\n\n"
                          "def read():\n    try:\n        return x\n    finally:\n"
                          "        if kagg_test_sync.after_read:\n            kagg_test_sync.after_read.wait()",
                ("x = 0\nwait = False", ["parameters"]),
                "if wait:\n    kagg_test_sync.barrier.wait()  # both requests are in the notebook\n"
                "with ThreadPoolExecutor(1) as pool:\n    value = pool.submit(read).result()\nresult = value")
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda i: post(app, {"x": i, "wait": True}), (1, 2)))
    for resp in responses:  # a clear error, never the other request's value
        assert resp.status == 500
        error = resp.json()["error"]
        assert error["type"] == "RuntimeError" and "'x'" in error["message"]
        assert "cannot tell whose value" in error["message"]
    sync_module.after_read = None
    assert answer(app, {"x": 5}) == 5  # alone again: the thread's request is known


def test_names_bound_below_are_seen_by_functions_above(tmp_path):
    app = serve(tmp_path,
                "def seen():\n    return [loop_var, alias.__name__, helper(), Klass.__name__, walrus, later]",
                ("x = 1", ["parameters"]),
                "for loop_var in range(3):\n    pass\nimport json as alias\n\ndef helper():\n    return x\n\n"
                "class Klass:\n    pass\n\n[walrus := x * 2 for _ in range(1)]\nlater = x + 1\nresult = seen()")
    assert answer(app, {"x": 5}) == [2, "json", 5, "Klass", 10, 6]
    assert answer(app, {}) == [2, "json", 1, "Klass", 2, 2]


def test_parameter_named_like_a_builtin(tmp_path):
    app = serve(tmp_path, "def show():\n    return [id, len('abc')]",
                ("id = 'default'", ["parameters"]), "result = show()")
    assert answer(app, {"id": "given"}) == ["given", 3]
    assert answer(app, {}) == ["default", 3]


def test_module_state_written_by_functions_above_is_kept(tmp_path):
    """A lazily loaded model assigned with `global` is loaded once, not once per request."""
    app = serve(tmp_path,
                "model = None\nloads = 0\n\ndef get_model():\n    global model, loads\n"
                "    if model is None:\n        loads += 1\n        model = {'scale': 10}\n    return model",
                ("x = 1", ["parameters"]),
                "model = get_model()\nresult = [x * model['scale'], loads]")
    assert [answer(app, {"x": i}) for i in (1, 2, 3)] == [[10, 1], [20, 1], [30, 1]]


def test_a_parameter_assigned_with_global_above_does_not_reach_later_requests(tmp_path):
    app = serve(tmp_path, "def override():\n    global x\n    x = 99\n\ndef read():\n    return x",
                ("x = 1", ["parameters"]),
                "if x == 2:\n    override()\nresult = read()")
    answer(app, {"x": 2})
    assert answer(app, {"x": 3}) == 3
    assert answer(app, {}) == 1


def test_outside_requests_functions_see_the_module_values(tmp_path):
    app = serve(tmp_path, "def double():\n    return x * 2", ("x = 1", ["parameters"]), "result = double()")
    assert answer(app, {"x": 21}) == 42
    assert app.module.double() == 2  # the module's own x: the parameters cell's default


def test_a_failing_request_leaves_no_trace(tmp_path):
    app = serve(tmp_path, "def read():\n    return x", ("x = 1", ["parameters"]),
                "if x < 0:\n    raise ValueError('negative')\nresult = read()")
    resp = post(app, {"x": -1})
    assert resp.status == 500 and resp.json()["error"]["type"] == "ValueError"
    assert answer(app, {}) == 1
    assert app.module.read() == 1


def test_globals_check_below_still_sees_module_names(tmp_path):
    app = serve(tmp_path, "import math\nmodel = 'cached'\n\ndef read():\n    return x",
                ("x = 1", ["parameters"]),
                "if 'model' not in globals():\n    model = 'reloaded'\nresult = [model, read(), math.floor(2.5)]")
    assert answer(app, {"x": 4}) == ["cached", 4, 2]


def test_functions_reading_no_parameter_get_no_hook(tmp_path):
    app = serve(tmp_path, "import math\nBASE = 2\n\ndef grow(v):\n    return math.floor(v * BASE)",
                ("x = 1.5", ["parameters"]), "result = grow(x)")
    assert answer(app, {"x": 2.5}) == 5
    assert type(vars(app.module)["__builtins__"]) is dict  # plain module: full-speed lookups
    assert vars(app.module)["x"] == 1.5


def test_builtins_the_notebook_replaces_at_load_are_seen(tmp_path, monkeypatch):
    import builtins

    monkeypatch.setattr(builtins, "ascii", builtins.ascii)  # restored after the test: the notebook replaces it
    app = serve(tmp_path, "import builtins\nbuiltins.ascii = lambda obj: 'patched'\n\n"
                          "def show():\n    return [ascii(x), x]",
                ("x = 1", ["parameters"]), "result = show()")
    assert answer(app, {"x": 2}) == ["patched", 2]

"""The runtime module in-process: every row of the endpoint contract (docs/architecture.md, "Endpoint contract")."""

from __future__ import annotations

import json
import re
import threading

import pytest

from functions import (failing_function, handler_function, import_runtime, kwargs_function,
                       materialize, script_function)
from kagg.model import Parameter

rt = import_runtime()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return rt.load(materialize(handler_function(), tmp_path_factory.mktemp("handler")), log=False)


@pytest.fixture(scope="module")
def script_app(tmp_path_factory):
    return rt.load(materialize(script_function(), tmp_path_factory.mktemp("script")), log=False)


@pytest.fixture(scope="module")
def kwargs_app(tmp_path_factory):
    return rt.load(materialize(kwargs_function(), tmp_path_factory.mktemp("kwargs")), log=False)


def post(app, body, path="/"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return app.handle(rt.Request("POST", path, {}, {"content-type": "application/json"}, data))


def get(app, path="/", **query):
    return app.handle(rt.Request("GET", path, {k: v if isinstance(v, list) else [v] for k, v in query.items()}))


def error(resp, status, type_=None):
    assert resp.status == status, resp.body
    err = resp.json()["error"]
    assert set(err) == {"type", "message"}
    if type_:
        assert err["type"] == type_, err
    return err["message"]


# -- POST / -------------------------------------------------------------------------------

def test_post_binds_by_name(app):
    resp = post(app, {"a": 3, "name": "kagg", "flag": True, "xs": [1], "opts": {"k": 1}, "anything": [None]})
    assert resp.status == 200
    assert resp.json() == {"a": 3, "b": 1.5, "name": "kagg", "flag": True, "xs": [1],
                           "opts": {"k": 1}, "anything": [None]}


def test_post_int_accepts_integral_float_and_float_accepts_int(app):
    body = post(app, {"a": 4.0, "b": 2}).json()
    assert body["a"] == 4 and isinstance(body["a"], int)
    assert body["b"] == 2.0 and isinstance(body["b"], float)


@pytest.mark.parametrize("field,value", [
    ("a", "1"), ("a", True), ("a", 1.5), ("b", "x"), ("b", False), ("name", 3), ("flag", 1),
    ("flag", "true"), ("xs", {"a": 1}), ("xs", "1,2"), ("opts", [1]), ("a", None),
])
def test_post_wrong_type_is_400(app, field, value):
    body = {"a": 1, field: value}
    message = error(post(app, body), 400, "InvalidParameter")
    assert repr(field) in message


def test_post_null_allowed_where_default_is_none(app):
    assert post(app, {"a": 1, "xs": None}).json()["xs"] is None


def test_post_missing_and_unknown(app):
    assert "'a'" in error(post(app, {"b": 1.0}), 400, "MissingParameter")
    message = error(post(app, {"a": 1, "zz": 2, "yy": 3}), 400, "UnknownParameter")
    assert "'yy', 'zz'" in message and "a, b, name" in message


def test_post_bad_bodies(app):
    error(post(app, b"{not json"), 400, "InvalidJSON")
    error(post(app, b"\xff\xfe\x00garbage"), 400, "InvalidJSON")
    assert "array" in error(post(app, [1, 2]), 400, "BadRequest")
    error(post(app, b"3"), 400, "BadRequest")


def test_post_empty_body_is_empty_object(kwargs_app):
    assert post(kwargs_app, b"").json() == {"x": 1, "extra": {}}


def test_kwargs_accept_unknown_names(kwargs_app):
    assert post(kwargs_app, {"x": 2, "other": [1]}).json() == {"x": 2, "extra": {"other": [1]}}
    assert get(kwargs_app, x="5", other="7", s="hi").json() == {"x": 5, "extra": {"other": 7, "s": "hi"}}
    error(post(kwargs_app, {"x": "nope"}), 400, "InvalidParameter")


# -- GET / ---------------------------------------------------------------------------------

def test_get_converts_by_declared_type(app):
    body = get(app, a="3", b="2.5", name="42", flag="yes", xs=["1", "x"], opts='{"k": [1]}',
               anything="[1, 2]").json()
    assert body == {"a": 3, "b": 2.5, "name": "42", "flag": True, "xs": [1, "x"], "opts": {"k": [1]},
                    "anything": [1, 2]}


@pytest.mark.parametrize("text,expected", [("true", True), ("1", True), ("YES", True), ("on", True),
                                           ("false", False), ("0", False), ("no", False)])
def test_get_bool_words(app, text, expected):
    assert get(app, a="1", flag=text).json()["flag"] is expected


def test_get_list_forms(app):
    assert get(app, a="1", xs="[1, 2]").json()["xs"] == [1, 2]
    assert get(app, a="1", xs="solo").json()["xs"] == ["solo"]
    assert get(app, a="1", xs=["1", "2", "3"]).json()["xs"] == [1, 2, 3]


def test_get_any_falls_back_to_string(app):
    assert get(app, a="1", anything="plain text").json()["anything"] == "plain text"
    assert get(app, a="1", anything="2.5").json()["anything"] == 2.5
    assert get(app, a="1", anything=["1", "b"]).json()["anything"] == [1, "b"]


def test_get_int_accepts_integral_text(app):
    assert get(app, a="7.0").json()["a"] == 7


@pytest.mark.parametrize("query", [{"a": "x"}, {"a": "1.5"}, {"a": ""}, {"a": "1", "b": "fast"},
                                   {"a": "1", "flag": "maybe"}, {"a": "1", "opts": "[1]"},
                                   {"a": "1", "opts": "{bad"}, {"a": "1", "xs": "[1,"},
                                   {"a": ["1", "2"]}])
def test_get_bad_values_are_400(app, query):
    error(get(app, **query), 400, "InvalidParameter")


def test_get_missing_and_unknown(app):
    error(get(app), 400, "MissingParameter")
    error(get(app, a="1", nope="2"), 400, "UnknownParameter")


# -- health, schema, routing -----------------------------------------------------------------

def test_health(app):
    fn = handler_function()
    resp = get(app, "/health")
    assert resp.status == 200
    assert resp.json() == {"status": "ok", "function": "kitchen", "source_sha256": fn.source.sha256,
                           "kagg_version": __import__("kagg").__version__}


def test_schema(app):
    assert get(app, "/schema").json() == handler_function().schema()
    assert get(app, "/schema/").status == 200


def test_trailing_slash_and_root(app):
    assert get(app, "/health/").status == 200
    assert post(app, {"a": 1}, path="//").status == 200


def test_not_found_and_method_not_allowed(app):
    assert "/nope" in error(get(app, "/nope"), 404, "NotFound")
    resp = app.handle(rt.Request("PUT", "/", {}, {}, b"{}"))
    error(resp, 405, "MethodNotAllowed")
    assert resp.headers["Allow"] == "GET, POST"
    error(post(app, {}, path="/health"), 405, "MethodNotAllowed")
    error(app.handle(rt.Request("DELETE", "/schema")), 405)


# -- errors from the notebook ---------------------------------------------------------------

def test_notebook_exception_is_500_without_traceback(app, capsys):
    resp = post(app, {"a": -1})
    assert resp.status == 500
    assert resp.json() == {"error": {"type": "ValueError", "message": "a must be >= 0"}}
    assert b"Traceback" not in resp.body
    err = capsys.readouterr().err
    assert "Traceback" in err and "kagg_notebook.py" in err and "a must be >= 0" in err
    assert "kagg_runtime.py" not in err  # the log starts at the notebook's code


def test_unserializable_result_is_500(app):
    message = error(post(app, {"a": 1, "kind": "unserializable"}), 500, "SerializationError")
    assert "builtins.object" in message


# -- result conversion ------------------------------------------------------------------------

def test_numpy_result(app):
    resp = post(app, {"a": 3, "kind": "numpy"})
    assert resp.status == 200, resp.body
    assert resp.json() == {"int": 3, "float": 0.5, "bool": True, "array": [0, 1, 2],
                           "matrix": [[1.0, 1.0], [1.0, 1.0]], "nan": None}


def test_pandas_result(app):
    resp = post(app, {"a": 1, "kind": "pandas"})
    assert resp.status == 200, resp.body
    assert resp.json() == {"frame": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], "series": [1.5, 2.5],
                           "indexed": {"p": 1, "q": 2}, "when": "2024-01-02T03:04:05"}


def test_object_results(app):
    resp = post(app, {"a": 2, "b": 0.25, "kind": "objects"})
    assert resp.status == 200, resp.body
    assert resp.json() == {"point": {"x": 2, "y": 0.25}, "date": "2024-01-02", "set": [1, 2, 3],
                           "dec": 2.5, "bytes": "aGk=", "inf": None, "tuple": [1, 2]}


def test_encode_edge_cases():
    import datetime
    import decimal
    import enum

    class Colour(enum.Enum):
        RED = "red"

    value = {1: float("nan"), "d": decimal.Decimal("3"), "t": datetime.time(1, 2),
             "td": datetime.timedelta(seconds=90), "c": Colour.RED, "fs": frozenset({"b", "a"}),
             "mixed": {1, "a"}, datetime.date(2024, 1, 1): 1}
    out = json.loads(rt.encode(value))
    assert out["1"] is None and out["d"] == 3 and out["t"] == "01:02:00" and out["td"] == 90.0
    assert out["c"] == "red" and out["fs"] == ["a", "b"] and sorted(map(str, out["mixed"])) == ["1", "a"]
    assert out["2024-01-01"] == 1
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(TypeError):
        rt.encode(cycle)


# -- script mode --------------------------------------------------------------------------------

def test_script_mode_defaults_and_values(script_app):
    assert post(script_app, {}).json() == {"y": 20, "label": "n", "words": ["w", "n"], "root": 2 ** 0.5}
    # a mutable default is fresh for every request
    assert post(script_app, {"x": 4, "label": "b"}).json()["words"] == ["w", "b"]
    assert get(script_app, x="9").json()["y"] == 90


def test_script_mode_errors(script_app, capsys):
    error(post(script_app, {"x": "a"}), 400, "InvalidParameter")
    error(post(script_app, {"zz": 1}), 400, "UnknownParameter")
    resp = post(script_app, {"x": -1})
    assert resp.json() == {"error": {"type": "ValueError", "message": "x must not be negative"}}
    assert "kagg_request.py" in capsys.readouterr().err
    assert "'result'" in error(post(script_app, {"label": "none"}), 500, "MissingResult")


def test_script_requests_do_not_leak(script_app):
    post(script_app, {"x": 1, "label": "first"})
    assert "label" not in vars(script_app.module)


# -- headers and the cold flag -------------------------------------------------------------------

def test_headers_on_every_response(tmp_path):
    fresh = rt.load(materialize(handler_function(), tmp_path), log=False)
    responses = [post(fresh, {"a": 1}), get(fresh, "/health"), get(fresh, "/nope"), post(fresh, b"["),
                 post(fresh, {"a": -1}), get(fresh, "/schema")]
    first, rest = responses[0], responses[1:]
    assert first.headers["X-Kagg-Cold"] == "1"
    assert first.headers["Server-Timing"].startswith("init;dur=")
    assert "handler;dur=" in first.headers["Server-Timing"]
    for resp in responses:
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["X-Kagg-Instance"] == fresh.instance_id
    for resp in rest:
        assert resp.headers["X-Kagg-Cold"] == "0"
        timing = resp.headers["Server-Timing"]
        assert timing.startswith("handler;dur=") and "init" not in timing
        float(timing.split("dur=")[1])


def test_probes_do_not_take_the_cold_flag(tmp_path):
    fresh = rt.load(materialize(handler_function(), tmp_path), log=False)
    for probe in (get(fresh, "/health"), get(fresh, "/schema"), get(fresh, "/nope"), post(fresh, {}, "/health")):
        assert probe.headers["X-Kagg-Cold"] == "0" and "init" not in probe.headers["Server-Timing"]
    first_call = post(fresh, {"nope": 1})  # a call, even a failed one, is the cold one
    assert first_call.status == 400 and first_call.headers["X-Kagg-Cold"] == "1"
    assert post(fresh, {"a": 1}).headers["X-Kagg-Cold"] == "0"


def test_init_time_is_the_load(tmp_path):
    fresh = rt.load(materialize(handler_function(), tmp_path), log=False)
    assert fresh.init_ms > 0
    timing = get(fresh, a="1").headers["Server-Timing"]
    assert float(timing.split(",")[0].split("dur=")[1]) == pytest.approx(fresh.init_ms, abs=0.001)


def test_instances_differ(tmp_path):
    one = rt.load(materialize(kwargs_function(), tmp_path / "1"), log=False)
    two = rt.load(materialize(kwargs_function(), tmp_path / "2"), log=False)
    assert one.instance_id != two.instance_id and len(one.instance_id) >= 12


def test_cold_flag_handed_out_once_across_threads(tmp_path):
    fresh = rt.load(materialize(kwargs_function(), tmp_path), log=False)
    barrier = threading.Barrier(16)
    flags: list[str] = []

    def call():
        barrier.wait()
        flags.append(get(fresh, x="2").headers["X-Kagg-Cold"])

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(flags) == ["0"] * 15 + ["1"]


def test_access_log_line(tmp_path, capsys):
    fresh = rt.load(materialize(kwargs_function(), tmp_path), log=True)
    get(fresh, "/health")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    stamp, who, method, path, status, ms = line.split()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp) and who == "kagg"
    assert (method, path, status) == ("GET", "/health", "200") and ms.endswith("ms")


# -- loading -----------------------------------------------------------------------------------

def test_import_failure_prints_and_raises(tmp_path, capsys):
    with pytest.raises(RuntimeError, match="boom while loading"):
        rt.load(materialize(failing_function(), tmp_path))
    err = capsys.readouterr().err
    assert "Traceback" in err and "kagg_notebook.py" in err and "boom while loading" in err


def test_missing_handler_fails_to_load(tmp_path, capsys):
    fn = kwargs_function()
    fn.entry = "predict"
    with pytest.raises(rt.LoadError, match="predict"):
        rt.load(materialize(fn, tmp_path))


def test_display_is_a_noop():
    assert rt.display(1, 2, raw=True) is None


def test_async_handler(tmp_path):
    from functions import make_function

    fn = make_function("aio", "import asyncio\nasync def handler(x: int = 1):\n    await asyncio.sleep(0)\n"
                              "    return {'x': x}\n", [Parameter("x", "int", 1)])
    assert post(rt.load(materialize(fn, tmp_path), log=False), {"x": 3}).json() == {"x": 3}


def test_async_handler_keeps_one_event_loop_per_thread(tmp_path):
    from functions import make_function

    fn = make_function("loops", "import asyncio\nLOOPS = []  # keeps every loop alive: ids stay unique\n\n"
                                "async def handler():\n    loop = asyncio.get_running_loop()\n"
                                "    LOOPS.append(loop)\n    await asyncio.sleep(0)\n"
                                "    return {'loop': id(loop), 'loops': len(set(map(id, LOOPS)))}\n", [])
    app = rt.load(materialize(fn, tmp_path), log=False)
    first, second = post(app, {}).json(), post(app, {}).json()
    assert second == {"loop": first["loop"], "loops": 1}  # same thread, same loop
    elsewhere: list = []
    thread = threading.Thread(target=lambda: elsewhere.append(post(app, {}).json()))
    thread.start()
    thread.join()
    assert elsewhere[0]["loop"] != first["loop"] and elsewhere[0]["loops"] == 2  # a loop of its own
    app.module.LOOPS[-1].close()  # that thread is gone
    assert post(app, {}).json() == {"loop": first["loop"], "loops": 2}
    assert not app.module.LOOPS[0].is_running() and not app.module.LOOPS[0].is_closed()


def test_async_handler_replaces_a_closed_loop(tmp_path):
    from functions import make_function

    fn = make_function("closer", "import asyncio\nSEEN = []\n\nasync def handler():\n"
                                 "    SEEN.append(asyncio.get_running_loop())\n    return len(SEEN)\n", [])
    app = rt.load(materialize(fn, tmp_path), log=False)
    assert post(app, {}).json() == 1
    app.module.SEEN[0].close()  # e.g. by the notebook's own clean-up
    assert post(app, {}).json() == 2 and app.module.SEEN[1] is not app.module.SEEN[0]


def test_request_headers_may_be_lazy():
    calls = []

    def headers():
        calls.append(1)
        return {"x-a": "1"}

    req = rt.Request("get", "/", None, headers, "{}")
    assert req.method == "GET" and req.body == b"{}" and calls == []
    assert req.headers == {"x-a": "1"} and req.headers["x-a"] == "1" and calls == [1]

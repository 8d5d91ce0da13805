"""Error mapping at the edges: what json accepts but a request may not, results JSON cannot carry,
and notebook code that tries to end the process. Every answer keeps the contract's error body."""

from __future__ import annotations

import json

import pytest

from functions import import_runtime, make_function, materialize
from kagg.model import Parameter

rt = import_runtime()

ECHO_MODULE = '''\
import sys

def handler(f: float = 0.0, n: int = 0, xs: list = None, s: str = "", anything=None, opts: dict = None,
            action: str = "echo"):
    if action == "exit":
        sys.exit(3)
    if action == "exit-none":
        exit()
    if action == "exit-text":
        sys.exit("bye")
    if action == "interrupt":
        raise KeyboardInterrupt
    if action == "surrogate":
        return {"name": "ok", "items": ["fine", "bad \\ud800 here"]}
    if action == "surrogate-key":
        return {"bad \\udfff": 1}
    if action == "deep":
        value = []
        for _ in range(100000):
            value = [value]
        return value
    if action == "huge-int":
        return 10 ** 5000
    return {"f": f, "n": n, "xs": xs, "s": s, "anything": anything, "opts": opts}
'''
ECHO_PARAMETERS = [Parameter("f", "float", 0.0), Parameter("n", "int", 0), Parameter("xs", "list", None),
                   Parameter("s", "str", ""), Parameter("anything", "any", None), Parameter("opts", "dict", None),
                   Parameter("action", "str", "echo")]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    fn = make_function("edges", ECHO_MODULE, ECHO_PARAMETERS)
    return rt.load(materialize(fn, tmp_path_factory.mktemp("edges")), log=False)


def post(app, body):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return app.handle(rt.Request("POST", "/", {}, {"content-type": "application/json"}, data))


def get(app, **query):
    return app.handle(rt.Request("GET", "/", {k: v if isinstance(v, list) else [v] for k, v in query.items()}))


def error(resp, status, type_=None):
    assert resp.status == status, resp.body
    body = json.loads(resp.body)  # always the contract's body, always valid JSON
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    if type_:
        assert body["error"]["type"] == type_, body
    return body["error"]["message"]


# -- numbers a float cannot hold ---------------------------------------------------------------

def test_huge_integer_for_a_float_is_400(app):
    message = error(post(app, '{"f": 1' + "0" * 400 + "}"), 400, "InvalidParameter")
    assert "'f'" in message and "out of range" in message


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ['{"f": %s}', '{"anything": %s}', '{"xs": [1, %s]}', '{"opts": {"k": %s}}'])
def test_non_finite_constants_are_400(app, token, where):
    message = error(post(app, where % token), 400, "InvalidJSON")
    assert token.lstrip("-") in message


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E+309", "999e306", "1" + "0" * 309 + ".5",
                                    "1" + "0" * 300 + "e9", "0.5e0400"],
                         ids=["1e400", "-1e400", "1E+309", "999e306", "310-digits", "301-digits-e9", "0.5e0400"])
@pytest.mark.parametrize("where", ['{"f": %s}', '{"anything": %s}', '{"xs": [%s]}', '{"opts": {"a": {"b": %s}}}'])
def test_out_of_range_numbers_are_400(app, number, where):
    message = error(post(app, where % number), 400, "InvalidJSON")
    assert "out of range" in message


def test_numbers_in_range_still_work(app):
    body = post(app, '{"f": 1.7e308, "xs": [1e-400, 1e308, 12345678901234567890123, 2.5e-5], "n": 3.0}').json()
    assert body["f"] == 1.7e308 and body["xs"] == [0.0, 1e308, 12345678901234567890123, 2.5e-5]
    assert body["n"] == 3
    assert post(app, {"s": "e000 and 1e999 in a string are text"}).json()["s"].startswith("e000")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "Infinity", "1e400"])
def test_non_finite_query_float_is_400(app, text):
    assert "finite" in error(get(app, f=text), 400, "InvalidParameter")


def test_query_json_values(app):
    assert get(app, anything="NaN").json()["anything"] == "NaN"  # not JSON: the text itself
    assert "out of range" in error(get(app, anything="1e400"), 400, "InvalidParameter")
    assert "out of range" in error(get(app, xs="[1, 1e400]"), 400, "InvalidParameter")
    assert get(app, xs="[1, 2.5]").json()["xs"] == [1, 2.5]


# -- nesting and surrogates in the request ---------------------------------------------------

@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"xs": ' + "[" * 5000 + "]" * 5000 + "}",
                                  '{"opts": ' + '{"a": ' * 5000 + "1" + "}" * 5001],
                         ids=["body", "list-value", "dict-value"])
def test_deeply_nested_body_is_400(app, body):
    assert "nests too deeply" in error(post(app, body), 400, "InvalidJSON")


def test_deeply_nested_query_value_is_400(app):
    assert "nests too deeply" in error(get(app, xs="[" * 5000 + "]" * 5000), 400, "InvalidParameter")
    assert "nests too deeply" in error(get(app, anything="[" * 5000 + "]" * 5000), 400, "InvalidParameter")


@pytest.mark.parametrize("body", ['{"s": "\\ud800"}', '{"s": "a\\udc00b"}', '{"xs": ["ok", "\\uDBFF"]}',
                                  '{"opts": {"\\ud800": 1}}', '{"s": "\\ud83d\\ud83d\\ude00"}'])
def test_lone_surrogate_in_a_string_is_400(app, body):
    assert "lone surrogate" in error(post(app, body), 400, "InvalidJSON")


def test_raw_utf8_surrogate_bytes_are_400(app):
    error(post(app, b'{"s": "\xed\xa0\x80"}'), 400, "InvalidJSON")


def test_surrogate_pairs_and_backslashes_are_fine(app):
    assert post(app, '{"s": "\\ud83d\\ude00 \\\\ud800"}').json()["s"] == "\U0001F600 \\ud800"


# -- results JSON cannot carry ------------------------------------------------------------------

def test_lone_surrogate_in_the_result_is_500_naming_it(app):
    message = error(post(app, {"action": "surrogate"}), 500, "SerializationError")
    assert "lone surrogate" in message and "'\\ud800'" in message
    assert "result['items'][1]" in message
    assert "result" in error(post(app, {"action": "surrogate-key"}), 500, "SerializationError")


def test_deep_and_huge_results_are_500_serialization_errors(app):
    assert "nests too deeply" in error(post(app, {"action": "deep"}), 500, "SerializationError")
    error(post(app, {"action": "huge-int"}), 500, "SerializationError")


# -- the notebook trying to end the process ------------------------------------------------------

@pytest.mark.parametrize("action,called", [("exit", "sys.exit(3)"), ("exit-none", "sys.exit()"),
                                           ("exit-text", "sys.exit('bye')")])
def test_exit_in_the_notebook_is_500_and_serving_goes_on(app, action, called, capsys):
    message = error(post(app, {"action": action}), 500, "SystemExit")
    assert called in message and "called exit" in message
    assert "Traceback" in capsys.readouterr().err
    assert post(app, {"n": 2}).json()["n"] == 2


def test_keyboard_interrupt_in_the_notebook_is_500(app):
    assert "KeyboardInterrupt" in error(post(app, {"action": "interrupt"}), 500, "KeyboardInterrupt")
    assert post(app, {}).status == 200


def test_exit_in_script_mode_is_500(tmp_path):
    fn = make_function("bye", "import sys\n", [Parameter("code", "int", 0)], mode="script",
                       request_source="if code:\n    sys.exit(code)\nresult = code\n")
    app = rt.load(materialize(fn, tmp_path), log=False)
    assert "sys.exit(4)" in error(post(app, {"code": 4}), 500, "SystemExit")
    assert post(app, {}).json() == 0

"""A handler default kagg cannot read as a literal (``n: int = DEFAULT_N``, ``m=len(xs)``): the
schema shows none, the parameter stays optional, and a request without it gets Python's default."""

from __future__ import annotations

import json

import pytest

from functions import import_runtime
from kagg.monitor.target import schema_defaults
from kagg.notebook.convert import convert_source
from kagg.packaging.builder import write_tree
from notebooks import write

rt = import_runtime()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("defaults")
    fn = convert_source(str(write(root / "defaults.ipynb", "DEFAULT_N = 5\nXS = [1, 2, 3]",
                                  "def handler(n: int = DEFAULT_N, m=len(XS), tag: str = 'x', label=None):\n"
                                  "    return {'n': n, 'm': m, 'tag': tag, 'label': label}")))
    write_tree(fn, (), root / "artifact")
    return rt.load(root / "artifact", log=False)


def post(app, body):
    return app.handle(rt.Request("POST", "/", {}, {}, json.dumps(body)))


def test_schema_has_no_default_for_it(app):
    schema = app.handle(rt.Request("GET", "/schema")).json()
    assert "default" not in schema["properties"]["n"] and "default" not in schema["properties"]["m"]
    assert schema["properties"]["n"]["type"] == "integer"
    assert schema["properties"]["tag"]["default"] == "x" and schema["properties"]["label"]["default"] is None
    assert "required" not in schema


def test_missing_gets_the_real_default(app):
    assert post(app, {}).json() == {"n": 5, "m": 3, "tag": "x", "label": None}
    assert app.handle(rt.Request("GET", "/", {"tag": ["y"]})).json() == {"n": 5, "m": 3, "tag": "y", "label": None}
    assert post(app, {"n": 7, "m": 1}).json() == {"n": 7, "m": 1, "tag": "x", "label": None}


def test_null_is_not_its_default(app):
    resp = post(app, {"n": None})
    assert resp.status == 400 and resp.json()["error"]["type"] == "InvalidParameter"
    assert post(app, {"m": None}).json()["m"] is None  # no annotation: null is a value like any other
    assert post(app, {"label": None}).status == 200  # a default of None still accepts null


def test_monitor_payload_from_the_schema_works(app):
    """``kagg monitor`` sends the schema's defaults: those must be a request that succeeds."""
    schema = app.handle(rt.Request("GET", "/schema")).json()
    payload = schema_defaults(schema, "defaults")
    assert payload == {"tag": "x", "label": None}
    resp = post(app, payload)
    assert resp.status == 200 and resp.json()["n"] == 5

"""Script mode side by side with papermill: the same notebook, the same parameters, the same ``result``.

papermill runs the whole notebook per execution with the parameters injected after the
``parameters`` cell; kagg runs the cells above once per instance and the cells below per
request. Wherever the notebook *reads* a parameter (functions and methods defined above
the parameters cell, lambdas, module-level code below it, a thread pool) both must agree.
Each case is one small notebook and a list of requests sent, in order, to ONE kagg
instance, so a request that leaks into the next one shows up as a difference.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from functions import import_runtime
from kagg.notebook.convert import convert_source
from kagg.packaging.builder import write_tree
from notebooks import write

pytestmark = pytest.mark.slow

rt = import_runtime()

PRINT_RESULT = ("import json\nprint(json.dumps(result, sort_keys=True))", ["skip"])  # kagg leaves it out

CASES = {
    "functions_above": (
        ["def double():\n    return x * 2\n\n\ndef describe(label):\n    return f'{label}={double()}'",
         ("x = 1", ["parameters"]),
         "result = {'double': double(), 'text': describe('x')}"],
        [{"x": 5}, {}, {"x": -3}],
    ),
    "class_method": (
        ["class Scaler:\n    def apply(self, v):\n        return v * factor + offset()\n\n\n"
         "def offset():\n    return shift\n\n\nscaler = Scaler()",
         ("factor = 2\nshift = 0.5", ["parameters"]),
         "result = [scaler.apply(1), scaler.apply(10)]"],
        [{"factor": 3}, {"shift": -1.0}],
    ),
    "default_arg_lambda": (
        ["def make():\n    return lambda v=x: v * 10",
         ("x = 1", ["parameters"]),
         "f = lambda v=x: v + 1\ng = make()\nresult = [f(), g(), (lambda: x)(), [x * i for i in range(3)]]"],
        [{"x": 7}, {}],
    ),
    "mutable_default": (  # each papermill run is fresh; the kagg instance must be too
        ["def grow(n):\n    items.append(n)\n    return len(items)",
         ("items = [1]\nopts = {'k': 1}", ["parameters"]),
         "grow(2)\nopts['seen'] = len(opts)\nresult = {'items': items, 'opts': opts, 'n': grow(3)}"],
        [{}, {}, {"items": [9]}, {}],
    ),
    "two_parameters": (
        ["import math\n\n\ndef area():\n    return round(math.pi * radius ** 2, 6)\n\n\n"
         "class Shape:\n    def name(self):\n        return label.upper()",
         ("radius = 1.0\nlabel = 'circle'", ["parameters"]),
         "result = {'area': area(), 'name': Shape().name(), 'both': [radius, label]}"],
        [{"radius": 2.0, "label": "disc"}, {"radius": 3.0}, {"label": "ring"}, {}],
    ),
    "rebound_below_and_threads": (
        ["from concurrent.futures import ThreadPoolExecutor\nscale = 2\n\n\ndef scaled(v):\n    return v * scale * x",
         ("x = 1", ["parameters"]),
         "scale = 3\nwith ThreadPoolExecutor(2) as pool:\n    threaded = list(pool.map(scaled, [1, 2]))\n"
         "result = {'direct': scaled(1), 'threaded': threaded}"],
        [{"x": 4}, {}],
    ),
}


def _papermill(notebook: Path, out: Path, parameters: dict):
    import papermill

    executed = papermill.execute_notebook(str(notebook), str(out), parameters=parameters, kernel_name="python3",
                                          progress_bar=False, log_output=False)
    text = "".join(o.get("text", "") for o in executed.cells[-1].outputs if o.get("output_type") == "stream")
    return json.loads(text)


@pytest.fixture(scope="module")
def papermill_answers(tmp_path_factory):
    """Every (case, parameters) executed by papermill, several kernels at a time."""
    root = tmp_path_factory.mktemp("papermill")
    jobs = []
    for name, (cells, requests) in CASES.items():
        notebook = write(root / f"{name}.ipynb", *cells, PRINT_RESULT)
        for i, params in enumerate(requests):
            jobs.append(((name, i), notebook, root / f"{name}-{i}.out.ipynb", params))
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda job: _papermill(*job[1:]), jobs))
    return {job[0]: answer for job, answer in zip(jobs, answers)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_script_mode_answers_like_papermill(name, papermill_answers, tmp_path):
    cells, requests = CASES[name]
    fn = convert_source(str(write(tmp_path / f"{name}.ipynb", *cells, PRINT_RESULT)))
    assert fn.mode == "script"
    write_tree(fn, (), tmp_path / "artifact")
    app = rt.load(tmp_path / "artifact", log=False)
    for i, params in enumerate(requests):  # in order, on one instance
        resp = app.handle(rt.Request("POST", "/", {}, {}, json.dumps(params)))
        assert resp.status == 200, resp.body
        assert resp.json() == papermill_answers[(name, i)], (name, params)

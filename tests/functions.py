"""ConvertedFunction objects built by hand, so packaging and runtime tests need no notebook.

Each builder mirrors what conversion would produce for a small notebook; the
code strings are the generated modules. ``materialize`` writes the unzipped
artifact to a folder, ready for ``kagg_runtime.load`` or a shim.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Optional

from kagg.model import ConvertedFunction, Parameter, SourceInfo
from kagg.packaging.builder import write_tree

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "kagg" / "packaging" / "runtime"

HANDLER_MODULE = '''\
import dataclasses
import datetime
import decimal
from kagg_runtime import display

LOADED = datetime.date(2024, 1, 2)
display("loaded")


@dataclasses.dataclass
class Point:
    x: int
    y: float


def handler(a: int, b: float = 1.5, name: str = "world", flag: bool = False, xs: list = None,
            opts: dict = None, anything=None, kind: str = "plain"):
    if a < 0:
        raise ValueError("a must be >= 0")
    if kind == "numpy":
        import numpy as np
        return {"int": np.int64(a), "float": np.float32(0.5), "bool": np.bool_(True),
                "array": np.arange(a), "matrix": np.ones((2, 2)), "nan": np.float64("nan")}
    if kind == "pandas":
        import pandas as pd
        frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
        return {"frame": frame, "series": pd.Series([1.5, 2.5]),
                "indexed": pd.Series([1, 2], index=["p", "q"]),
                "when": pd.Timestamp("2024-01-02T03:04:05")}
    if kind == "objects":
        return {"point": Point(a, b), "date": LOADED, "set": {3, 1, 2}, "dec": decimal.Decimal("2.5"),
                "bytes": b"hi", "inf": float("inf"), "tuple": (1, 2)}
    if kind == "unserializable":
        return {"x": object()}
    return {"a": a, "b": b, "name": name, "flag": flag, "xs": xs, "opts": opts,
            "anything": anything}
'''

HANDLER_PARAMETERS = [
    Parameter("a", "int", None, True, "how many"),
    Parameter("b", "float", 1.5),
    Parameter("name", "str", "world"),
    Parameter("flag", "bool", False),
    Parameter("xs", "list", None),
    Parameter("opts", "dict", None),
    Parameter("anything", "any", None),
    Parameter("kind", "str", "plain"),
]

KWARGS_MODULE = '''\
def handler(x: int = 1, **extra):
    return {"x": x, "extra": extra}
'''

SCRIPT_MODULE = '''\
import math
FACTOR = 10
'''

SCRIPT_REQUEST = '''\
if x < 0:
    raise ValueError("x must not be negative")
words.append(label)
if label != "none":
    result = {"y": x * FACTOR, "label": label, "words": words, "root": math.sqrt(abs(x))}
'''

SCRIPT_PARAMETERS = [
    Parameter("x", "int", 2, False, "the input"),
    Parameter("label", "str", "n"),
    Parameter("words", "list", ["w"]),
]

FAILING_MODULE = '''\
import os
raise RuntimeError("boom while loading the notebook")
'''


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_function(name: str, module_source: str, parameters: list[Parameter], *, mode: str = "handler",
                  request_source: Optional[str] = None, accepts_kwargs: bool = False,
                  requirements: Optional[list[str]] = None) -> ConvertedFunction:
    """A ConvertedFunction as conversion would return it."""
    return ConvertedFunction(
        name=name,
        mode=mode,  # type: ignore[arg-type]
        entry="handler" if mode == "handler" else None,
        module_source=module_source,
        request_source=request_source,
        parameters=list(parameters),
        accepts_kwargs=accepts_kwargs,
        requirements=list(requirements or []),
        requirements_origin="inferred",
        source=SourceInfo(path=f"{name}.ipynb", sha256=_sha(module_source + (request_source or ""))),
    )


def handler_function() -> ConvertedFunction:
    return make_function("kitchen", HANDLER_MODULE, HANDLER_PARAMETERS, requirements=["numpy", "pandas"])


def kwargs_function() -> ConvertedFunction:
    return make_function("kwargs", KWARGS_MODULE, [Parameter("x", "int", 1)], accepts_kwargs=True)


def script_function() -> ConvertedFunction:
    return make_function("script", SCRIPT_MODULE, SCRIPT_PARAMETERS, mode="script",
                         request_source=SCRIPT_REQUEST)


def failing_function() -> ConvertedFunction:
    return make_function("failing", FAILING_MODULE, [])


def materialize(function: ConvertedFunction, dest: Path, shims: tuple[str, ...] = ()) -> Path:
    """Write the unzipped artifact into ``dest`` and return it."""
    write_tree(function, shims, dest)
    return dest


def import_runtime():
    """The runtime module from the source tree, importable as ``kagg_runtime`` (as in an artifact)."""
    if str(RUNTIME_DIR) not in sys.path:
        sys.path.insert(0, str(RUNTIME_DIR))
    import kagg_runtime

    return kagg_runtime


def unzip(artifact_path: Path, dest: Path) -> Path:
    """Extract a built artifact into ``dest`` (as a cloud would) and return it."""
    import zipfile

    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(artifact_path) as zf:
        zf.extractall(dest)
    return dest

"""The deterministic artifact (docs/architecture.md, "Artifact"): same function and options, byte-identical zip.

Nothing here depends on the clock, the file system's order or file modes:
entries are sorted, every timestamp is 1980-01-01, every mode 0644, the
compression level is fixed and no extra fields are written. The zip's sha256
is the artifact's identity and its file name, so an unchanged build reuses the
file already there.

With ``bytecode`` (the AWS provider asks for it when this interpreter is the
Lambda runtime's Python), every module also gets its ``__pycache__`` .pyc, so a
cold start on Lambda (whose code folder is read-only: nothing compiled there is
kept) loads bytecode instead of compiling each module from source. The .pyc
files are PEP 552 unchecked-hash ones (no mtime; never checked against the
source) whose code objects name the zip-relative path, marshalled in format 2:
the current format's back-references depend on the building process's
reference counts, format 2 has none, so the bytes depend on the source alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import kagg
from kagg.model import Artifact, ConvertedFunction

#: the entry shims each provider kind needs, as file names in kagg/packaging/shims
SHIMS: dict[str, tuple[str, ...]] = {
    "gcf": ("main.py",),
    "lambda": ("lambda_function.py",),
    "azure": ("function_app.py", "host.json"),
}

NOTEBOOK_FILE = "kagg_notebook.py"
REQUEST_FILE = "kagg_request.py"
MANIFEST_FILE = "kagg.json"
RUNTIME_FILE = "kagg_runtime.py"
REQUIREMENTS_FILE = "requirements.txt"

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
COMPRESS_LEVEL = 6  # zlib's default: vendored native libraries compress slowly at 9 for little gain
_UNIX = 3  # ZipInfo.create_system, fixed so a build on Windows gives the same bytes

_PACKAGE_DIR = Path(__file__).resolve().parent
#: where kagg_runtime.py and the shims live (e.g. to import the runtime in-process)
RUNTIME_DIR = _PACKAGE_DIR / "runtime"
SHIMS_DIR = _PACKAGE_DIR / "shims"
#: vendored folders hold bytecode caches that embed mtimes: never packaged (kagg makes its own)
_SKIP_DIRS = frozenset({"__pycache__"})
_SKIP_SUFFIXES = (".pyc", ".pyo")
#: marshal format of the .pyc files kagg writes: 2 is the newest without back-references
PYC_MARSHAL_VERSION = 2
_UNCHECKED_HASH_FLAGS = (0b01).to_bytes(4, "little")  # PEP 552: hash-based, do not check the source


def runtime_source() -> bytes:
    """The runtime module's bytes, exactly as copied into every artifact."""
    return (RUNTIME_DIR / RUNTIME_FILE).read_bytes()


def shim_files(shims: Iterable[str]) -> dict[str, bytes]:
    """The entry-shim files for the given shim kinds (keys of :data:`SHIMS`)."""
    out: dict[str, bytes] = {}
    for kind in shims:
        if kind not in SHIMS:
            raise ValueError(f"unknown shim {kind!r}; known: {', '.join(sorted(SHIMS))}")
        for name in SHIMS[kind]:
            out[name] = (SHIMS_DIR / name).read_bytes()
    return out


def manifest_bytes(function: ConvertedFunction) -> bytes:
    """``kagg.json``: sorted keys and fixed layout, so it is part of the deterministic zip."""
    text = json.dumps(function.manifest(kagg.__version__), sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


#: what an entry shim needs the platform to install, added to requirements.txt unless the notebook
#: names it already (Azure installs requirements.txt at deploy: its worker library is one of them)
SHIM_REQUIREMENTS: dict[str, tuple[str, ...]] = {"azure": ("azure-functions",)}


def _distribution(requirement: str) -> str:
    import re

    return re.split(r"[<>=!~;\[ @]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirements_bytes(function: ConvertedFunction, shims: Sequence[str] = ()) -> bytes:
    lines = [r.strip() for r in function.requirements if r.strip()]
    named = {_distribution(r) for r in lines}
    for kind in shims:
        lines += [r for r in SHIM_REQUIREMENTS.get(kind, ()) if _distribution(r) not in named]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _local_files(function: ConvertedFunction, own: dict[str, bytes]) -> dict[str, bytes]:
    """The files from the notebook's folder (modules, data files) at their relative paths.

    Conversion refuses names that kagg's own files take and paths out of the folder
    (kagg.notebook.datafiles); a function made some other way gets a ValueError here rather
    than an artifact in which a file silently replaced another or a path escaped the tree.
    """
    out: dict[str, bytes] = {}
    for name, data in function.local_files.items():
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"local file {name!r} is not a relative path inside the notebook's folder")
        if name in own or parts[0] in {n[:-3] for n in own if n.endswith(".py")} and len(parts) > 1:
            raise ValueError(f"local file {name} would replace kagg's own {parts[0]} in the artifact")
        out[name] = data
    return out


def artifact_files(function: ConvertedFunction, shims: Sequence[str]) -> dict[str, bytes]:
    """Every file of the artifact (without vendored dependencies), by path at the zip's root."""
    own = {
        NOTEBOOK_FILE: function.module_source.encode("utf-8"),
        MANIFEST_FILE: manifest_bytes(function),
        RUNTIME_FILE: runtime_source(),
        REQUIREMENTS_FILE: requirements_bytes(function, shims),
    }
    if function.mode == "script":
        own[REQUEST_FILE] = (function.request_source or "").encode("utf-8")
    for name, data in shim_files(shims).items():
        own[name] = data
    own.update(function.runtime_files)  # e.g. kagg_jobs.py + kagg_jobs.json (docs/jobs.md)
    files = _local_files(function, own)
    files.update(own)
    return dict(sorted(files.items()))


def write_tree(function: ConvertedFunction, shims: Sequence[str], dest: Path) -> list[str]:
    """Write the unzipped artifact into ``dest`` (``kagg convert -o DIR``); returns the paths written."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    files = artifact_files(function, shims)
    for name, data in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    return list(files)


def _vendor_files(vendor_dir: Path) -> Iterator[tuple[str, Path]]:
    """(zip path, file) for every file under ``vendor_dir``, in sorted order, caches skipped."""
    for root, dirs, names in os.walk(vendor_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(names):
            if name.endswith(_SKIP_SUFFIXES):
                continue
            path = Path(root) / name
            yield path.relative_to(vendor_dir).as_posix(), path


def bytecode_matches(python_version: str) -> bool:
    """True when this interpreter can write bytecode for ``python_version`` ("3.12"): CPython of that version."""
    return sys.implementation.name == "cpython" and python_version == "%d.%d" % sys.version_info[:2]


def pyc_path(name: str) -> str:
    """``pkg/mod.py`` -> ``pkg/__pycache__/mod.cpython-312.pyc`` (this interpreter's cache tag)."""
    folder, _, file = name.rpartition("/")
    cached = f"__pycache__/{file[:-3]}.{sys.implementation.cache_tag}.pyc"
    return f"{folder}/{cached}" if folder else cached


def compile_pyc(source: bytes, dfile: str) -> Optional[bytes]:
    """An unchecked-hash .pyc of ``source`` (None if it does not compile: it is shipped as source only).

    The same bytes ``py_compile`` writes with ``PycInvalidationMode.UNCHECKED_HASH``, except
    the marshal format (see the module docstring).
    """
    try:
        code = compile(source, dfile, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        return None
    return (importlib.util.MAGIC_NUMBER + _UNCHECKED_HASH_FLAGS + importlib.util.source_hash(source)
            + marshal.dumps(code, PYC_MARSHAL_VERSION))


def _cached_pyc(source: bytes, dfile: str, cache: Optional[Path]) -> Optional[bytes]:
    """:func:`compile_pyc`, remembered in ``cache`` by interpreter, path and source."""
    if cache is None:
        return compile_pyc(source, dfile)
    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + dfile.encode() + b"\0" + source).hexdigest()
    path = cache / sys.implementation.cache_tag / key[:2] / f"{key}.pyc"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = compile_pyc(source, dfile)
    if data is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return data


def _bytecode(entries: dict[str, object], own: set[str], cache: Optional[Path],
              budget: Optional[int]) -> dict[str, bytes]:
    """The .pyc entries for the modules among ``entries``; those of vendored files are dropped
    when they would take the unzipped size over ``budget`` (kagg's own are always kept)."""
    def read(value: object) -> bytes:
        return value if isinstance(value, bytes) else Path(value).read_bytes()  # type: ignore[arg-type]

    out: dict[str, bytes] = {}
    vendored: dict[str, bytes] = {}
    for name in sorted(entries):
        if not name.endswith(".py") or name == REQUEST_FILE:  # the request cells are compiled by the runtime
            continue
        data = _cached_pyc(read(entries[name]), name, cache)
        if data is not None:
            (out if name in own else vendored)[pyc_path(name)] = data
    if budget is not None and vendored:
        total = sum(len(v) if isinstance(v, bytes) else os.path.getsize(v)  # type: ignore[arg-type]
                    for v in entries.values()) + sum(map(len, out.values()))
        if total + sum(map(len, vendored.values())) > budget:
            return out
    out.update(vendored)
    return out


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.create_system = _UNIX
    info.external_attr = FILE_MODE << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_artifact(function: ConvertedFunction, provider: str, shims: Sequence[str], out_dir: Path,
                   vendor_dir: Optional[Path] = None, bytecode: bool = False,
                   bytecode_cache: Optional[Path] = None, bytecode_budget: Optional[int] = None) -> Artifact:
    """Build the zip into ``out_dir/<sha256>.zip`` (atomically) and describe it.

    ``vendor_dir``: a folder of installed dependencies (Lambda) whose files go
    to the zip's root under their relative paths. ``bytecode``: add this
    interpreter's .pyc of every module (see the module docstring), compiled once
    per source into ``bytecode_cache``; the vendored ones are left out when they
    would take the unzipped size over ``bytecode_budget`` bytes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, object] = dict(artifact_files(function, shims))
    own = set(entries)
    if vendor_dir is not None:
        for name, path in _vendor_files(Path(vendor_dir)):
            if name in entries:
                raise ValueError(f"vendored file {name} would replace kagg's own file of that name")
            entries[name] = path
    if bytecode:
        entries.update(_bytecode(entries, own, Path(bytecode_cache) if bytecode_cache else None, bytecode_budget))
    names = sorted(entries)
    unzipped = 0
    fd, tmp_name = tempfile.mkstemp(prefix=".build-", suffix=".zip.tmp", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w") as zf:
                for name in names:
                    value = entries[name]
                    data = value if isinstance(value, bytes) else Path(value).read_bytes()  # type: ignore[arg-type]
                    unzipped += len(data)
                    zf.writestr(_zip_info(name), data, compress_type=zipfile.ZIP_DEFLATED,
                                compresslevel=COMPRESS_LEVEL)
            raw.flush()
            os.fsync(raw.fileno())
        sha = _sha256_file(tmp)
        final = out_dir / f"{sha}.zip"
        if final.exists() and _sha256_file(final) == sha:
            tmp.unlink()
        else:
            os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Artifact(provider=provider, path=final, sha256=sha, size=final.stat().st_size,
                    unzipped_size=unzipped, function=function, files=names)

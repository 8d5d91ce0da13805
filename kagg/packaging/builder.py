"""The deterministic artifact (docs/architecture.md, "Artifact"): same function and options, byte-identical zip.

Nothing here depends on the clock, the file system's order or file modes:
entries are sorted, every timestamp is 1980-01-01, every mode 0644, the
compression level is fixed and no extra fields are written. The zip's sha256
is the artifact's identity and its file name, so an unchanged build reuses the
file already there.
"""

from __future__ import annotations

import hashlib
import json
import os
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
#: vendored folders hold bytecode caches that embed mtimes: never packaged
_SKIP_DIRS = frozenset({"__pycache__"})
_SKIP_SUFFIXES = (".pyc", ".pyo")


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


def requirements_bytes(function: ConvertedFunction) -> bytes:
    lines = [r.strip() for r in function.requirements if r.strip()]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def artifact_files(function: ConvertedFunction, shims: Sequence[str]) -> dict[str, bytes]:
    """Every file of the artifact (without vendored dependencies), by path at the zip's root."""
    files = dict(function.local_files)  # kagg's own files below win over a same-named local module
    files.update({
        NOTEBOOK_FILE: function.module_source.encode("utf-8"),
        MANIFEST_FILE: manifest_bytes(function),
        RUNTIME_FILE: runtime_source(),
        REQUIREMENTS_FILE: requirements_bytes(function),
    })
    if function.mode == "script":
        files[REQUEST_FILE] = (function.request_source or "").encode("utf-8")
    for name, data in shim_files(shims).items():
        files[name] = data
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
                   vendor_dir: Optional[Path] = None) -> Artifact:
    """Build the zip into ``out_dir/<sha256>.zip`` (atomically) and describe it.

    ``vendor_dir``: a folder of installed dependencies (Lambda) whose files go
    to the zip's root under their relative paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, object] = dict(artifact_files(function, shims))
    if vendor_dir is not None:
        for name, path in _vendor_files(Path(vendor_dir)):
            if name in entries:
                raise ValueError(f"vendored file {name} would replace kagg's own file of that name")
            entries[name] = path
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

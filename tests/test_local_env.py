"""A local endpoint's requirements: checked against kagg's environment, or served from a venv."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from conftest import run_kagg
from notebooks import write


def make_wheel(folder: Path, name: str = "kaggdemo", version: str = "1.0") -> Path:
    """A real (tiny) wheel, built by hand so the test needs no build backend and no index."""
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: kagg-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


NEEDS_DEMO = ("%pip install kaggdemo==1.0", "import kaggdemo\ndef handler():\n    return {'value': kaggdemo.VALUE}")


def test_a_requirement_the_environment_lacks_is_named_before_anything_starts(registry_path, tmp_path):
    nb = write(tmp_path / "lgbm.ipynb", *NEEDS_DEMO)
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: ") and "kaggdemo==1.0" in line
    assert "-m pip install kaggdemo==1.0" in line and "--venv" in line
    assert not registry_path.exists() or json.loads(registry_path.read_text())["endpoints"] == {}


@pytest.mark.slow
def test_venv_serves_from_its_own_environment_and_is_reused(registry_path, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels)
    env = {"PIP_FIND_LINKS": str(wheels), "PIP_NO_INDEX": "1", "KAGG_CACHE_DIR": str(tmp_path / "cache")}
    nb = write(tmp_path / "demo.ipynb", *NEEDS_DEMO)
    try:
        res = run_kagg("deploy", str(nb), "--venv", env=env, timeout=300)
        assert res.returncode == 0, res.stderr
        assert "making a virtual environment" in res.stderr
        assert json.loads(run_kagg("invoke", "demo").stdout) == {"value": 42}
        entry = json.loads(registry_path.read_text())["endpoints"]["demo"]
        assert entry["provider_data"]["venv"] is True
        assert str(tmp_path / "cache") in entry["provider_data"]["python"]
        again = run_kagg("deploy", str(nb), "--venv", "--force", env=env, timeout=300)
        assert again.returncode == 0, again.stderr
        assert "using the virtual environment" in again.stderr and "making" not in again.stderr
        assert json.loads(run_kagg("invoke", "demo").stdout) == {"value": 42}
    finally:
        run_kagg("delete", "demo")

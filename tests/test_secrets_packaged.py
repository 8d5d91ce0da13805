"""The secrets gate covers every file that goes into the artifact from the user's side, not only the
notebook: the modules beside it, ``requirements.txt`` (a private index's token in an
``--extra-index-url``), and any other text file packaged with them.

Fake tokens are assembled at run time, so this file holds no complete credential literal.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from conftest import run_kagg
from kagg.notebook import secrets
from notebooks import write

_rng = random.Random(4711)


def token(n: int = 24) -> str:
    """Letters and digits mixed, as a real access token is (never a placeholder word)."""
    while True:
        value = "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(n))
        if any(c.isdigit() for c in value) and any(c.isupper() for c in value) and any(c.islower() for c in value):
            return value


HANDLER = "def handler(x: int = 1):\n    return {'x': x}"


@pytest.fixture
def reg(registry_path: Path) -> Path:
    return registry_path


def _artifacts(root: Path) -> list[Path]:
    return sorted(root.rglob("*.zip"))


def test_requirements_txt_credential_stops_the_deploy_naming_file_and_line(reg, tmp_path):
    secret = token()
    (tmp_path / "requirements.txt").write_text(
        "# private packages\n"
        f"--extra-index-url https://deploy-bot:{secret}@pypi.example.internal/simple\n"
        "numpy\n")
    nb = write(tmp_path / "model.ipynb", HANDLER)
    res = run_kagg("deploy", str(nb), "--dry-run")
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: found 1 possible credential in ")
    assert "requirements.txt, line 2: password in a URL (url-credentials)" in lines[0]
    assert secret not in res.stderr and secret not in res.stdout and secret[4:12] not in res.stderr
    assert not reg.exists() and _artifacts(tmp_path) == []  # stopped before anything was built


def test_allow_secrets_lets_the_requirements_file_through(reg, tmp_path):
    (tmp_path / "requirements.txt").write_text(f"-i https://ci:{token()}@pypi.example.internal/simple\nnumpy\n")
    nb = write(tmp_path / "model.ipynb", HANDLER)
    res = run_kagg("deploy", str(nb), "--dry-run", "--allow-secrets", "--json")
    assert res.returncode == 0, res.stderr


def test_a_clean_requirements_file_and_modules_deploy(reg, tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "--extra-index-url https://pypi.example.internal/simple\n"
        "--extra-index-url https://${PIP_USER}:${PIP_TOKEN}@pypi.example.internal/simple\n"
        "click>=7\nnbformat\n")  # installed here: the local provider checks that they are
    (tmp_path / "helpers.py").write_text("import os\nTOKEN = os.environ['API_TOKEN']\n")
    nb = write(tmp_path / "model.ipynb", "import helpers\n" + HANDLER)
    res = run_kagg("deploy", str(nb), "--dry-run", "--json")
    assert res.returncode == 0, res.stderr


def test_an_unused_requirements_file_is_not_packaged_nor_scanned(tmp_path):
    """Without a requirements.txt beside the notebook the inferred requirements hold nothing of the user's."""
    nb = write(tmp_path / "model.ipynb", HANDLER)
    from kagg.notebook.convert import convert_source

    function = convert_source(str(nb))
    assert function.requirements_origin == "inferred"
    assert secrets.packaged_files(function, tmp_path) == {}


def test_every_packaged_file_is_scanned_by_its_name(tmp_path):
    secret = token(32)
    (tmp_path / "requirements.txt").write_text(f"pandas\n--index-url=https://me:{secret}@host.internal/simple\n")
    (tmp_path / "helpers.py").write_text(f"x = 1\npassword = '{token(12)}'\n")
    nb = write(tmp_path / "model.ipynb", "import helpers\n" + HANDLER)
    from kagg.notebook.convert import convert_source

    function = convert_source(str(nb))
    files = secrets.packaged_files(function, tmp_path)
    assert sorted(files) == ["helpers.py", "requirements.txt"]
    with pytest.raises(secrets.SecretsFound) as exc:
        secrets.check_files(files, str(nb))
    places = [(f.where, f.line, f.rule) for f in exc.value.findings]
    assert places == [("helpers.py", 2, "password-assignment"), ("requirements.txt", 2, "url-credentials")]
    assert secret not in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("name, text, rule", [
    ("config/settings.env", "DEBUG=1\nAPI_TOKEN={t}\n", "secret-assignment"),
    ("data/params.json", '{{"threshold": 0.5, "api_key": "{t}"}}\n', "secret-assignment"),
    ("pip.conf", "[global]\nextra-index-url = https://u:{t}@pkgs.internal/simple\n", "url-credentials"),
])
def test_data_files_are_scanned_as_text(name, text, rule):
    findings = secrets.scan_file(name, text.format(t=token(28)).encode())
    assert [(f.where, f.rule) for f in findings] == [(name, rule)]
    assert findings[0].line == 2 if name != "data/params.json" else findings[0].line == 1


def test_binary_files_are_not_scanned():
    secret = token(28)
    assert secrets.scan_file("model.bin", b"\x00\x01" + f"api_key = '{secret}'".encode()) == []
    assert secrets.scan_file("model.txt", f"api_key = '{secret}'".encode()) != []


def test_convert_json_lists_what_is_packaged(tmp_path):
    """``kagg convert`` (no gate: it deploys nothing) still reads the requirements file as before."""
    (tmp_path / "requirements.txt").write_text("numpy==1.26.4\n")
    nb = write(tmp_path / "model.ipynb", HANDLER)
    res = run_kagg("convert", str(nb), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["requirements"] == ["numpy==1.26.4"]

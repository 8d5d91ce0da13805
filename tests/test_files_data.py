"""Data files beside the notebook (issue "What a new user hit", point 4): the files its code names
go into the artifact at the same relative paths, ``--include``/``--exclude`` choose the rest, a size
guard stops a deploy that would carry too much, ``kagg convert`` lists them, the secrets gate
scans them, and a FileNotFoundError at start that names a file beside the notebook says how to
include it. Everything goes through the real CLI.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from conftest import CORPUS, needs_corpus, run_kagg
from kagg.notebook.datafiles import add_missing_file_hint, missing_file_hint, named_paths, parse_size
from notebooks import write

MB = 1024 * 1024

READS_EVERYTHING = '''import json, pickle
from pathlib import Path
import joblib
import numpy as np
import pandas as pd

WEIGHTS = json.load(open("weights.json"))
TRAIN = pd.read_csv("train.csv")
X = np.load("x.npy")
MODEL = joblib.load("model.pkl")
LABELS = Path("data/labels.txt").read_text().split()
VOCAB = pickle.load(open('vocab.pkl', 'rb'))

def handler(i: int = 0):
    return {"w": WEIGHTS["w"], "rows": int(len(TRAIN)), "x": int(X.sum()), "model": MODEL["kind"],
            "label": LABELS[i], "vocab": VOCAB[i]}'''


def _make_data(folder: Path) -> None:
    import joblib
    import numpy as np

    (folder / "weights.json").write_text(json.dumps({"w": 3}))
    (folder / "train.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    np.save(folder / "x.npy", np.arange(5))
    joblib.dump({"kind": "tree"}, folder / "model.pkl")
    (folder / "data").mkdir()
    (folder / "data" / "labels.txt").write_text("cat dog\n")
    (folder / "data" / "unused.bin").write_bytes(b"\0" * 10)
    (folder / "vocab.pkl").write_bytes(pickle.dumps(["x", "y"]))


@pytest.fixture
def folder(tmp_path) -> Path:
    """The notebook's folder (the registry and its .kagg state stay one level up)."""
    path = tmp_path / "project"
    path.mkdir()
    return path


def test_data_files_the_notebook_reads_are_deployed_and_found(reg, folder):
    """open / read_csv / np.load / joblib.load / Path(...).read_text / pickle.load(open(..., 'rb'))
    of files beside the notebook work once deployed (they failed to start: FileNotFoundError)."""
    _make_data(folder)
    nb = write(folder / "reader.ipynb", READS_EVERYTHING)
    res = run_kagg("deploy", str(nb), "--name", "reader")
    assert res.returncode == 0, res.stderr
    out = run_kagg("invoke", "reader", '{"i": 1}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"w": 3, "rows": 3, "x": 10, "model": "tree", "label": "dog", "vocab": "y"}
    app_dir = Path(json.loads(reg.read_text())["endpoints"]["reader"]["provider_data"]["app_dir"])
    assert (app_dir / "data" / "labels.txt").read_text() == "cat dog\n"
    assert not (app_dir / "data" / "unused.bin").exists()  # named by nothing: not packaged


def test_convert_lists_the_packaged_files(folder):
    _make_data(folder)
    (folder / "helpers.py").write_text("def f():\n    return 1\n")
    nb = write(folder / "reader.ipynb", "import helpers\n" + READS_EVERYTHING)
    res = run_kagg("convert", str(nb))
    assert res.returncode == 0, res.stderr
    assert "  modules beside the notebook: helpers.py\n" in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("  data files"))
    assert line.startswith("  data files (6, ")
    for name in ("data/labels.txt (8 B)", "model.pkl", "train.csv (16 B)", "vocab.pkl", "weights.json (8 B)",
                 "x.npy"):
        assert name in line
    doc = json.loads(run_kagg("convert", str(nb), "--json").stdout)
    assert [d["path"] for d in doc["data_files"]] == ["data/labels.txt", "model.pkl", "train.csv", "vocab.pkl",
                                                      "weights.json", "x.npy"]
    assert {d["path"]: d["size"] for d in doc["data_files"]}["train.csv"] == 16
    assert doc["data_size"] == sum(d["size"] for d in doc["data_files"])
    assert doc["local_files"] == sorted(["helpers.py"] + [d["path"] for d in doc["data_files"]])
    # nothing beside the notebook: no extra line, empty lists
    bare = write(folder.parent / "bare.ipynb", "def handler():\n    return 1")
    res = run_kagg("convert", str(bare))
    assert "data files" not in res.stdout and "modules beside" not in res.stdout
    doc = json.loads(run_kagg("convert", str(bare), "--json").stdout)
    assert doc["data_files"] == [] and doc["data_size"] == 0


def test_names_bound_to_literals_and_joined_paths_are_found(folder):
    (folder / "input").mkdir()
    (folder / "input" / "train.csv").write_text("a\n1\n")
    (folder / "images").mkdir()
    (folder / "images" / "a.png").write_bytes(b"png")
    (folder / "images" / ".DS_Store").write_bytes(b"x")
    (folder / "cfg.yaml").write_text("k: v\n")
    (folder / "out.txt").write_text("old output\n")
    nb = write(folder / "paths.ipynb",
               "import os, glob\nfrom pathlib import Path\nDATA = Path('input')\nCFG = 'cfg' + '.yaml'\n"
               "open('out.txt', 'w')\n"  # written, not read
               "def handler():\n    rows = open(DATA / 'train.csv').read()\n"
               "    imgs = sorted(glob.glob('images/*.png'))\n    return [rows, imgs, open(CFG).read()]")
    doc = json.loads(run_kagg("convert", str(nb), "--json").stdout)
    assert [d["path"] for d in doc["data_files"]] == ["cfg.yaml", "images/a.png", "input/train.csv"]


def test_paths_outside_the_folder_and_missing_files_are_not_packaged(folder):
    (folder.parent / "secret.txt").write_text("outside\n")
    nb = write(folder / "far.ipynb",
               "def handler():\n    a = open('../secret.txt').read()\n    b = open('/etc/hostname').read()\n"
               "    c = open('not_here.csv').read()\n    d = open('~/x').read()\n    return [a, b, c, d]")
    res = run_kagg("convert", str(nb), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["data_files"] == []


def test_include_and_exclude_choose_the_files(folder, tmp_path):
    (folder / "assets").mkdir()
    (folder / "assets" / "a.txt").write_text("a")
    (folder / "assets" / "sub").mkdir()
    (folder / "assets" / "sub" / "b.txt").write_text("b")
    (folder / "assets" / "sub" / "raw.bin").write_bytes(b"raw")
    (folder / "assets" / ".env").write_text("X=1")
    (folder / "extra.csv").write_text("x\n")
    (folder / "named.json").write_text("{}")
    nb = write(folder / "nb.ipynb", "import json\nJ = json.load(open('named.json'))\ndef handler():\n    return J")
    out = tmp_path / "out"
    res = run_kagg("convert", str(nb), "--include", "assets", "--include", "*.csv", "--exclude", "assets/sub/*.bin",
                   "-o", str(out), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [d["path"] for d in doc["data_files"]] == ["assets/a.txt", "assets/sub/b.txt", "extra.csv", "named.json"]
    assert (out / "assets" / "sub" / "b.txt").read_text() == "b" and (out / "extra.csv").read_text() == "x\n"
    assert not (out / "assets" / ".env").exists()  # hidden names only when named
    res = run_kagg("convert", str(nb), "--include", "assets/.env", "--exclude", "named.json", "--json")
    assert [d["path"] for d in json.loads(res.stdout)["data_files"]] == ["assets/.env"]
    for bad, says in ((["--include", "nothing*.csv"], "--include 'nothing*.csv' matches no file"),
                      (["--include", "../x"], "--include '../x' is not a path inside the notebook's folder"),
                      (["--exclude", "/etc"], "--exclude '/etc' is not a path inside the notebook's folder"),
                      (["--max-data-size", "lots"], "invalid --max-data-size 'lots'")):
        res = run_kagg("convert", str(nb), *bad)
        assert res.returncode == 2, (bad, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert lines[-1].startswith("Error: ") and says in lines[-1], lines


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def test_size_guard_names_the_biggest_files_and_the_ways_out(folder, reg):
    _sparse(folder / "big.bin", 21 * MB)
    nb = write(folder / "heavy.ipynb", "import numpy as np\nB = open('big.bin', 'rb').read()\n"
                                       "def handler():\n    return len(B)")
    for command in (["convert", str(nb)], ["deploy", str(nb), "--dry-run"]):
        res = run_kagg(*command)
        assert res.returncode == 2, res.stderr
        error = res.stderr.strip().splitlines()[-1]
        assert error == ("Error: a data file beside the notebook is over the limit of 20 MB for one file: "
                         "big.bin (21 MB); leave files out with --exclude (e.g. --exclude big.bin), or raise the "
                         "limit with --max-data-size 30MB")
    assert not reg.exists() and not list(folder.parent.rglob("*.zip"))
    res = run_kagg("convert", str(nb), "--max-data-size", "30MB", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["data_files"] == [{"path": "big.bin", "size": 21 * MB}]
    res = run_kagg("convert", str(nb), "--exclude", "big.bin", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["data_files"] == []

    (folder / "big.bin").unlink()
    for name in ("a.bin", "b.bin", "c.bin"):
        _sparse(folder / name, 18 * MB)
    nb = write(folder / "heavy.ipynb", "def handler():\n    return [len(open('a.bin', 'rb').read()), "
                                       "open('b.bin', 'rb').read(1), open('c.bin', 'rb').read(1)]")
    res = run_kagg("convert", str(nb))
    assert res.returncode == 2
    assert ("the data files beside the notebook come to 54 MB, over the limit of 50 MB in all; the biggest: "
            "a.bin (18 MB), b.bin (18 MB), c.bin (18 MB); leave files out with --exclude") in res.stderr
    assert run_kagg("convert", str(nb), "--exclude", "c.bin").returncode == 0


def test_parse_size():
    assert parse_size("100MB") == 100 * MB and parse_size("1.5G") == int(1.5 * 1024 * MB)
    assert parse_size("200") == 200 * MB and parse_size("512KiB") == 512 * 1024 and parse_size("10b") == 10


def test_secrets_gate_scans_text_data_files(reg, folder):
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    (folder / "config.json").write_text(json.dumps({"github": token}) + "\n")
    (folder / "blob.npy").write_bytes(b"\x93NUMPY\0\0" + token.encode())  # binary: not scanned
    nb = write(folder / "cfg.ipynb", "import json, numpy as np\nC = json.load(open('config.json'))\n"
                                     "B = open('blob.npy', 'rb').read()\ndef handler():\n    return 1")
    res = run_kagg("deploy", str(nb), "--dry-run")
    assert res.returncode == 2, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: found 1 possible credential in ") and "config.json, line 1" in error
    assert "blob.npy" not in error and token[4:12] not in res.stderr
    assert not reg.exists()
    assert run_kagg("deploy", str(nb), "--dry-run", "--allow-secrets").returncode == 0


def test_the_artifact_is_deterministic_with_data_files(folder, tmp_path, reg):
    _make_data(folder)
    nb = write(folder / "reader.ipynb", READS_EVERYTHING)
    first = run_kagg("deploy", str(nb), "--dry-run", "--name", "same")
    os.utime(folder / "train.csv", (1, 1))  # a new mtime changes nothing
    second = run_kagg("deploy", str(nb), "--dry-run", "--name", "same")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    shas = [ln.split("(")[1].split(",")[0] for r in (first, second) for ln in r.stderr.splitlines()
            if ln.startswith("planning same (")]
    assert len(shas) == 2 and shas[0] == shas[1]
    (folder / "train.csv").write_text("a,b\n9,9\n")
    third = run_kagg("deploy", str(nb), "--dry-run", "--name", "same")
    assert [ln for ln in third.stderr.splitlines() if ln.startswith("planning same (")] != [
        ln for ln in first.stderr.splitlines() if ln.startswith("planning same (")]


def test_lambda_artifact_reads_the_data_from_its_task_folder(folder, tmp_path):
    """Lambda runs the code with /var/task (the zip's root) as the working directory: the relative
    path of the notebook works there because the file sits at the same path in the zip."""
    (folder / "data").mkdir()
    (folder / "data" / "labels.txt").write_text("cat dog\n")
    nb = write(folder / "lab.ipynb", "from pathlib import Path\nL = Path('data/labels.txt').read_text().split()\n"
                                     "def handler(i: int = 0):\n    return L[i]")
    task = tmp_path / "task"
    res = run_kagg("convert", str(nb), "--aws", "-o", str(task))
    assert res.returncode == 0, res.stderr
    code = ("import json, lambda_function as f\n"
            "print(json.dumps(f.handler({'rawPath': '/', 'rawQueryString': 'i=1', "
            "'requestContext': {'http': {'method': 'GET'}}})))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", code], cwd=task, capture_output=True, text=True, env=env,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == "dog"


def test_a_missing_file_beside_the_notebook_gets_the_include_hint(reg, folder):
    """A path kagg cannot see in the code (built from the environment) fails at start with
    FileNotFoundError; the file is beside the notebook, so the hint says --include it."""
    (folder / "weights.json").write_text(json.dumps({"w": 5}))
    nb = write(folder / "hidden.ipynb", "import json, os\nW = json.load(open(os.environ.get('WEIGHTS', 'weights.json')))\n"
                                        "def handler():\n    return W")
    res = run_kagg("deploy", str(nb), "--name", "hidden")
    assert res.returncode == 1, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert "FileNotFoundError" in error and "weights.json" in error
    assert missing_file_hint(error, folder) == ("weights.json is beside the notebook but was not packaged; "
                                                "deploy with --include weights.json")
    assert add_missing_file_hint(error, str(nb)).endswith("; deploy with --include weights.json")


def test_deploy_include_packages_what_the_code_does_not_name(reg, folder):
    (folder / "weights.json").write_text(json.dumps({"w": 5}))
    nb = write(folder / "hidden.ipynb", "import json, os\nW = json.load(open(os.environ.get('WEIGHTS', 'weights.json')))\n"
                                        "def handler():\n    return W")
    res = run_kagg("deploy", str(nb), "--name", "hidden", "--include", "weights.json")
    assert res.returncode == 0, res.stderr
    assert json.loads(run_kagg("invoke", "hidden").stdout) == {"w": 5}
    res = run_kagg("deploy", str(nb), "--name", "hidden2", "--include", "nope.json")
    assert res.returncode == 2 and "--include nope.json matches no file" in res.stderr


def test_deploy_accepts_the_data_options_for_every_provider(reg, folder):
    nb = write(folder / "plain.ipynb", "def handler():\n    return 1")
    res = run_kagg("deploy", str(nb), "--dry-run", "--exclude", "*.bin", "--max-data-size", "10MB")
    assert res.returncode == 0, res.stderr
    res = run_kagg("deploy", str(nb), "--dry-run", "--max-data-size", "-3")
    assert res.returncode == 2 and "invalid --max-data-size '-3'" in res.stderr


@pytest.mark.parametrize("line, expected", [
    ("the notebook failed to start: cell 1, line 2: FileNotFoundError: [Errno 2] No such file or directory: "
     "'train.csv' (full log: /x/server.log)", "train.csv"),
    ("FileNotFoundError: [Errno 2] No such file or directory: 'data/labels.txt'", "data/labels.txt"),
    ("FileNotFoundError: File b'train.csv' does not exist", "train.csv"),
    ("OSError: Unable to open file (unable to open file: name = 'train.csv', errno = 2)", "train.csv"),
    ("FileNotFoundError: [Errno 2] No such file or directory: './train.csv'", "train.csv"),
])
def test_missing_file_hint_reads_the_usual_messages(folder, line, expected):
    (folder / "train.csv").write_text("a\n")
    (folder / "data").mkdir()
    (folder / "data" / "labels.txt").write_text("a\n")
    assert missing_file_hint(line, folder) == (f"{expected} is beside the notebook but was not packaged; "
                                               f"deploy with --include {expected}")


def test_missing_file_hint_stays_quiet_otherwise(folder):
    assert missing_file_hint("FileNotFoundError: [Errno 2] No such file or directory: 'gone.csv'", folder) is None
    assert missing_file_hint("ValueError: bad", folder) is None
    assert missing_file_hint("FileNotFoundError: [Errno 2] No such file or directory: '/etc/hostname'", folder) is None
    (folder / "x.csv").write_text("a\n")
    assert missing_file_hint("FileNotFoundError: 'x.csv'", None) is None
    assert missing_file_hint(f"FileNotFoundError: [Errno 2] No such file or directory: '{folder}/x.csv'",
                             folder) == "x.csv is beside the notebook but was not packaged; deploy with --include x.csv"
    assert add_missing_file_hint("boom", "https://example.com/nb.ipynb") == "boom"


@needs_corpus
def test_named_paths_over_the_corpus():
    """The path finder reads every real notebook's code without failing, and finds the data paths
    those notebooks name (they name Kaggle's absolute /kaggle/input paths too: never packaged)."""
    from kagg.notebook.cells import cell_source
    from kagg.notebook.loading import load_notebook
    from kagg.notebook.magics import transform_cell

    found = {}
    for path in sorted(CORPUS.glob("*.ipynb")):
        try:
            loaded = load_notebook(str(path))
        except Exception:
            continue
        trees = []
        for number, cell in enumerate(loaded.nb.get("cells") or [], start=1):
            if cell.get("cell_type") != "code":
                continue
            try:
                with warnings.catch_warnings():  # invalid escape sequences in the notebooks' strings
                    warnings.simplefilter("ignore")
                    trees.append(ast.parse(transform_cell(cell_source(cell), number).code))
            except (SyntaxError, ValueError):
                continue
        paths = named_paths(trees)
        assert all(not p.startswith(("/", "..")) for p in paths)
        found[path.name[:2]] = paths
    assert any(found.values())  # some notebook names a relative data path


def test_names_with_spaces_and_brackets_are_found_as_plain_names_are(tmp_path):
    """The quick look for entries the code may name (before its trees are walked) finds a plain
    name as a whole name, and one with a space or a bracket as written."""
    from kagg.notebook.datafiles import data_refs

    for name in ("train.csv", "my data.csv", "model (1).pkl", "weights-v2"):
        (tmp_path / name).write_text("x")
    (tmp_path / "unrelated.txt").write_text("x")

    def refs(code: str) -> list[str]:
        return data_refs([ast.parse(code)], tmp_path, [code])

    assert refs("import pandas as pd\ndf = pd.read_csv('./train.csv')\n") == ["train.csv"]
    assert refs("open('my data.csv').read()\n") == ["my data.csv"]
    assert refs("import pickle\nm = pickle.load(open('model (1).pkl', 'rb'))\n") == ["model (1).pkl"]
    assert refs("from pathlib import Path\np = Path('weights-v2') / 'x'\n") == ["weights-v2"]
    assert refs("x = 'mytrain.csv.bak'\nopen(x)\n") == []
    assert refs("import glob\nfiles = glob.glob('*.csv')\n") == ["*.csv"]

"""The kernel builder: which cells go to Kaggle, parameters, refusals, the archive, determinism."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kagg.errors import BadInput, OperationFailed
from kagg.kaggle.kernel import KernelRequest, build_kernel
from kagg.kaggle.manifest import END_MARKER, START_MARKER, markers_in, read_result
from notebooks import write

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ("lr = 0.01  # learning rate\nepochs: int = 3\nname = 'run'\nuse_aug = False\nlayers = [8, 8]\n", ["parameters"])


def req(**kw) -> KernelRequest:
    base = dict(owner="alice", slug="train-abc123", title="train abc123")
    base.update(kw)
    return KernelRequest(**base)


def code_cells(bundle) -> list[dict]:
    return [c for c in bundle.notebook["cells"] if c["cell_type"] == "code"]


def user_sources(bundle) -> list[str]:
    """The notebook's own cells in the kernel (neither kagg's start/end cell nor the injected one)."""
    return [c["source"] for c in code_cells(bundle) if not {"kagg-start", "kagg-end", "injected-parameters"}
            & set(c["metadata"].get("tags", []))]


# -- cells ------------------------------------------------------------------------------------------

def test_untagged_notebook_runs_whole_skip_left_out(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "import math\nx = 1", ("print('plot')", ["skip"]), "y = x + 1", "")
    bundle = build_kernel(nb, req())
    assert user_sources(bundle) == ["import math\nx = 1", "y = x + 1"]
    tags = [c["metadata"].get("tags") for c in code_cells(bundle)]
    assert tags[0] == ["kagg-start"] and tags[-1] == ["kagg-end"]


def test_handler_mode_sends_setup_and_train_not_the_handler(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "import json\nMODEL = 'm.pkl'",
               ("def handler(x: int):\n    return x", []),
               ("print('training')", ["train"]), ("print('eda')", ["skip"]))
    bundle = build_kernel(nb, req())
    assert user_sources(bundle) == ["import json\nMODEL = 'm.pkl'", "print('training')"]
    assert any("cell 2 (the handler) is left out" in n for n in bundle.notes)


def test_cells_calling_the_handler_stay_home_unless_training_needs_it(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "import json", "def handler(x):\n    return x", "print(handler(1))",
               ("print('training')", ["train"]))
    bundle = build_kernel(nb, req())
    assert user_sources(bundle) == ["import json", "print('training')"]
    assert any("cell 2 (the handler) is left out; so is cell 3, which calls it" in n for n in bundle.notes)
    nb = write(tmp_path / "nb.ipynb", "import json", "def handler(x):\n    return x",
               ("score = handler(1)", ["train"]))
    bundle = build_kernel(nb, req())
    assert user_sources(bundle) == ["import json", "def handler(x):\n    return x", "score = handler(1)"]
    assert any("cell 2 (the handler) is kept because `train` cell 3 calls `handler`" in n for n in bundle.notes)


def test_handler_without_train_cells_is_refused(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "import json", "def handler(x):\n    return x")
    with pytest.raises(BadInput, match=r"serves `handler` \(cell 2\) and has no cell tagged `train`"):
        build_kernel(nb, req())


def test_nothing_to_run(tmp_path):
    nb = write(tmp_path / "nb.ipynb", ("print(1)", ["skip"]), "   ")
    with pytest.raises(BadInput, match="has no code to run on Kaggle"):
        build_kernel(nb, req())


def test_cell_that_does_not_compile_names_cell_and_line(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "x = 1", "for i in range(3):\nprint(i)")
    with pytest.raises(BadInput) as err:
        build_kernel(nb, req())
    assert str(err.value).startswith("cell 2, line 2: expected an indented block") and "\n" not in str(err.value)


def test_magics_stay_as_written(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "%matplotlib inline\n!nvidia-smi\nimport os", "%%bash\necho hi")
    assert user_sources(build_kernel(nb, req())) == ["%matplotlib inline\n!nvidia-smi\nimport os", "%%bash\necho hi"]


# -- parameters ---------------------------------------------------------------------------------------

def test_parameters_injected_after_parameters_cell_typed(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "import os", PARAMS, "print(lr, epochs)")
    bundle = build_kernel(nb, req(parameters={"lr": "0.1", "epochs": "5", "use_aug": "yes", "layers": "[16]",
                                              "name": "12"}))
    assert bundle.parameters == {"lr": 0.1, "epochs": 5, "use_aug": True, "layers": [16], "name": "12"}
    cells = code_cells(bundle)
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    injected = cells[index + 1]
    assert injected["metadata"]["tags"] == ["injected-parameters"]
    namespace: dict = {}
    exec(injected["source"], namespace)
    assert {k: namespace[k] for k in bundle.parameters} == bundle.parameters
    assert bundle.effective == {"lr": 0.1, "epochs": 5, "name": "12", "use_aug": True, "layers": [16]}


def test_json_values_are_checked_not_converted(tmp_path):
    nb = write(tmp_path / "nb.ipynb", PARAMS, "print(lr)")
    assert build_kernel(nb, req(parameters={"epochs": 4.0, "lr": 1})).parameters == {"epochs": 4, "lr": 1.0}
    with pytest.raises(BadInput, match=r"parameter 'epochs' takes an integer, got 'true'; e.g. -p epochs=3"):
        build_kernel(nb, req(parameters={"epochs": True}))


def test_no_injected_cell_without_values(tmp_path):
    nb = write(tmp_path / "nb.ipynb", PARAMS, "print(lr)")
    bundle = build_kernel(nb, req())
    assert bundle.parameters == {} and bundle.effective["lr"] == 0.01
    assert not any("injected-parameters" in c["metadata"].get("tags", []) for c in code_cells(bundle))


@pytest.mark.parametrize("given, message", [
    ({"lr": "fast"}, "parameter 'lr' takes a number, got 'fast'; e.g. -p lr=0.01"),
    ({"epochs": "2.5"}, "parameter 'epochs' takes an integer, got '2.5'; e.g. -p epochs=3"),
    ({"use_aug": "maybe"}, "parameter 'use_aug' takes true or false, got 'maybe'"),
    ({"layers": "8,8"}, "parameter 'layers' takes a JSON list, got '8,8'"),
    ({"lr": "inf"}, "parameter 'lr' takes a number (finite), got 'inf'"),
    ({"batch": "3"}, "unknown parameter 'batch' for nb.ipynb; its parameters cell (cell 1) declares: "
                     "lr, epochs, name, use_aug, layers"),
])
def test_bad_parameters_are_one_line(tmp_path, given, message):
    nb = write(tmp_path / "nb.ipynb", PARAMS, "print(lr)")
    with pytest.raises(BadInput) as err:
        build_kernel(nb, req(parameters=given))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_parameters_without_parameters_cell(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "lr = 0.1\nprint(lr)")
    with pytest.raises(BadInput, match=r"has no cell tagged `parameters`, so it takes no parameters \(lr\)"):
        build_kernel(nb, req(parameters={"lr": "1"}))


# -- refusals -----------------------------------------------------------------------------------------

def test_r_notebook_refused(tmp_path):
    kernel = {"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}, "language_info": {"name": "R"}}
    nb = write(tmp_path / "nb.ipynb", "library(ggplot2)", kernel=kernel)
    with pytest.raises(BadInput, match="uses the R kernel; kagg runs only Python notebooks on Kaggle"):
        build_kernel(nb, req())


def _hex(n: int) -> str:
    return "".join(random.choice("0123456789abcdef") for _ in range(n))


def test_secret_in_a_cell_refused_unless_allowed(tmp_path):
    key = _hex(32)
    nb = write(tmp_path / "nb.ipynb", f'KAGGLE_KEY = "{key}"', "print(1)")
    with pytest.raises(BadInput) as err:
        build_kernel(nb, req())
    assert "cell 1, line 1" in str(err.value) and key not in str(err.value) and "--allow-secrets" in str(err.value)
    assert key in build_kernel(nb, req(allow_secrets=True)).text()


def test_secret_in_a_shipped_module_refused(tmp_path):
    (tmp_path / "settings.py").write_text(f'KAGGLE_KEY = "{_hex(32)}"\n')
    nb = write(tmp_path / "nb.ipynb", "import settings")
    with pytest.raises(BadInput, match="settings.py, line 1"):
        build_kernel(nb, req())


def test_secret_passed_as_a_parameter_refused(tmp_path):
    token = "ghp_" + "".join(random.choices(string.ascii_letters + string.digits, k=36))
    nb = write(tmp_path / "nb.ipynb", ("token = ''\nn = 1", ["parameters"]), "print(n)")
    with pytest.raises(BadInput) as err:
        build_kernel(nb, req(parameters={"n": "2", "token": token}))
    assert str(err.value).startswith("the value of parameter 'token' looks like a GitHub token: ghp_***")
    assert token not in str(err.value) and "Kaggle Secrets" in str(err.value)
    assert build_kernel(nb, req(parameters={"token": token}, allow_secrets=True)).parameters == {"token": token}


@pytest.mark.parametrize("kw, message", [
    (dict(accelerator="NvidiaTeslaT5"), "unknown accelerator 'NvidiaTeslaT5' (did you mean NvidiaTeslaT4?); "
                                        "Kaggle accepts NvidiaTeslaT4"),
    (dict(device="cpu", accelerator="NvidiaL4"), "--device cpu runs without an accelerator"),
    (dict(device="quantum"), "unknown device 'quantum'"),
    (dict(slug="Bad Slug"), "invalid kernel slug 'Bad Slug'"),
    (dict(title="abc"), "too short"),
    (dict(datasets=["just-a-slug"]), "invalid Kaggle source 'just-a-slug': give it as OWNER/SLUG"),
])
def test_bad_requests(tmp_path, kw, message):
    nb = write(tmp_path / "nb.ipynb", "print(1)")
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        build_kernel(nb, req(**kw))


# -- accelerators and metadata -----------------------------------------------------------------------

def test_metadata_gpu_default_and_sources(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "print(1)")
    bundle = build_kernel(nb, req(datasets=["bob/data"], competition="titanic", models=["google/gemma/pytorch/2b/1"],
                                  resume_from="alice/train-old111/v3", internet=True))
    assert bundle.metadata == {
        "id": "alice/train-abc123", "title": "train abc123", "code_file": "train-abc123.ipynb",
        "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": True,
        "enable_tpu": False, "enable_internet": True, "dataset_sources": ["bob/data"],
        "competition_sources": ["titanic"], "kernel_sources": ["alice/train-old111"],
        "model_sources": ["google/gemma/pytorch/2b/1"], "machine_shape": "NvidiaTeslaT4"}


def test_cpu_and_retired_accelerators(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "print(1)")
    cpu = build_kernel(nb, req(device="cpu")).metadata
    assert (cpu["enable_gpu"], cpu["enable_tpu"], cpu["machine_shape"]) == (False, False, None)
    p100 = build_kernel(nb, req(accelerator="nvidiateslap100"))
    assert p100.metadata["machine_shape"] == "NvidiaTeslaT4"
    assert any("NvidiaTeslaP100 is retired; Kaggle silently runs NvidiaTeslaT4" in n for n in p100.notes)
    tpu = build_kernel(nb, req(accelerator="TpuV5E8")).metadata
    assert (tpu["enable_gpu"], tpu["enable_tpu"], tpu["machine_shape"]) == (False, True, "TpuV5E8")


# -- the pushed notebook --------------------------------------------------------------------------------

def test_pushed_notebook_is_valid_without_outputs(tmp_path):
    nb = write(tmp_path / "nb.ipynb", PARAMS, "print(lr)")
    bundle = build_kernel(nb, req(parameters={"lr": "0.5"}))
    parsed = nbformat.reads(bundle.text(), as_version=4)
    nbformat.validate(parsed)
    assert parsed.metadata.kernelspec.name == "python3" and parsed.metadata.kernelspec.language == "python"
    assert all(c.outputs == [] and c.execution_count is None for c in parsed.cells if c.cell_type == "code")
    for cell in code_cells(bundle):
        compile(cell["source"], cell["id"], "exec")
    assert START_MARKER not in bundle.text() and END_MARKER not in bundle.text()


def test_build_is_deterministic_and_hash_follows_code(tmp_path):
    (tmp_path / "helpers.py").write_text("def f():\n    return 1\n")
    nb = write(tmp_path / "nb.ipynb", PARAMS, "import helpers\nprint(helpers.f())")
    one, two = build_kernel(nb, req(parameters={"lr": "0.2"})), build_kernel(nb, req(parameters={"lr": "0.2"}))
    assert one.text() == two.text() and one.code_hash == two.code_hash
    other_values = build_kernel(nb, req(parameters={"lr": "0.3"}))
    assert other_values.code_hash == one.code_hash and other_values.text() != one.text()
    (tmp_path / "helpers.py").write_text("def f():\n    return 2\n")
    assert build_kernel(nb, req(parameters={"lr": "0.2"})).code_hash != one.code_hash
    write(tmp_path / "nb.ipynb", PARAMS, "import helpers\nprint(helpers.f() + 1)")
    assert build_kernel(nb, req()).code_hash not in (one.code_hash,)


def test_write_puts_notebook_and_metadata(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "print(1)")
    bundle = build_kernel(nb, req())
    path = bundle.write(tmp_path / "out")
    assert path == tmp_path / "out" / "train-abc123.ipynb" and path.read_text() == bundle.text()
    assert json.loads((tmp_path / "out" / "kernel-metadata.json").read_text()) == bundle.metadata


# -- modules beside the notebook ---------------------------------------------------------------------

def test_modules_shipped_and_data_files_noted(tmp_path):
    (tmp_path / "helpers.py").write_text("X = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "model.py").write_text("Y = 2\n")
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    nb = write(tmp_path / "nb.ipynb", "import helpers\nfrom pkg import model\nimport pandas as pd\n"
                                      "df = pd.read_csv('train.csv')")
    bundle = build_kernel(nb, req())
    assert bundle.modules == ["helpers.py", "pkg/__init__.py", "pkg/model.py"]
    assert any(n.startswith("train.csv beside the notebook not shipped to Kaggle") for n in bundle.notes)


def test_archive_above_limit_is_refused_with_size(tmp_path):
    blob = "".join(random.choices(string.ascii_letters + string.digits, k=3 * 1024 * 1024))
    (tmp_path / "weights.py").write_text(f'DATA = "{blob}"\n')
    nb = write(tmp_path / "nb.ipynb", "import weights")
    with pytest.raises(BadInput) as err:
        build_kernel(nb, req())
    message = str(err.value)
    assert message.startswith("the modules beside nb.ipynb come to 2.") and "MB zipped (largest: weights.py)" in message
    assert "more than the 2 MB a kernel can carry" in message and "--dataset OWNER/SLUG" in message


# -- compatibility keys ----------------------------------------------------------------------------------

def test_compat_keys(tmp_path):
    nb = write(tmp_path / "nb.ipynb", PARAMS, "print(lr)")
    assert build_kernel(nb, req()).compat == ["lr", "epochs", "name", "use_aug", "layers"]
    nb = write(tmp_path / "nb.ipynb", ("# kagg: compat lr, layers\n" + PARAMS[0], ["parameters"]), "print(lr)")
    assert build_kernel(nb, req()).compat == ["lr", "layers"]
    nb = write(tmp_path / "nb.ipynb", ("# kagg: compat none\n" + PARAMS[0], ["parameters"]), "print(lr)")
    assert build_kernel(nb, req()).compat == []
    nb = write(tmp_path / "nb.ipynb", ("# kagg: compat lr, momentum\n" + PARAMS[0], ["parameters"]), "print(lr)")
    with pytest.raises(BadInput, match=r"cell 1, line 1: `# kagg: compat` names 'momentum', which is not a parameter"):
        build_kernel(nb, req())


# -- manifest -----------------------------------------------------------------------------------------------

def test_read_result_and_markers(tmp_path):
    data = {"status": "error", "parameters": {"lr": 1}, "code_hash": "ab", "timings": {},
            "outputs": [{"name": "outputs/m.bin", "size": 3, "sha256": "cd"}],
            "checkpoint": {"decision": "ignored", "source": "a/b", "reason": "lr 1 ≠ 2"},
            "error": {"cell": "cell 3", "type": "ValueError", "message": "bad"}}
    result = read_result(json.dumps(data))
    assert result.outputs[0].name == "outputs/m.bin" and result.error_line() == "cell 3: ValueError: bad"
    (tmp_path / "r.json").write_text(json.dumps(data))
    assert read_result(tmp_path / "r.json") == read_result(json.dumps(data).encode())
    with pytest.raises(OperationFailed, match="is not JSON"):
        read_result(b"<html>502</html>")
    with pytest.raises(OperationFailed, match="not a kagg result manifest"):
        read_result("{}")
    assert markers_in(f"x\n{START_MARKER} a/b\nok\n") == (True, False)
    assert markers_in(json.dumps([{"data": f"{START_MARKER}\n"}, {"data": f"{END_MARKER} a/b complete\n"}])) == (True, True)


def test_builder_imports_no_kaggle_sdk():
    code = ("import sys\nimport kagg.kaggle.kernel, kagg.kaggle.local_run, kagg.kaggle.manifest, kagg.kaggle.checkpoints\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kaggle', 'kagglesdk')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_checkpoint_decision_lines_for_the_summary():
    from kagg.kaggle.checkpoints import describe

    assert describe({"decision": "ignored", "source": "alice/t-1", "reason": "lr 0.01 ≠ 0.001"}) == \
        "checkpoint of alice/t-1 ignored: lr 0.01 ≠ 0.001; pass --force-resume to use it anyway"
    assert describe({"decision": "used", "source": "alice/t-1", "files": 2}) == \
        "resumed from the checkpoints of alice/t-1 (2 files)"
    assert describe({"decision": "forced", "source": "alice/t-1", "reason": "used despite: lr 1 ≠ 2"}) == \
        "checkpoint of alice/t-1 used because of --force-resume; used despite: lr 1 ≠ 2"
    assert describe({"decision": "none", "source": "alice/t-1", "reason": "alice/t-1 left no checkpoints"}) == \
        "no checkpoint resumed from alice/t-1: alice/t-1 left no checkpoints"
    assert describe({"decision": "none", "source": None, "reason": None}) is None

"""The deploy-time half of ``/jobs``: the kernel template (a request's kernel is byte-for-byte what
kagg's builder makes), job ids, which artifacts get jobs, and the credentials hook (secret env
entries that each provider passes through its env mechanism; here: AWS Lambda's variables)."""

from __future__ import annotations

import json
import sys

import pytest

from jobs_helpers import jobs_notebook
from kagg.deploy import convert_checked, prepare
from kagg.jobs_secrets import exposure_lines
from kagg.jobs_template import attach_jobs, slug_prefix
from kagg.kaggle.kernel import KernelRequest, build_kernel
from kagg.model import DeployOptions
from kagg.packaging.builder import RUNTIME_DIR, artifact_files
from kagg.registry import Registry
from notebooks import HANDLER, write

sys.path.insert(0, str(RUNTIME_DIR))
import kagg_jobs  # noqa: E402  (the artifact's module, as it runs in a function)


def template_of(nb):
    function = convert_checked(str(nb))
    setup = attach_jobs(function, str(nb))
    assert setup.enabled
    return function, json.loads(setup.files["kagg_jobs.json"])


@pytest.mark.parametrize("params", [{}, {"lr": 0.5, "label": "z"}, {"epochs": 7, "label": "é \"q\""}])
def test_a_requests_kernel_is_what_the_builder_makes(tmp_path, params):
    nb = jobs_notebook(tmp_path)
    (tmp_path / "helpers.py").write_text("SCALE = 3\n")
    nb.write_text(nb.read_text().replace("from pathlib import Path", "from pathlib import Path\\nimport helpers"))
    _, template = template_of(nb)
    slug = slug_prefix("trainer") + "k0123456789abcde"
    metadata, text = kagg_jobs.render(template, "alice", slug, params)
    bundle = build_kernel(str(nb), KernelRequest(owner="alice", slug=slug, title=slug, parameters=params))
    assert text == bundle.text() and metadata == bundle.metadata
    assert "helpers.py" in text  # the module travels in the kernel


def test_jobs_only_for_notebooks_with_train_cells(tmp_path):
    plain = convert_checked(str(write(tmp_path / "plain.ipynb", HANDLER)))
    assert not attach_jobs(plain, str(tmp_path / "plain.ipynb")).enabled
    files = artifact_files(plain, ("lambda",))
    assert not any(n.startswith("kagg_jobs") for n in files) and b"kagglesdk" not in files["requirements.txt"]
    function, template = template_of(jobs_notebook(tmp_path / "t"))
    files = artifact_files(function, ("lambda",))
    assert {"kagg_jobs.py", "kagg_jobs_kaggle.py", "kagg_jobs.json"} <= set(files)
    from importlib.metadata import version

    assert files["requirements.txt"].decode().split() == [f"kagglesdk=={version('kagglesdk')}"]
    assert [p["name"] for p in template["parameters"]] == ["lr", "epochs", "label"]
    assert template["access"] == "open" and template["metadata"]["enable_gpu"] is True


def test_slugs_and_ids(tmp_path):
    assert slug_prefix("a") != slug_prefix("a-b")[:len(slug_prefix("a"))]
    long = slug_prefix("x" * 80)
    assert len(long) <= 33 and len(long) + 16 <= 50
    job = kagg_jobs.encode_id("alice", long + "0" * 16, 12)
    assert kagg_jobs.decode_id(job) == ("alice", long + "0" * 16, 12)
    assert "/" not in job and "=" not in job
    for bad in ("", "x", "!!!!", kagg_jobs.encode_id("alice", "Bad_Slug", 1), "a" * 400):
        assert kagg_jobs.decode_id(bad) is None


def test_deploy_gives_the_function_the_deployers_kaggle_credentials(kaggle_standin, tmp_path):
    """The generic hook: secret env entries in DeployOptions.env, named in extra["secret_env"];
    AWS puts them in the Lambda function's environment, the registry keeps names only."""
    from kagg.providers.aws.settings import Settings

    nb = jobs_notebook(tmp_path / "nb")
    registry = Registry(tmp_path / "endpoints.json")
    prepared = prepare(str(nb), "aws", DeployOptions(name="trainer", public=True, region="us-east-1"), registry)
    assert prepared.jobs == {"enabled": True, "username": kaggle_standin.user}
    assert prepared.options.extra["secret_env"] == ["KAGGLE_KEY", "KAGGLE_USERNAME", "KAGG_KAGGLE_API_URL"]
    config = Settings.from_options(prepared.options, "us-east-1").function_config("trainer", "arn:role")
    assert config["Environment"]["Variables"]["KAGGLE_KEY"] == kaggle_standin.key
    files = artifact_files(prepared.function, ("lambda",))
    assert json.loads(files["kagg_jobs.json"])["access"] == "closed"
    assert not any(kaggle_standin.key.encode() in data for data in files.values())
    assert any("--public-jobs" in line for line in exposure_lines(True, False, "alice"))
    assert any("anyone" in line for line in exposure_lines(True, True, "alice"))

    user_wins = prepare(str(nb), "aws", DeployOptions(name="trainer", region="us-east-1",
                                                      env={"KAGGLE_USERNAME": "other"}), registry)
    assert user_wins.options.env["KAGGLE_USERNAME"] == "other" and "KAGGLE_USERNAME" not in user_wins.options.extra["secret_env"]
    dry = prepare(str(nb), "aws", DeployOptions(name="trainer", region="us-east-1", dry_run=True), registry)
    assert "KAGGLE_KEY" not in dry.options.env


def test_without_kaggle_credentials_the_deploy_says_what_jobs_will_do(monkeypatch, tmp_path):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    prepared = prepare(str(jobs_notebook(tmp_path / "nb")), "local", DeployOptions(name="trainer"),
                       Registry(tmp_path / "endpoints.json"))
    assert prepared.jobs["enabled"] and "KAGGLE_KEY" not in prepared.options.env
    assert any("503" in str(n) and "credentials" in str(n) for n in prepared.function.notes)


def test_the_jobs_modules_import_only_the_standard_library_at_load():
    """kagglesdk (and requests) only inside the functions that call Kaggle: loading kagg_jobs costs nothing."""
    import ast

    for name in ("kagg_jobs.py", "kagg_jobs_kaggle.py"):
        tree = ast.parse((RUNTIME_DIR / name).read_text())
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        assert top - {"__future__"} <= set(sys.stdlib_module_names), (name, top)


def test_convert_writes_what_a_deploy_ships(kagg, tmp_path):
    nb = jobs_notebook(tmp_path / "nb")
    out = kagg("convert", str(nb), "-o", str(tmp_path / "tree"), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["jobs"] is True and "kagg_jobs.json" in summary["output"]["files"]
    assert "kagglesdk" in (tmp_path / "tree" / "requirements.txt").read_text()
    plain = kagg("convert", str(write(tmp_path / "plain.ipynb", HANDLER)))
    assert plain.returncode == 0 and "/jobs" not in plain.stdout

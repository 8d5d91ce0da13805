"""What a new user hit in the first hour, each through the real CLI (``python -m kagg``).

Local deploys start real servers; every test deletes what it deployed. Tests that need no
server use ``fake``, a provider registered from outside kagg through an entry point, exactly
as a third-party package registers one (it deploys nowhere and records the options it got).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import EXAMPLES, ROOT, run_kagg
from notebooks import HANDLER, write

REQUIRED = textwrap.dedent('''
    def handler(x: int, ratio: float, label: str, flag: bool, items: list, opts: dict, y: int = 2):
        return {"x": x, "ratio": ratio, "label": label, "flag": flag, "items": items, "opts": opts, "y": y}
''').strip()

FAKE_PROVIDER = textwrap.dedent('''
    from kagg.errors import OperationFailed
    from kagg.model import Endpoint, Plan, PlanStep
    from kagg.providers.base import Provider

    class FakeProvider(Provider):
        """Deploys nowhere; records the options it was given. Reads only --timeout."""
        name = "fake"
        options_used = frozenset({"timeout"})

        def plan(self, artifact, current, options):
            unchanged = bool(current and current.artifact_sha256 == artifact.sha256)
            return Plan(self.name, artifact.function.name, artifact, current, options,
                        [PlanStep("upload", "pretend to upload " + artifact.path.name)], unchanged)

        def apply(self, plan):
            return Endpoint(name=plan.name, provider=self.name, url="fake://" + plan.name,
                            artifact_sha256=plan.artifact.sha256,
                            source={"path": plan.artifact.function.source.path,
                                    "sha256": plan.artifact.function.source.sha256},
                            provider_data={"timeout": plan.options.timeout})

        def delete(self, endpoint, options=None):
            if endpoint.name.startswith("broken"):
                raise OperationFailed(f"the cloud refused to delete {endpoint.name}")
            return []
''')


def pid_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def entries(registry: Path) -> dict:
    return json.loads(registry.read_text())["endpoints"] if registry.exists() else {}


def error_line(res: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.fixture
def reg(registry_path):
    """A registry for one test; every endpoint left in it is deleted afterwards."""
    yield registry_path
    for name in entries(registry_path):
        run_kagg("delete", name)


@pytest.fixture
def fake(tmp_path) -> dict:
    """The environment that makes the ``fake`` provider importable and registered."""
    site = tmp_path / "site"
    (site / "fake_provider").mkdir(parents=True)
    (site / "fake_provider" / "__init__.py").write_text(FAKE_PROVIDER)
    dist = site / "fake_provider-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-provider\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[kagg.providers]\nfake = fake_provider:FakeProvider\n")
    return {"PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One local endpoint with required parameters of every type, shared by the invoke tests:
    (registry path, the deploy's stdout)."""
    folder = tmp_path_factory.mktemp("served")
    registry = folder / "endpoints.json"
    nb = write(folder / "typed.ipynb", REQUIRED)
    res = run_kagg("--registry", str(registry), "deploy", str(nb), "--name", "typed")
    assert res.returncode == 0, res.stderr
    yield registry, res.stdout
    run_kagg("--registry", str(registry), "delete", "typed")


def invoke(registry: Path, *args: str) -> subprocess.CompletedProcess:
    return run_kagg("invoke", *args, env={"KAGG_REGISTRY": str(registry)})


# -- 7. the "try:" line works ----------------------------------------------------------------------------------------
def test_the_try_line_after_a_deploy_is_a_call_that_answers_200(served, tmp_path):
    registry, stdout = served
    hint = [ln.split("try: ", 1)[1] for ln in stdout.splitlines() if "try: " in ln]
    assert len(hint) == 1, stdout
    words = shlex.split(hint[0])
    assert words[:3] == ["kagg", "invoke", "typed"]
    # the deploy named its registry with --registry: the line does too, so it works from anywhere
    assert words[3:5] == ["--registry", str(registry)]
    res = run_kagg(*words[1:], "-i", env={"KAGG_REGISTRY": str(tmp_path / "elsewhere.json")})
    assert res.returncode == 0, res.stderr
    assert "HTTP 200" in res.stderr
    assert json.loads(res.stdout) == {"x": 1, "ratio": 1.0, "label": "text", "flag": True, "items": [],
                                      "opts": {}, "y": 2}


def test_the_try_line_of_a_function_without_required_parameters_is_the_bare_call(reg, tmp_path):
    nb = tmp_path / "hello.ipynb"
    nb.write_bytes((EXAMPLES / "hello.ipynb").read_bytes())
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 0, res.stderr
    assert "  try: kagg invoke hello\n" in res.stdout


# -- 8. contradictory invoke input is refused --------------------------------------------------------------------------
@pytest.mark.parametrize("args,words", [
    (['{"label": "Ada"}', "-q", "x=3"], "-q"),
    (["-d", '{"label": "Ada"}', "-q", "x=3"], "-q"),
    (['{"x": 1}', "-X", "GET"], "-X GET"),
    (["-q", "x=1", "-X", "POST"], "POST"),
], ids=["payload-and-query", "data-and-query", "get-with-body", "query-with-post"])
def test_invoke_refuses_input_it_would_drop(served, args, words):
    registry, _ = served
    res = invoke(registry, "typed", *args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert words in error_line(res) and len(res.stderr.strip().splitlines()) == 1
    assert res.stdout == ""


def test_invoke_timeout_reads_durations(served):
    registry, _ = served
    body = '{"x": 1, "ratio": 1, "label": "a", "flag": false, "items": [], "opts": {}}'
    for timeout in ("10", "10s", "2m"):
        res = invoke(registry, "typed", body, "--timeout", timeout)
        assert res.returncode == 0, (timeout, res.stderr)
    res = invoke(registry, "typed", body, "--timeout", "soon")
    assert res.returncode == 2 and "--timeout" in error_line(res)


# -- 9. --json failures print a JSON error on stdout ----------------------------------------------------------------
JSON_FAILURES = {
    "deploy": ["deploy", "{tmp}/missing.ipynb"],
    "deploy-usage": ["deploy", "{tmp}/ok.ipynb", "--bogus"],
    "convert": ["convert", "{tmp}/missing.ipynb"],
    "preprocess": ["preprocess", "{tmp}/missing.ipynb", "--scan-secrets"],
    "endpoints-list": ["--registry", "{tmp}/corrupt.json", "endpoints", "list"],
    "endpoints-show": ["endpoints", "show", "nope"],
    "endpoints-rm": ["endpoints", "rm", "nope"],
    "providers": ["providers", "--bogus"],
    "batch": ["batch", "{tmp}/missing.csv"],
    "monitor-history": ["monitor", "history", "x", "--since", "never"],
}


@pytest.mark.parametrize("case", sorted(JSON_FAILURES))
def test_a_failure_with_json_prints_a_json_error_on_stdout(case, registry_path, tmp_path):
    write(tmp_path / "ok.ipynb", HANDLER)
    (tmp_path / "corrupt.json").write_text("{oops")
    args = [a.format(tmp=tmp_path) for a in JSON_FAILURES[case]]
    plain = run_kagg(*args)
    res = run_kagg(*args, "--json")
    assert res.returncode == plain.returncode and res.returncode in (1, 2), (res.stdout, res.stderr)
    assert plain.stdout == ""
    doc = json.loads(res.stdout)
    assert set(doc) == {"error"} and set(doc["error"]) == {"type", "message"}
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("Error: ")][-1]
    assert doc["error"]["message"] == line[len("Error: "):]
    expected = {2: ("BadInput", "NotFound", "RegistryError"), 1: ("OperationFailed",)}[res.returncode]
    assert doc["error"]["type"] in expected, doc


def test_the_json_error_type_names_the_kind_of_failure(registry_path, tmp_path):
    res = run_kagg("endpoints", "show", "nope", "--json")
    assert json.loads(res.stdout)["error"]["type"] == "NotFound"
    res = run_kagg("deploy", str(tmp_path / "missing.ipynb"), "--json")
    assert json.loads(res.stdout)["error"]["type"] == "BadInput"


def test_a_command_that_printed_its_json_report_then_failed_prints_only_that_report(fake, registry_path, tmp_path):
    """``--operation delete`` of a name the provider fails to delete: the report, exit 1, one document."""
    nb = write(tmp_path / "broken-one.ipynb", HANDLER)
    assert run_kagg("deploy", str(nb), "--provider", "fake", env=fake).returncode == 0
    names = tmp_path / "names.csv"
    names.write_text("name\nbroken-one\n")
    res = run_kagg("batch", str(names), "--operation", "delete", "--json", env=fake)
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)  # exactly one JSON document
    assert "items" in report and "error" not in report


def test_a_payload_that_reads_json_is_not_the_option(registry_path):
    res = run_kagg("invoke", "ghost", "--", "--json")
    assert res.returncode == 2 and res.stdout == ""


# -- 10. global options after the subcommand -------------------------------------------------------------------------------
def test_registry_and_debug_are_accepted_after_the_subcommand(tmp_path, registry_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"version": 1, "endpoints": {"far": {
        "name": "far", "provider": "local", "url": "http://127.0.0.1:9/", "auth": "none"}}}))
    listed = run_kagg("endpoints", "list", "--json", "--registry", "other.json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [e["name"] for e in json.loads(listed.stdout)] == ["far"]
    shown = run_kagg("endpoints", "show", "far", "--registry", str(other))
    assert shown.returncode == 0 and "url: http://127.0.0.1:9/" in shown.stdout

    for args in (["invoke", "ghost"], ["endpoints", "show", "ghost"], ["delete", "ghost"],
                 ["logs", "ghost"], ["endpoints", "rm", "ghost"]):
        res = run_kagg(*args, "--registry", "r.json", cwd=tmp_path)
        assert res.returncode == 2, (args, res.stderr)
        # the registry is named by its full path, whichever way it was given
        assert f"no endpoint named 'ghost' in {tmp_path / 'r.json'}" in error_line(res), args

    res = run_kagg("deploy", str(tmp_path / "nope.ipynb"), "--debug")
    assert res.returncode == 2 and "Traceback" in res.stderr and "Error: " in res.stderr
    res = run_kagg("endpoints", "show", "ghost", "--debug")
    assert res.returncode == 2 and "Traceback" in res.stderr


def test_two_different_registries_are_refused(tmp_path, registry_path):
    res = run_kagg("--registry", "a.json", "endpoints", "list", "--registry", "b.json", cwd=tmp_path)
    assert res.returncode == 2 and "--registry given twice" in error_line(res)
    same = run_kagg("--registry", "a.json", "endpoints", "list", "--registry", str(tmp_path / "a.json"),
                    cwd=tmp_path)
    assert same.returncode == 0, same.stderr


# -- 11. endpoints rm of a running local endpoint ------------------------------------------------------------------
def test_endpoints_rm_refuses_a_running_local_endpoint_unless_forced(reg, tmp_path):
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    assert run_kagg("deploy", str(nb)).returncode == 0
    entry = entries(reg)["adder"]
    pid, port = entry["provider_data"]["pid"], entry["provider_data"]["port"]

    res = run_kagg("endpoints", "rm", "adder")
    assert res.returncode == 2
    assert "kagg delete adder" in error_line(res) and "running" in error_line(res)
    assert "adder" in entries(reg) and pid_running(pid)

    res = run_kagg("endpoints", "rm", "adder", "--force")
    try:
        assert res.returncode == 0, res.stderr
        assert "adder" not in entries(reg)
        assert f"pid {pid}" in res.stderr and f"port {port}" in res.stderr
        assert pid_running(pid)  # forgotten, not stopped
    finally:  # give the entry back, so that kagg stops the server it left running
        doc = json.loads(reg.read_text())
        doc["endpoints"]["adder"] = entry
        reg.write_text(json.dumps(doc))
    assert run_kagg("delete", "adder").returncode == 0
    assert not pid_running(pid)


def test_endpoints_rm_of_a_stopped_endpoint_needs_no_force(registry_path):
    registry_path.write_text(json.dumps({"version": 1, "endpoints": {"old": {
        "name": "old", "provider": "local", "url": "http://127.0.0.1:9/", "auth": "none",
        "provider_data": {"pid": 999999999, "port": 9}}}}))
    res = run_kagg("endpoints", "rm", "old")
    assert res.returncode == 0, res.stderr
    assert entries(registry_path) == {}


# -- 12. options that do not apply to the provider -------------------------------------------------------------------
def test_an_option_the_provider_does_not_read_is_refused(fake, registry_path, tmp_path):
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    for option in (["--memory", "256"], ["--port", "8123"], ["--public"], ["--region", "eu-west-1"]):
        res = run_kagg("deploy", str(nb), "--provider", "fake", *option, env=fake)
        assert res.returncode == 2, (option, res.stderr)
        line = error_line(res)
        assert f"{option[0]} does not apply to the fake provider" in line and "--timeout" in line, line
    assert not registry_path.exists()
    res = run_kagg("deploy", str(nb), "--provider", "fake", "--memory", "256", "--public", env=fake)
    assert "--memory, --public do not apply to the fake provider" in error_line(res)
    ok = run_kagg("deploy", str(nb), "--provider", "fake", "--timeout", "2m", env=fake)
    assert ok.returncode == 0, ok.stderr
    assert entries(registry_path)["adder"]["provider_data"]["timeout"] == 120


@pytest.mark.parametrize("option", [["--timeout", "10"], ["--memory", "256"], ["--region", "eu-west-1"],
                                    ["--public"], ["--role", "arn:aws:iam::123456789012:role/r"],
                                    ["--runtime", "python3.12"], ["--arch", "arm64"], ["--bucket", "b"]])
def test_cloud_options_are_refused_with_local(option, registry_path, tmp_path):
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    res = run_kagg("deploy", str(nb), "--local", *option)
    assert res.returncode == 2, res.stderr
    assert f"{option[0]} does not apply to the local provider" in error_line(res)
    assert not registry_path.exists()


def test_port_is_refused_with_aws(registry_path, tmp_path):
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    res = run_kagg("deploy", str(nb), "--aws", "--port", "8080")
    assert res.returncode == 2, res.stderr
    assert "--port does not apply to the aws provider" in error_line(res)


# -- 13. providers and their status ------------------------------------------------------------------------------------
WITHOUT_BOTO3 = textwrap.dedent("""
    import sys
    sys.modules["boto3"] = None  # as if boto3 were not installed: importing it raises ImportError
    from kagg.cli import main
    try:
        main(sys.argv[1:])
    finally:
        sys.stdout.flush()
        assert "botocore" not in sys.modules
""")


def test_providers_says_which_ones_can_be_used():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", WITHOUT_BOTO3, "providers", "--json"], capture_output=True,
                         text=True, env=env)
    assert res.returncode == 0, res.stderr
    found = {p["name"]: p for p in json.loads(res.stdout)}
    assert found["aws"] == {"name": "aws", "available": False, "install": "pip install 'kagg[aws]'"}
    assert found["local"] == {"name": "local", "available": True, "install": None}
    text = subprocess.run([sys.executable, "-c", WITHOUT_BOTO3, "providers"], capture_output=True, text=True,
                          env=env)
    assert text.returncode == 0, text.stderr
    rows = {ln.split()[0]: ln for ln in text.stdout.splitlines()[2:]}
    assert "unavailable" in rows["aws"] and "pip install 'kagg[aws]'" in rows["aws"]
    assert rows["local"].split()[1] == "available"
    with_boto3 = json.loads(run_kagg("providers", "--json").stdout)
    assert {"name": "aws", "available": True, "install": None} in with_boto3


# -- 15. delete several, delete all -------------------------------------------------------------------------------------
def _deploy_fake(fake: dict, tmp_path: Path, *names: str) -> None:
    for name in names:
        nb = write(tmp_path / f"{name}.ipynb", HANDLER)
        res = run_kagg("deploy", str(nb), "--provider", "fake", env=fake)
        assert res.returncode == 0, res.stderr


def test_delete_takes_several_names_and_goes_on_past_a_missing_one(fake, registry_path, tmp_path):
    _deploy_fake(fake, tmp_path, "one", "two", "three")
    res = run_kagg("delete", "one", "ghost", "two", env=fake)
    assert res.returncode == 2, res.stderr
    assert "Deleted one" in res.stdout and "Deleted two" in res.stdout
    assert "ghost" in error_line(res) and "deleted 2 of 3" in error_line(res)
    assert list(entries(registry_path)) == ["three"]


def test_delete_of_several_exits_1_when_one_failed(fake, registry_path, tmp_path):
    _deploy_fake(fake, tmp_path, "one", "broken-two", "three")
    res = run_kagg("delete", "one", "broken-two", "ghost", "three", env=fake)
    assert res.returncode == 1, res.stderr
    assert "the cloud refused to delete broken-two" in res.stderr
    assert "failed: broken-two" in error_line(res) and "ghost" in error_line(res)
    assert list(entries(registry_path)) == ["broken-two"]


def test_delete_all_asks_first(fake, registry_path, tmp_path):
    _deploy_fake(fake, tmp_path, "one", "two")
    res = run_kagg("delete", "--all", env=fake, input="")  # no terminal to ask on
    assert res.returncode == 2
    assert "--yes" in error_line(res) and len(res.stderr.strip().splitlines()) == 1
    assert list(entries(registry_path)) == ["one", "two"]
    res = run_kagg("delete", "one", "--all", env=fake)
    assert res.returncode == 2 and "not both" in error_line(res)
    res = run_kagg("delete", "--all", "--yes", env=fake)
    assert res.returncode == 0, res.stderr
    assert "Deleted one" in res.stdout and "Deleted two" in res.stdout
    assert entries(registry_path) == {}


# -- 16. consistency --------------------------------------------------------------------------------------------------
def test_endpoints_list_is_an_aligned_table_and_show_says_dash_for_none(registry_path):
    registry_path.write_text(json.dumps({"version": 1, "endpoints": {
        "cloudy": {"name": "cloudy", "provider": "aws", "url": "https://abc.lambda-url.us-east-1.on.aws/",
                   "auth": "aws_iam", "region": "us-east-1"},
        "here": {"name": "here", "provider": "local", "url": "http://127.0.0.1:9/", "auth": "none"}}}))
    res = run_kagg("endpoints", "list")
    assert res.returncode == 0, res.stderr
    assert "\t" not in res.stdout
    lines = res.stdout.splitlines()
    header = lines[0]
    assert header.split() == ["NAME", "PROVIDER", "STATUS", "HEALTH", "URL", "AUTH", "REGION", "UPDATED"]
    rows = {ln.split()[0]: ln for ln in lines[1:] if ln.split() and ln.split()[0] in ("cloudy", "here")}
    for column, values in (("PROVIDER", {"cloudy": "aws", "here": "local"}),
                           ("REGION", {"cloudy": "us-east-1", "here": "-"}), ("HEALTH", {"cloudy": "-", "here": "down"})):
        at = header.index(column)
        for name, value in values.items():
            assert rows[name][at:at + len(value)] == value, (column, rows[name])
    assert "None" not in res.stdout
    shown = run_kagg("endpoints", "show", "here")
    assert "region: -" in shown.stdout.splitlines() and "None" not in shown.stdout
    as_json = json.loads(run_kagg("endpoints", "list", "--json").stdout)
    assert [e["region"] for e in as_json] == ["us-east-1", None]


def test_deploy_timeout_reads_durations(fake, registry_path, tmp_path):
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    for text, seconds in (("10", 10), ("10s", 10), ("2m", 120)):
        res = run_kagg("deploy", str(nb), "--provider", "fake", "--timeout", text, "--force", env=fake)
        assert res.returncode == 0, res.stderr
        assert entries(registry_path)["adder"]["provider_data"]["timeout"] == seconds
    res = run_kagg("deploy", str(nb), "--provider", "fake", "--timeout", "1.5s", env=fake)
    assert res.returncode == 2 and "whole seconds" in error_line(res)


def test_preprocess_without_an_option_lists_them(tmp_path):
    nb = write(tmp_path / "nb.ipynb", HANDLER)
    res = run_kagg("preprocess", str(nb))
    assert res.returncode == 2 and res.stdout == ""
    line = error_line(res)
    assert all(option in line for option in ("--strip-outputs", "--clean-metadata", "--scan-secrets"))


def test_dry_run_force_and_a_skipped_deploy_say_what_would_and_did_happen(fake, registry_path, tmp_path):
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    assert run_kagg("deploy", str(nb), "--provider", "fake", env=fake).returncode == 0
    forced = run_kagg("deploy", str(nb), "--provider", "fake", "--dry-run", "--force", env=fake)
    assert forced.returncode == 0, forced.stderr
    assert "with --force the deploy would run these steps" in forced.stdout
    assert "would skip" not in forced.stdout
    plain = run_kagg("deploy", str(nb), "--provider", "fake", "--dry-run", env=fake)
    assert "a deploy would skip it" in plain.stdout

    skipped = run_kagg("deploy", str(nb), "--provider", "fake", "--json", env=fake)
    assert skipped.returncode == 0, skipped.stderr
    doc = json.loads(skipped.stdout)
    assert doc["status"] == "skipped" and doc["skipped"] is True and doc["plan"] == []
    redeployed = json.loads(run_kagg("deploy", str(nb), "--provider", "fake", "--json", "--force",
                                     env=fake).stdout)
    assert redeployed["skipped"] is False and redeployed["plan"][0].startswith("upload: pretend to upload ")

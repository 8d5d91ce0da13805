"""``kagg batch`` with one list mixing local, aws (moto) and gcp (the Google stand-in) items."""

from __future__ import annotations

import json

from aws_fixtures import aws, moto_stack  # noqa: F401
from batch_provider import write_notebooks
from conftest import run_kagg
from gcp_fixtures import gcp, google_standin, sa_key  # noqa: F401
from test_batch_local import _alive, _post, local_registry  # noqa: F401


def test_mixed_local_aws_and_gcp_list(tmp_path, local_registry, aws, gcp):  # noqa: F811
    write_notebooks(tmp_path, 5)
    lst = tmp_path / "mixed.json"
    lst.write_text(json.dumps({"defaults": {"memory": 256}, "items": [
        {"notebook": "nb00.ipynb", "name": "mixg-local-0"},
        {"notebook": "nb01.ipynb", "name": "mixg-aws-1", "provider": "aws"},
        {"notebook": "nb02.ipynb", "name": "mixg-gcp-2", "provider": "gcp", "public": True},
        {"notebook": "nb03.ipynb", "name": "mixg-gcp-3", "provider": "gcp", "env": "STAGE=test",
         "region": "europe-west1"},
        {"notebook": "nb04.ipynb", "name": "mixg-local-4"}]}))
    proc = run_kagg("batch", str(lst), "--parallel", "4", "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["counts"]["ok"] == 5
    assert gcp.actions().count("locations.list") == 2  # two pages, asked once for the batch, not per item

    endpoints = json.loads(local_registry.read_text())["endpoints"]
    assert {n: ep["provider"] for n, ep in endpoints.items()} == {
        "mixg-local-0": "local", "mixg-aws-1": "aws", "mixg-gcp-2": "gcp", "mixg-gcp-3": "gcp",
        "mixg-local-4": "local"}
    assert _post(endpoints["mixg-local-4"]["url"], {"x": 7}) == {"x": 7, "i": 4}
    assert (endpoints["mixg-gcp-2"]["auth"], endpoints["mixg-gcp-3"]["auth"]) == ("none", "google_id_token")
    assert gcp.is_public("mixg-gcp-2") and not gcp.is_public("mixg-gcp-3", "europe-west1")
    config = gcp.function("mixg-gcp-3", "europe-west1")["serviceConfig"]
    assert config["availableMemory"] == "256Mi" and config["environmentVariables"]["STAGE"] == "test"
    assert aws.direct("lambda").get_function_configuration(FunctionName="mixg-aws-1")["MemorySize"] == 256

    gcp.clear()  # an unchanged rerun: one read per gcp item, no write
    proc = run_kagg("batch", str(lst), "--parallel", "4", "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {item["detail"] for item in json.loads(proc.stdout)["items"]} == {"unchanged"}
    assert sorted(gcp.actions()) == ["functions.get", "functions.get"]

    proc = run_kagg("batch", str(lst), "--operation", "delete", "--parallel", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(local_registry.read_text())["endpoints"] == {}
    assert gcp.function("mixg-gcp-2") is None and gcp.function("mixg-gcp-3", "europe-west1") is None
    for name in ("mixg-local-0", "mixg-local-4"):
        assert not _alive(endpoints[name]["provider_data"]["pid"])

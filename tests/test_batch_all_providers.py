"""``kagg batch`` with local, AWS, Google and Azure items in one list, in parallel, through the real CLI.

AWS items go to moto behind the recording proxy (tests/aws_fixtures.py), Google
items to the Google stand-in, Azure items to the Azure stand-in; the local item
runs a real server (the ``reg`` fixture stops it).
"""

from __future__ import annotations

import json

from aws_fixtures import aws, moto_stack  # noqa: F401
from aws_fixtures import notebook_json as aws_notebook
from azure_fixtures import azure, appname  # noqa: F401
from conftest import run_kagg
from gcp_fixtures import gcp, google_standin, sa_key  # noqa: F401


def test_a_batch_mixing_all_four_providers(azure, aws, gcp, appname, reg, tmp_path):
    for i in range(4):
        (tmp_path / f"nb{i}.ipynb").write_text(aws_notebook())
    names = {"local": f"{appname}-local", "aws": f"{appname}-aws", "azure": f"{appname}-az",
             "gcp": f"{appname}-gcp"}
    (tmp_path / "list.csv").write_text(
        "notebook,name,provider,region\n"
        f"nb0.ipynb,{names['local']},local,\n"
        f"nb1.ipynb,{names['aws']},aws,us-east-1\n"
        f"nb2.ipynb,{names['azure']},azure,westeurope\n"
        f"nb3.ipynb,{names['gcp']},gcp,europe-west1\n")
    proc = run_kagg("batch", str(tmp_path / "list.csv"), "--parallel", "4", "--json", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    items = {item["name"]: item for item in json.loads(proc.stdout)["items"]}
    assert {items[n]["status"] for n in names.values()} == {"ok"}, items
    endpoints = json.loads(reg.read_text())["endpoints"]
    assert {endpoints[n]["provider"] for n in names.values()} == {"local", "aws", "azure", "gcp"}
    assert endpoints[names["azure"]]["region"] == "westeurope"
    assert any(k[1] == names["azure"] for k in azure.sites)

    assert endpoints[names["gcp"]]["region"] == "europe-west1"
    assert gcp.function(names["gcp"], "europe-west1") is not None

    # the local server and the Azure app answer alike; the Google stand-in's function URL says who
    # called (the signed ID token's account); moto serves no function URL
    answers = [run_kagg("invoke", names[p], '{"name": "batch"}') for p in ("local", "azure", "gcp")]
    assert [a.returncode for a in answers] == [0, 0, 0], [a.stderr for a in answers]
    assert json.loads(answers[0].stdout) == json.loads(answers[1].stdout)
    assert json.loads(answers[2].stdout)["caller"].endswith(".iam.gserviceaccount.com")

    azure.clear()
    gcp.clear()
    again = run_kagg("batch", str(tmp_path / "list.csv"), "--json", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert {i["status"] for i in json.loads(again.stdout)["items"]} == {"skipped"}
    assert azure.ops(mutating=True) == []
    assert gcp.actions() == ["functions.get"]  # one read, no write

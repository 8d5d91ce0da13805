"""AzureProvider used as a library: an injected credential, signing, ownership, and the http rule.

These run the provider in-process against the stand-in, with a credential object
given to the constructor (no KAGG_AZURE_TEST_TOKEN, and DefaultAzureCredential is
never constructed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azure_fixtures import HELLO, TOKEN, azure, appname, notebook_json  # noqa: F401
from conftest import run_kagg
from kagg.deploy import convert_checked
from kagg.errors import BadInput
from kagg.model import DeployOptions
from kagg.providers.azure import credentials, endpoints
from kagg.providers.azure.clients import Clients, RetrySettings
from kagg.providers.azure.provider import AzureProvider


class CountingCredential:
    """What a library user may pass: any object with ``get_token()``."""

    def __init__(self) -> None:
        self.scopes: list[tuple] = []

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(TOKEN, 2**31)


def test_an_injected_credential_deploys_signs_and_deletes(azure, nb, appname, tmp_path, monkeypatch):
    monkeypatch.delenv("KAGG_AZURE_TEST_TOKEN")
    cred = CountingCredential()
    provider = AzureProvider(state_dir=tmp_path / ".kagg", credential=cred)
    options = DeployOptions(name=appname, region="eastus", owner="entry-1")
    function = convert_checked(str(nb), name=appname)
    artifact = provider.build(function, options)
    plan = provider.plan(artifact, None, options)
    assert not plan.unchanged and azure.ops(mutating=True) == []
    endpoint = provider.apply(plan)
    assert endpoint.auth == "function_key" and endpoint.url.endswith(f"/site/{appname}/")
    assert cred.scopes and all(s == (endpoints.token_scope(azure.arm),) for s in cred.scopes)
    assert credentials._default is None  # DefaultAzureCredential was never made

    azure.clear()
    headers = provider.sign(endpoint, "GET", endpoint.url, {"accept": "application/json"}, b"")
    assert headers["x-functions-key"] == azure.apps[appname].key and headers["accept"] == "application/json"
    provider.sign(endpoint, "GET", endpoint.url, {}, b"")
    assert azure.count("sites.listKeys") == 1  # read once per process, kept in memory only
    assert "x-functions-key" not in json.dumps(endpoint.to_dict())

    endpoint.status, endpoint.owner = "ready", "entry-1"
    again = provider.plan(provider.build(function, options), endpoint, options)
    assert again.unchanged and again.steps == []
    assert provider.delete(endpoint, DeployOptions(extra={"purge": True})) == []
    assert not azure.sites and not azure.groups


def test_a_function_app_another_registry_made_is_not_changed_or_deleted(azure, nb, appname, tmp_path):
    other = tmp_path / "other.json"
    assert run_kagg("deploy", str(nb), "--azure", "--name", appname, "--location", "eastus",
                    env={"KAGG_REGISTRY": str(other)}).returncode == 0
    azure.clear()
    mine = run_kagg("deploy", str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert mine.returncode == 2 and "made by another kagg endpoint" in mine.stderr and "--adopt" in mine.stderr
    assert azure.ops(mutating=True) == []
    adopt = run_kagg("deploy", str(nb), "--azure", "--name", appname, "--location", "eastus", "--adopt", "--dry-run")
    assert adopt.returncode == 0 and "kagg-owner" in adopt.stdout, adopt.stderr

    # a stale entry (its app since remade by the other registry) deletes nothing
    stale = json.loads(other.read_text())
    stale["endpoints"][appname]["owner"] = "someone-else"
    stale_path = tmp_path / "stale.json"
    stale_path.write_text(json.dumps(stale))
    gone = run_kagg("delete", appname, "--purge", env={"KAGG_REGISTRY": str(stale_path)})
    assert gone.returncode == 0 and "left it in place" in gone.stderr
    assert any(k[1] == appname for k in azure.sites) and azure.ops(mutating=True) == []


def test_the_http_exception_is_for_loopback_stand_ins_only(monkeypatch):
    monkeypatch.delenv("KAGG_AZURE_ARM_URL")
    assert endpoints.arm_url() == "https://management.azure.com"
    assert "per_call_policies" not in Clients(CountingCredential(), "s", RetrySettings())._kwargs
    monkeypatch.setenv("KAGG_AZURE_ARM_URL", "http://127.0.0.1:1")
    assert len(Clients(CountingCredential(), "s", RetrySettings())._kwargs["per_call_policies"]) == 1
    for url, ok in [("http://127.0.0.1:5", True), ("http://[::1]:5", True), ("http://localhost:5", True),
                    ("https://127.0.0.1:5", False), ("http://10.0.0.1", False), ("http://127.0.0.1.nip.io", False)]:
        assert endpoints.insecure_ok(url) is ok, url
    monkeypatch.setenv("KAGG_AZURE_SCM_URL", "http://{app}.scm.example.com")
    with pytest.raises(BadInput, match="plain http to a remote host"):
        endpoints.scm_url("app")
    monkeypatch.setenv("KAGG_AZURE_SITE_URL", "https://{app}.azurewebsites.us")
    assert endpoints.site_url("my-app") == "https://my-app.azurewebsites.us/"


def test_the_static_token_switch_never_shows_its_token(monkeypatch):
    monkeypatch.setenv("KAGG_AZURE_TEST_TOKEN", "sekrit")
    cred = credentials.default_credential()
    assert cred.get_token("x").token == "sekrit" and "sekrit" not in repr(cred)


def test_a_notebook_with_its_own_azure_functions_pin_keeps_it(tmp_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "greet.ipynb").write_text(notebook_json(HELLO))
    (folder / "requirements.txt").write_text("azure-functions==1.26.0\n")
    provider = AzureProvider(state_dir=tmp_path / ".kagg", credential=CountingCredential())
    art = provider.build(convert_checked(str(folder / "greet.ipynb")), DeployOptions())
    import zipfile

    with zipfile.ZipFile(art.path) as z:
        assert z.read("requirements.txt").decode().split() == ["azure-functions==1.26.0"]
    assert Path(art.path).parent.name == "azure"

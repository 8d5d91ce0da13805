"""The Kaggle stand-in speaks Kaggle's protocol: driven by the real kaggle package (KaggleApi) and
kagglesdk's KaggleClient, over a real socket, with each pushed kernel run for real by papermill.

Kernels that must be seen RUNNING wait for a gate file the test creates (never a sleep)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from conftest import wait_until
from kaggle_fixtures import kaggle_api, kaggle_cli
from kaggle_standin import COMPLETE, ERROR, RUNNING, KaggleStandIn
from notebooks import notebook

GATE = ("import os, time\nroot = os.environ['KAGG_KAGGLE_ROOT']\n"
        "while not os.path.exists(os.path.join(root, 'go')):\n    time.sleep(0.02)")


def kernel_folder(tmp: Path, owner: str, slug: str, *cells: str, **meta) -> Path:
    """A folder as ``kaggle kernels push`` reads it: the notebook and kernel-metadata.json."""
    folder = tmp / slug
    folder.mkdir(parents=True)
    (folder / "nb.ipynb").write_text(json.dumps(notebook(*cells)))
    data = {"id": f"{owner}/{slug}", "title": slug.replace("-", " "), "code_file": "nb.ipynb",
            "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": False,
            "enable_internet": False, **meta}
    (folder / "kernel-metadata.json").write_text(json.dumps(data))
    return folder


def client(standin: KaggleStandIn):
    from kagglesdk import KaggleClient

    return KaggleClient(username=standin.user, password=standin.key)


def status_request(owner: str, slug: str, label=None):
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelSessionStatusRequest

    request = ApiGetKernelSessionStatusRequest()
    request.user_name, request.kernel_slug = owner, slug
    if label is not None:
        request.version_label = label
    return request


def open_gate(standin: KaggleStandIn, slug: str, version: int | None = None) -> None:
    kernel = standin.kernel(slug)
    v = kernel.latest if version is None else kernel.versions[version - 1]
    v.root.mkdir(parents=True, exist_ok=True)  # a version just pushed may not have started yet
    (v.root / "go").write_text("")


# -- the whole path ---------------------------------------------------------------------------------
def test_push_runs_then_outputs_and_log_download(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    api = kaggle_api()
    folder = kernel_folder(tmp_path, s.user, "first-kernel", GATE,
                           "import os, json\nos.makedirs('outputs', exist_ok=True)\n"
                           "open('outputs/result.txt', 'w').write('forty-two')\n"
                           "print('trained', json.dumps(sorted(k for k in os.environ\n"
                           "                                   if 'KAGGLE_KEY' in k or k.startswith('KAGG_'))))")
    pushed = api.kernels_push(str(folder))
    assert not pushed.error and pushed.version_number == 1
    ref = f"{s.user}/first-kernel/1"
    wait_until(lambda: api.kernels_status(ref).status.name == RUNNING, what="RUNNING")
    assert api.kernels_output(ref, str(tmp_path / "early"))[0] == []  # nothing before the session ends
    open_gate(s, "first-kernel")
    wait_until(lambda: api.kernels_status(ref).status.name == COMPLETE, what="COMPLETE")
    files, _ = api.kernels_output(ref, str(tmp_path / "out"))
    assert (tmp_path / "out" / "outputs" / "result.txt").read_text() == "forty-two"
    log = json.loads((tmp_path / "out" / "first-kernel.log").read_text())
    printed = "".join(e["data"] for e in log if e["stream_name"] == "stdout")
    assert 'trained ["KAGG_KAGGLE_ROOT"]' in printed  # no credential, no other kagg setting inside
    assert all(set(e) == {"stream_name", "time", "data"} for e in log)
    assert "trained" in api.kernels_logs(ref)
    statuses = s.calls_to("GetKernelSessionStatus")
    assert statuses and all(c.body["versionLabel"] == "v1" for c in statuses)
    save = s.calls_to("SaveKernel")[0]
    assert save.headers["Authorization"].startswith("Basic ") and save.body["slug"] == f"{s.user}/first-kernel"


def test_error_run_reports_the_failing_cell_and_kagg_is_not_importable(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    api = kaggle_api()
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "broken-kernel", "print('before')", "import kagg")))
    nameless = kernel_folder(tmp_path, s.user, "nameless-kernel", "1")
    text = json.loads((nameless / "nb.ipynb").read_text())
    del text["metadata"]["kernelspec"]
    (nameless / "nb.ipynb").write_text(json.dumps(text))
    api.kernels_push(str(nameless))
    assert "No kernel name found in notebook" in s.wait("nameless-kernel").failure_message  # as on Kaggle
    v = s.wait("broken-kernel")
    status = api.kernels_status(f"{s.user}/broken-kernel/1")
    assert status.status.name == ERROR and v.status == ERROR
    assert status.failure_message.startswith("ImportError: kagg is not installed on Kaggle")
    assert "before" in api.kernels_logs(f"{s.user}/broken-kernel/1")


def test_session_timeout_kills_the_kernel(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    api = kaggle_api()
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "slow-kernel", "import time\ntime.sleep(120)")), timeout="1")
    v = s.wait("slow-kernel")
    assert v.status == ERROR and "exceeded the max allowed execution duration of 1 seconds" in v.failure_message
    assert s.running_pids() == []


# -- versions and identity --------------------------------------------------------------------------
def test_second_push_is_a_second_session_and_version_labels_are_vN(kaggle_sdk, tmp_path):
    from requests import HTTPError

    s = kaggle_sdk
    api = kaggle_api()
    folder = kernel_folder(tmp_path, s.user, "twice-kernel", GATE)
    assert api.kernels_push(str(folder)).version_number == 1
    assert api.kernels_push(str(folder)).version_number == 2
    kernel = s.kernel("twice-kernel")
    wait_until(lambda: [v.status for v in kernel.versions] == [RUNNING, RUNNING], what="two sessions running")
    open_gate(s, "twice-kernel", 2)
    s.wait("twice-kernel", 2)
    with client(s) as c:
        kernels = c.kernels.kernels_api_client
        assert kernels.get_kernel_session_status(status_request(s.user, "twice-kernel", "v1")).status.name == RUNNING
        assert kernels.get_kernel_session_status(status_request(s.user, "twice-kernel", "v2")).status.name == COMPLETE
        assert kernels.get_kernel_session_status(status_request(s.user, "twice-kernel")).status.name == COMPLETE
        for label in ("1", "v9"):
            with pytest.raises(HTTPError) as bad:
                kernels.get_kernel_session_status(status_request(s.user, "twice-kernel", label))
            assert bad.value.response.status_code == 404
        with pytest.raises(HTTPError, match="Notebook not found") as missing:
            kernels.get_kernel_session_status(status_request(s.user, "no-such-kernel"))
        assert missing.value.response.status_code == 404
    open_gate(s, "twice-kernel", 1)
    s.wait("twice-kernel", 1)


def test_title_decides_a_new_kernels_slug(kaggle_sdk, tmp_path):
    from requests import HTTPError

    s = kaggle_sdk
    api = kaggle_api()
    folder = kernel_folder(tmp_path, s.user, "id-slug-here", "1", title="A Different Title")
    assert api.kernels_push(str(folder)).ref == f"/code/{s.user}/a-different-title"
    with pytest.raises(HTTPError):
        api.kernels_status(f"{s.user}/id-slug-here")
    s.wait("a-different-title")
    assert api.kernels_push(str(folder), no_run=True).version_number == 2  # a quick save runs nothing
    assert s.kernel("a-different-title").latest.pid is None and s.running_pids() == []


def test_a_queued_session_can_be_deleted_before_it_runs(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    s.queued_s = 60
    api = kaggle_api()
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "queued-kernel", "1")))
    version = s.kernel("queued-kernel").latest
    assert api.kernels_status(f"{s.user}/queued-kernel/1").status.name == "QUEUED"
    api.kernels_delete(f"{s.user}/queued-kernel", no_confirm=True)
    assert version.status == "CANCEL_ACKNOWLEDGED" and version.pid is None


# -- limits and faults ------------------------------------------------------------------------------
def test_gpu_session_cap_is_a_200_refusal_and_quota_counts_gpu_time(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    s.gpu_cap = 1
    api = kaggle_api()
    assert api.kernels_push(str(kernel_folder(tmp_path, s.user, "gpu-one", GATE, enable_gpu=True))).error == ""
    refused = api.kernels_push(str(kernel_folder(tmp_path, s.user, "gpu-two", "1", machine_shape="NvidiaTeslaT4")))
    assert refused.error == "Maximum batch GPU session count of 1 reached" and not refused.version_number
    with pytest.raises(KeyError):
        s.kernel("gpu-two")
    assert api.kernels_push(str(kernel_folder(tmp_path, s.user, "cpu-one", "1"))).error == ""
    open_gate(s, "gpu-one")
    s.wait("gpu-one")
    assert api.kernels_push(str(tmp_path / "gpu-two")).version_number == 1
    s.wait("gpu-two")
    quota = api.quota_view()
    spent = s.kernel("gpu-one").latest.gpu_seconds() + s.kernel("gpu-two").latest.gpu_seconds()
    assert spent > 0 and abs(quota.gpu_quota.time_used.total_seconds() - spent) < 0.01
    assert quota.gpu_quota.total_time_allowed.total_seconds() == 108000 and not s.kernel("cpu-one").latest.gpu


@pytest.mark.parametrize("status,html", [(503, True), (429, False), (500, True)])
def test_injected_errors_reach_the_sdk_as_kaggle_sends_them(kaggle_sdk, status, html):
    from requests import HTTPError

    s = kaggle_sdk
    s.fail("GetKernelSessionStatus", status=status, html=html, retry_after=3)
    with client(s) as c, pytest.raises(HTTPError) as err:
        c.kernels.kernels_api_client.get_kernel_session_status(status_request(s.user, "whatever-kernel"))
    response = err.value.response
    assert response.status_code == status and response.headers["Retry-After"] == "3"
    if html:
        assert response.headers["Content-Type"].startswith("text/html") and "<html" in response.text
        with pytest.raises(ValueError):
            response.json()  # what kaggle-cli users see as "Expecting value: line 1 column 1"
    else:
        assert response.json()["code"] == status
    with client(s) as c, pytest.raises(HTTPError, match="Notebook not found"):  # the fault was used up
        c.kernels.kernels_api_client.get_kernel_session_status(status_request(s.user, "whatever-kernel"))


def test_accepted_push_answered_500_still_runs(kaggle_sdk, tmp_path):
    from requests import HTTPError

    s = kaggle_sdk
    s.fail("SaveKernel", status=500, accept_first=True)
    api = kaggle_api()
    with pytest.raises(HTTPError):
        api.kernels_push(str(kernel_folder(tmp_path, s.user, "unclear-push", "print('ran anyway')")))
    assert s.wait("unclear-push").status == COMPLETE  # a look-up finds it; a blind retry would be version 2
    assert api.kernels_status(f"{s.user}/unclear-push/1").status.name == COMPLETE


def test_dropped_connection_and_a_hung_call(kaggle_sdk):
    s = kaggle_sdk
    s.fail("ListKernels", drop=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        kaggle_api().kernels_list(mine=True)
    assert kaggle_api().kernels_list(mine=True) == []
    s.fail("ListKernels", status=503, delay_s=60)
    with pytest.raises(requests.exceptions.ReadTimeout):  # only a client deadline gets out of it
        requests.post(f"{s.url}/v1/kernels.KernelsApiService/ListKernels", json={}, auth=(s.user, s.key), timeout=0.3)


def test_stuck_session_stays_running_until_deleted(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    s.make_stuck()
    api = kaggle_api()
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "stuck-kernel", "print(1)")))
    session = next(iter(s.sessions.values()))
    wait_until(lambda: not session.thread.is_alive(), what="the session thread to settle")
    assert api.kernels_status(f"{s.user}/stuck-kernel/1").status.name == RUNNING and session.proc is None
    api.kernels_delete(f"{s.user}/stuck-kernel", no_confirm=True)
    assert session.version.finished


# -- outputs ----------------------------------------------------------------------------------------
def test_outputs_are_paged(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    s.page_size = 2
    api = kaggle_api()
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "many-outputs",
                                       "for i in range(5):\n    open(f'f{i}.txt', 'w').write(str(i))")))
    s.wait("many-outputs")
    api.kernels_output(f"{s.user}/many-outputs/1", str(tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").glob("f*.txt")) == [f"f{i}.txt" for i in range(5)]
    pages = s.calls_to("ListKernelSessionOutput")
    assert len(pages) == 3 and "pageToken" in pages[1].body


def test_output_files_support_range_and_if_range(kaggle_standin):
    s = kaggle_standin
    kernel = s.add_kernel(f"{s.user}/seeded-kernel", json.dumps(notebook("1")))
    (kernel.latest.working / "big.bin").write_bytes(bytes(range(256)) * 4096)
    url = f"{s.url}/outputs/{s.user}/seeded-kernel/v1/big.bin"
    full = requests.get(url, timeout=10)
    assert full.status_code == 200 and len(full.content) == 1048576 and full.headers["Accept-Ranges"] == "bytes"
    part = requests.get(url, headers={"Range": "bytes=1000-", "If-Range": full.headers["ETag"]}, timeout=10)
    assert part.status_code == 206 and part.content == full.content[1000:]
    assert part.headers["Content-Range"] == "bytes 1000-1048575/1048576"
    assert requests.get(url, headers={"Range": "bytes=-10"}, timeout=10).content == full.content[-10:]
    assert requests.get(url, headers={"Range": "bytes=5-", "If-Range": '"stale"'}, timeout=10).status_code == 200
    assert requests.get(url, headers={"Range": "bytes=2000000-"}, timeout=10).status_code == 416
    assert requests.get(f"{s.url}/outputs/{s.user}/seeded-kernel/v1/../../x", timeout=10).status_code == 404


# -- stopping, sources, the rest of the API ---------------------------------------------------------
def test_delete_stops_a_running_kernel(kaggle_sdk, tmp_path):
    from requests import HTTPError

    s = kaggle_sdk
    api = kaggle_api()
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "doomed-kernel", GATE)))
    wait_until(lambda: s.kernel("doomed-kernel").latest.status == RUNNING and s.running_pids(), what="running")
    pids = s.running_pids()
    api.kernels_delete(f"{s.user}/doomed-kernel", no_confirm=True)
    wait_until(lambda: not any(os.path.exists(f"/proc/{p}") and "Z" not in _state(p) for p in pids),
               what="the kernel's processes to end")
    with pytest.raises(HTTPError, match="Notebook not found"):
        api.kernels_status(f"{s.user}/doomed-kernel")
    assert api.kernels_push(str(tmp_path / "doomed-kernel")).version_number == 1  # the slug is free again
    open_gate(s, "doomed-kernel")
    assert s.wait("doomed-kernel").status == COMPLETE


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_dataset_and_kernel_sources_are_mounted_read_only_copies(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n1,2\n")
    s.add_dataset("someone/my-data", data)
    s.add_competition("titanic", data)
    api = kaggle_api()
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "make-checkpoint",
                                       "import os\nos.makedirs('checkpoints')\n"
                                       "open('checkpoints/c.pt','w').write('w1')")))
    s.wait("make-checkpoint")
    reader = ("import os\nroot = os.environ['KAGG_KAGGLE_ROOT']\n"
              "print(open(f'{root}/input/my-data/train.csv').read().split()[1])\n"
              "print(open(f'{root}/input/make-checkpoint/checkpoints/c.pt').read())\n"
              "print(sorted(os.listdir(f'{root}/input')))")
    pushed = api.kernels_push(str(kernel_folder(tmp_path, s.user, "use-sources", reader,
                                                dataset_sources=["someone/my-data", "someone/missing-data"],
                                                kernel_sources=[f"{s.user}/make-checkpoint"],
                                                competition_sources=["titanic"])))
    assert pushed.invalid_dataset_sources == ["someone/missing-data"]
    v = s.wait("use-sources")
    assert v.status == COMPLETE and "1,2\nw1\n['make-checkpoint', 'my-data', 'titanic']" in v.log_text()
    assert (v.root / "input" / "my-data").stat().st_mode & 0o222 == 0


def test_pull_list_and_bearer_token(kaggle_sdk, tmp_path, monkeypatch):
    s = kaggle_sdk
    text = json.dumps(notebook("print('shared work')"))
    s.add_kernel("other-person/public-notebook", text, "Public Notebook")
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", s.key)
    api = kaggle_api()
    assert s.calls_to("IntrospectToken")
    folder = api.kernels_pull("other-person/public-notebook", str(tmp_path / "pulled"), metadata=True)
    assert (Path(folder) / "public-notebook.ipynb").read_text() == text
    assert json.loads((Path(folder) / "kernel-metadata.json").read_text())["id"] == "other-person/public-notebook"
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "my-own-kernel", "1")))
    assert [k.ref for k in api.kernels_list(mine=True)] == [f"{s.user}/my-own-kernel"]
    assert [k.ref for k in api.kernels_list(search="public")] == ["other-person/public-notebook"]
    assert s.calls_to("SaveKernel")[-1].headers["Authorization"] == f"Bearer {s.key}"
    s.wait("my-own-kernel")


def test_wrong_credentials_are_401(kaggle_standin):
    assert os.environ["KAGG_KAGGLE_API_URL"] == kaggle_standin.url  # the fixture's env is applied
    r = requests.post(f"{kaggle_standin.url}/v1/kernels.KernelsApiService/ListKernels", json={},
                      auth=(kaggle_standin.user, "wrong"), timeout=10)
    assert r.status_code == 401 and r.json() == {"code": 401, "message": "Unauthenticated"}


def test_log_stream_follows_a_running_session(kaggle_sdk, tmp_path):
    s = kaggle_sdk
    api = kaggle_api()
    api.kernels_push(str(kernel_folder(tmp_path, s.user, "chatty-kernel", "print('line one')", GATE,
                                       "print('line two')")))
    ref = f"{s.user}/chatty-kernel/1"
    wait_until(lambda: "line one" in s.kernel("chatty-kernel").latest.log_text(), what="the first line")
    seen = []
    for event in api.kernels_logs_stream(ref):
        seen.append(event["data"])
        if "line one" in event["data"]:
            open_gate(s, "chatty-kernel")
    assert any("line one" in d for d in seen) and any("line two" in d for d in seen)
    assert s.kernel("chatty-kernel").latest.finished
    after = list(api.kernels_logs_stream(ref))  # the stored log once the session is over (JSON, not SSE)
    assert "".join(e["data"] for e in after) == s.kernel("chatty-kernel").latest.log_text()


def test_no_kernel_process_outlives_the_stand_in(tmp_path, monkeypatch):
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint
    from kagglesdk.kernels.types.kernels_api_service import ApiSaveKernelRequest

    with KaggleStandIn(folder=tmp_path / "k") as s:
        monkeypatch.setitem(_env_to_endpoint, KaggleEnv.PROD, s.url)
        request = ApiSaveKernelRequest()
        request.slug, request.new_title = f"{s.user}/left-running", "left running"
        request.text, request.language, request.kernel_type = json.dumps(notebook(GATE)), "python", "notebook"
        with client(s) as c:
            assert c.kernels.kernels_api_client.save_kernel(request).version_number == 1
        pids = wait_until(s.running_pids, what="the session to start")
    assert not any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in pids)


def test_seeded_outputs_redirect_download_and_file_listing(kaggle_sdk):
    from kagglesdk.kernels.types.kernels_api_service import (ApiDownloadKernelOutputRequest,
                                                             ApiGetKernelSessionLogsStreamRequest)

    s = kaggle_sdk
    s.page_size = 2
    s.add_kernel(f"{s.user}/seeded-outputs", json.dumps(notebook("1")),
                 outputs={"a.bin": 1000, "b.txt": b"bee", "sub/c.txt": b"sea"})
    listed = kaggle_api().kernels_list_files(f"{s.user}/seeded-outputs")
    assert [(f.name, f.size) for f in listed.files] == [("a.bin", 1000), ("b.txt", 3)] and listed.next_page_token
    with client(s) as c:
        request = ApiDownloadKernelOutputRequest()
        request.owner_slug, request.kernel_slug, request.file_path = s.user, "seeded-outputs", "sub/c.txt"
        response = c.kernels.kernels_api_client.download_kernel_output(request)
        assert response.status_code == 200 and response.content == b"sea" and response.history[0].status_code == 302
        logs = ApiGetKernelSessionLogsStreamRequest()
        logs.user_name, logs.kernel_slug, logs.version_label = s.user, "seeded-outputs", "v1"
        stored = c.kernels.kernels_api_client.get_kernel_session_logs_stream(logs)
        assert stored.headers["Content-Type"] == "application/json" and stored.json() == []


def test_the_kaggle_command_line_itself(kaggle_standin, tmp_path):
    s = kaggle_standin
    folder = kernel_folder(tmp_path, s.user, "cli-kernel", "open('model.txt', 'w').write('w')\nprint('via cli')")
    pushed = kaggle_cli(s, "kernels", "push", "-p", str(folder))
    assert "Kernel version 1 successfully pushed" in pushed.stdout, pushed.stdout + pushed.stderr
    s.wait("cli-kernel")
    status = kaggle_cli(s, "kernels", "status", f"{s.user}/cli-kernel/1")
    assert "COMPLETE" in status.stdout, status.stdout + status.stderr
    out = kaggle_cli(s, "kernels", "output", f"{s.user}/cli-kernel/1", "-p", str(tmp_path / "out"))
    assert out.returncode == 0 and (tmp_path / "out" / "model.txt").read_text() == "w", out.stdout + out.stderr
    assert "via cli" in kaggle_cli(s, "kernels", "logs", f"{s.user}/cli-kernel/1").stdout

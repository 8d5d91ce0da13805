"""kagg's Kaggle client against the stand-in (real sockets, kagglesdk underneath): deadlines and
retries, the push-once rule, the GPU cap, paged outputs, verified resumable downloads, follow.

Kernels that must be seen RUNNING wait for a gate file the test creates (never a sleep)."""

from __future__ import annotations

import json

import pytest

from kaggle_fixtures import kaggle_env, kaggle_standin  # noqa: F401
from notebooks import notebook

from kagg.errors import BadInput, NotFound, OperationFailed

GATE = ("import os, time\nroot = os.environ['KAGG_KAGGLE_ROOT']\n"
        "while not os.path.exists(os.path.join(root, 'go')):\n    time.sleep(0.02)")
FAST = dict(deadline_s=20.0, attempts=5, first_wait_s=0.01, most_wait_s=0.05, connect_s=5.0, read_s=10.0)


def kaggle(standin):
    from kagg.kaggle.client import CallPolicy, Kaggle
    from kagg.kaggle.credentials import load_credentials

    creds = load_credentials()
    assert creds.username == standin.user
    return Kaggle(creds, CallPolicy(**FAST))


def metadata(owner: str, slug: str, gpu: bool = False) -> dict:
    return {"id": f"{owner}/{slug}", "title": slug, "code_file": f"{slug}.ipynb", "language": "python",
            "kernel_type": "notebook", "is_private": True, "enable_gpu": gpu, "enable_internet": False}


def text(*cells: str) -> str:
    return json.dumps(notebook(*cells))


# -- settings, job ids, credentials --------------------------------------------------------------
def test_api_url_is_the_one_setting(monkeypatch):
    from kagg.kaggle.settings import DEFAULT_API_URL, api_url, poll_times

    monkeypatch.delenv("KAGG_KAGGLE_API_URL")
    assert api_url() == DEFAULT_API_URL == "https://api.kaggle.com"
    monkeypatch.setenv("KAGG_KAGGLE_API_URL", "http://127.0.0.1:5/")
    assert api_url() == "http://127.0.0.1:5"
    monkeypatch.setenv("KAGG_KAGGLE_API_URL", "ftp://x")
    with pytest.raises(BadInput, match="KAGG_KAGGLE_API_URL"):
        api_url()
    monkeypatch.setenv("KAGG_KAGGLE_POLL", "0.1,0.5")
    assert (poll_times().first, poll_times().most) == (0.1, 0.5)
    monkeypatch.setenv("KAGG_KAGGLE_POLL", "fast")
    with pytest.raises(BadInput, match="KAGG_KAGGLE_POLL"):
        poll_times()


def test_job_ids_and_fresh_slugs():
    from kagg.kaggle.jobs import JobId, fresh_slug, looks_like_kernel_ref, parse_job, slugify

    assert parse_job("me/kagg-train-1/v3") == JobId("me", "kagg-train-1", 3)
    assert parse_job("me/kagg-train-1/3").version_label == "v3"
    assert parse_job("https://www.kaggle.com/code/me/some-kernel").kernel == "me/some-kernel"
    assert str(parse_job("me/x-y")) == "me/x-y"
    for bad in ("me", "me/Has Space", "me/slug/vX", "dir/nb.ipynb", "a/b/c/d"):
        with pytest.raises(BadInput):
            parse_job(bad)
    assert not looks_like_kernel_ref("dir/nb.ipynb")
    slugs = {fresh_slug("My Training Notebook (final) with a very long name indeed") for _ in range(20)}
    assert len(slugs) == 20  # a fresh slug every run
    for slug in slugs:
        assert slug.startswith("kagg-my-training-notebook") and len(slug) <= 50 and slugify(slug) == slug


def test_no_credentials_is_one_line_saying_how(monkeypatch):
    from kagg.kaggle.credentials import load_credentials

    with pytest.raises(BadInput, match="no Kaggle credentials found: set KAGGLE_USERNAME and KAGGLE_KEY"):
        load_credentials()


def test_credentials_repr_hides_secrets(kaggle_standin):
    from kagg.kaggle.credentials import load_credentials

    creds = load_credentials()
    assert kaggle_standin.key in creds.secrets() and kaggle_standin.key not in repr(creds)


def test_access_token_is_checked_through_the_same_url(kaggle_standin, monkeypatch):
    from kagg.kaggle.credentials import load_credentials

    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", kaggle_standin.key)
    creds = load_credentials()
    assert creds.username == kaggle_standin.user and creds.token == kaggle_standin.key
    assert kaggle_standin.calls_to("IntrospectToken")


def test_a_token_check_that_never_answers_has_a_deadline(monkeypatch):
    import socket

    import kagg.kaggle.credentials as credentials

    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("KAGG_KAGGLE_API_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("KAGGLE_API_TOKEN", "a-token-to-check")
        monkeypatch.setattr(credentials, "DEADLINE_S", 0.5)
        with pytest.raises(OperationFailed, match="checking the Kaggle credentials took over 0.5 s"):
            credentials.load_credentials()


# -- retries ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", [dict(status=429), dict(status=503, html=True), dict(status=500),
                                   dict(status=200, html=True), dict(drop=True)])
def test_transient_answers_are_retried(kaggle_standin, fault):
    k = kaggle(kaggle_standin)
    kaggle_standin.fail("GetAcceleratorQuotaStatistics", times=2, **fault)
    quota = k.quota()
    assert quota["gpu"]["total_time_allowed"] == kaggle_standin.gpu_quota_s
    assert len(kaggle_standin.calls_to("GetAcceleratorQuotaStatistics")) == 3


def test_a_429_with_retry_after_is_retried_after_that_many_seconds(kaggle_standin):
    import time

    from kagg.kaggle.client import CallPolicy, Kaggle
    from kagg.kaggle.credentials import load_credentials

    k = Kaggle(load_credentials(), CallPolicy(**dict(FAST, most_wait_s=5.0)))
    kaggle_standin.fail("GetAcceleratorQuotaStatistics", status=429, times=1, retry_after=1)
    began = time.monotonic()
    k.quota()
    assert time.monotonic() - began >= 1.0  # the backoff alone would have waited about 0.01 s
    assert len(kaggle_standin.calls_to("GetAcceleratorQuotaStatistics")) == 2


def test_retries_stop_at_the_deadline_with_one_line(kaggle_standin):
    k = kaggle(kaggle_standin)
    kaggle_standin.fail("GetAcceleratorQuotaStatistics", status=503, times=50)
    with pytest.raises(OperationFailed, match=r"quota: Kaggle's API did not answer after 5 tries .*HTTP 503"):
        k.quota()


def test_unknown_kernel_is_not_found(kaggle_standin):
    from kagg.kaggle.jobs import JobId

    k = kaggle(kaggle_standin)
    with pytest.raises(NotFound, match="no such kernel"):
        k.status(JobId(kaggle_standin.user, "nothing-here", 1))
    assert k.current_version(kaggle_standin.user, "nothing-here") is None


# -- pushing exactly once --------------------------------------------------------------------------
def test_accepted_then_500_push_makes_exactly_one_kernel(kaggle_standin):
    from kagg.kaggle.push import push_once

    k = kaggle(kaggle_standin)
    kaggle_standin.fail("SaveKernel", status=500, accept_first=True)
    job = push_once(k, metadata(kaggle_standin.user, "kagg-once-1"), text("print('hi')"))
    assert str(job) == f"{kaggle_standin.user}/kagg-once-1/v1"
    assert len(kaggle_standin.calls_to("SaveKernel")) == 1
    assert len(kaggle_standin.kernel("kagg-once-1").versions) == 1


@pytest.mark.parametrize("fault", [dict(status=502), dict(status=429, html=True), dict(drop=True)])
def test_refused_push_is_sent_again_after_the_look_up(kaggle_standin, fault):
    from kagg.kaggle.push import push_once

    k = kaggle(kaggle_standin)
    kaggle_standin.fail("SaveKernel", **fault)
    job = push_once(k, metadata(kaggle_standin.user, "kagg-twice-1"), text("print('hi')"), sleep=lambda s: None)
    assert job.version == 1
    names = [c.service_method for c in kaggle_standin.calls if c.service_method in ("SaveKernel", "GetKernel")]
    assert names == ["SaveKernel", "GetKernel", "SaveKernel"]  # looked up before pushing again
    assert len(kaggle_standin.kernel("kagg-twice-1").versions) == 1


def test_refusals_in_200_replies_are_one_line_errors(kaggle_standin):
    from kagg.kaggle.client import GpuCapReached
    from kagg.kaggle.push import push_once

    k = kaggle(kaggle_standin)
    meta = dict(metadata(kaggle_standin.user, "kagg-src-1"), dataset_sources=["someone/missing-data"])
    with pytest.raises(BadInput, match="no such source .*someone/missing-data"):
        push_once(k, meta, text("print(1)"))
    kaggle_standin.gpu_cap = 0
    with pytest.raises(GpuCapReached, match="Maximum batch GPU session count of 0 reached"):
        push_once(k, metadata(kaggle_standin.user, "kagg-gpu-1", gpu=True), text("print(1)"))


def test_gpu_cap_waits_in_kaggles_queue(kaggle_standin, tmp_path):
    from kagg.kaggle.push import push_waiting_for_gpu

    k = kaggle(kaggle_standin)
    kaggle_standin.gpu_cap = 1
    first = push_waiting_for_gpu(k, metadata(kaggle_standin.user, "kagg-cap-a", gpu=True), text(GATE))
    waits: list[str] = []

    def on_wait(message: str) -> None:
        waits.append(message)
        if len(waits) == 2:  # the first session ends while the second waits
            (kaggle_standin.kernel(first.slug).latest.root / "go").write_text("")

    second = push_waiting_for_gpu(k, metadata(kaggle_standin.user, "kagg-cap-b", gpu=True), text("print(2)"),
                                  on_wait=on_wait, first_s=0.05, most_s=0.2)
    assert second.version == 1 and len(waits) >= 2
    assert "waiting in kagg's queue" in waits[0]
    refused = [c for c in kaggle_standin.calls_to("SaveKernel") if c.body.get("slug", "").endswith("kagg-cap-b")]
    assert len(kaggle_standin.kernel("kagg-cap-b").versions) == 1 and len(refused) == len(waits) + 1


# -- following -------------------------------------------------------------------------------------
def test_follow_streams_lines_then_ends(kaggle_standin):
    from kagg.kaggle.follow import follow
    from kagg.kaggle.push import push_once
    from kagg.kaggle.settings import PollTimes

    k = kaggle(kaggle_standin)
    job = push_once(k, metadata(kaggle_standin.user, "kagg-follow-1"),
                    text("print('first line')", GATE, "print('after the gate')"))
    seen: list[str] = []
    statuses: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        if line == "first line":
            (kaggle_standin.kernel(job.slug).latest.root / "go").write_text("")

    result = follow(k, job, on_status=statuses.append, on_line=on_line, poll=PollTimes(0.02, 0.1))
    assert result.status == "COMPLETE" and not result.stuck
    assert seen.index("first line") < seen.index("after the gate")
    assert statuses[-1] == "COMPLETE" and "RUNNING" in statuses
    assert len(kaggle_standin.calls_to("logs-stream")) >= 1
    for call in kaggle_standin.calls_to("GetKernelSessionStatus"):
        assert call.body["versionLabel"] == "v1"  # always the pushed version


def test_stuck_kernel_is_reported(kaggle_standin):
    from kagg.kaggle.follow import follow
    from kagg.kaggle.push import push_once
    from kagg.kaggle.settings import PollTimes

    k = kaggle(kaggle_standin)
    kaggle_standin.make_stuck("kagg-stuck-1")
    job = push_once(k, metadata(kaggle_standin.user, "kagg-stuck-1"), text("print(1)"), timeout_s=1)
    result = follow(k, job, session_timeout_s=1, poll=PollTimes(0.05, 0.2))
    assert result.stuck and result.status == "RUNNING" and "looks stuck" in result.failure


# -- outputs ----------------------------------------------------------------------------------------
WRITE_FILES = ("import os, hashlib\nout = os.path.join(os.environ['KAGG_KAGGLE_ROOT'], 'working', 'outputs')\n"
               "os.makedirs(out, exist_ok=True)\n"
               "for i in range(7):\n"
               "    open(os.path.join(out, f'f{i}.bin'), 'wb').write(os.urandom(1000 + i * 50000))\n"
               "open(os.path.join(out, 'page.html'), 'w').write('<!DOCTYPE html><p>a real html output')")


def _finished_job(standin, slug: str, *cells: str):
    from kagg.kaggle.push import push_once

    k = kaggle(standin)
    job = push_once(k, metadata(standin.user, slug), text(*cells))
    standin.wait(slug)
    return k, job


def test_paged_outputs_download_in_parallel_and_verify(kaggle_standin, tmp_path):
    from kagg.kaggle.download import Expected, download_files

    kaggle_standin.page_size = 3
    k, job = _finished_job(kaggle_standin, "kagg-pages-1", WRITE_FILES)
    files, log = k.output_files(job, page_size=3)
    names = sorted(n for n, _ in files)
    assert names == sorted([f"outputs/f{i}.bin" for i in range(7)] + ["outputs/page.html"])
    assert len(kaggle_standin.calls_to("ListKernelSessionOutput")) == 3
    working = kaggle_standin.kernel(job.slug).latest.working
    import hashlib

    expected = {n: Expected((working / n).stat().st_size, hashlib.sha256((working / n).read_bytes()).hexdigest())
                for n in names}
    done = download_files(files, tmp_path / "out", expected, workers=4)
    assert all(d.verified and d.fetched for d in done)
    for n in names:
        assert (tmp_path / "out" / n).read_bytes() == (working / n).read_bytes()
    again = download_files(files, tmp_path / "out", expected)
    assert not any(d.fetched for d in again)  # already there with the manifest's sha256


def test_download_resumes_with_range_and_refuses_html_pages(kaggle_standin, tmp_path):
    from kagg.kaggle.download import Expected, download_files

    k, job = _finished_job(kaggle_standin, "kagg-resume-1", WRITE_FILES)
    files = dict(k.output_files(job)[0])
    working = kaggle_standin.kernel(job.slug).latest.working
    whole = (working / "outputs/f6.bin").read_bytes()
    dest = tmp_path / "out"
    (dest / "outputs").mkdir(parents=True)
    (dest / "outputs" / "f6.bin.part").write_bytes(whole[:100000])
    before = len(kaggle_standin.calls_to("output-file"))
    [done] = download_files([("outputs/f6.bin", files["outputs/f6.bin"])], dest, {"outputs/f6.bin": Expected(len(whole))})
    assert (dest / "outputs/f6.bin").read_bytes() == whole and not (dest / "outputs/f6.bin.part").exists()
    last = kaggle_standin.calls_to("output-file")[before:]
    assert len(last) == 1 and last[0].headers.get("Range") == "bytes=100000-"
    # an HTML error page (Kaggle's front end) instead of a data file: retried, never saved as the file
    kaggle_standin.fail("output-file", status=200, html=True, times=1)
    [done] = download_files([("outputs/f1.bin", files["outputs/f1.bin"])], dest)
    assert done.path.read_bytes() == (working / "outputs/f1.bin").read_bytes()
    kaggle_standin.fail("output-file", status=200, html=True, times=20)
    with pytest.raises(OperationFailed, match="f2.bin failed .*HTML page"):
        download_files([("outputs/f2.bin", files["outputs/f2.bin"])], dest)
    assert not (dest / "outputs/f2.bin").exists()
    # an output that *is* an HTML file is kept
    [page] = download_files([("outputs/page.html", files["outputs/page.html"])], dest)
    assert page.path.read_text().startswith("<!DOCTYPE html>")


def test_output_names_cannot_leave_the_folder(tmp_path):
    from kagg.kaggle.download import download_files

    for name in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(BadInput, match="outside"):
            download_files([(name, "http://127.0.0.1:9/x")], tmp_path / "out")


def test_ctrl_c_while_waiting_for_a_gpu_session_says_nothing_was_pushed(kaggle_standin):
    from kagg.kaggle.push import QueueWaitInterrupted, push_waiting_for_gpu

    k = kaggle(kaggle_standin)
    kaggle_standin.gpu_cap = 0

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(QueueWaitInterrupted):
        push_waiting_for_gpu(k, metadata(kaggle_standin.user, "kagg-cap-ctrl-c", gpu=True), text("print(1)"),
                             sleep=interrupted)
    with pytest.raises(KeyError):
        kaggle_standin.kernel("kagg-cap-ctrl-c")  # refused each time: no kernel exists

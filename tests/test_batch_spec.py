"""Reading batch lists (kagg.batch.spec) and the pieces the runner relies on, in-process.

The CLI behaviour over real processes is in test_batch_cli.py; these pin down
the parsing rules (formats, line numbers, defaults) quickly and exactly.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from batch_provider import write_notebooks
from conftest import wait_until
from kagg.batch.commit import GroupCommitRegistry
from kagg.batch.runner import is_transient, one_line
from kagg.batch.spec import Overrides, detect_format, load
from kagg.batch.state import BatchState
from kagg.batch.values import parse_env
from kagg.errors import BadInput, NotFound, OperationFailed, TransientError
from kagg.model import Endpoint
from kagg.registry import Registry

PROVIDERS = ["aws", "flaky", "local"]


@pytest.fixture
def nbs(tmp_path) -> Path:
    write_notebooks(tmp_path, 4)
    return tmp_path


def messages(spec) -> list[str]:
    return [str(p) for p in spec.problems]


def test_csv_with_bom_crlf_quotes_comments_and_blank_lines(nbs):
    text = ('\ufeffnotebook,name,provider,memory,env,public\r\n'
            '# a comment line, with a comma\r\n'
            '\r\n'
            '"nb00.ipynb",first,aws,512,"A=1;B=x y",yes\r\n'
            '   \r\n'
            'nb01.ipynb,,,,,\r\n')
    path = nbs / "list.csv"
    path.write_bytes(text.encode("utf-8"))
    spec = load(str(path), providers=PROVIDERS)
    assert spec.problems == []
    first, second = spec.items
    assert (first.line, first.name, first.provider, first.memory, first.public) == (4, "first", "aws", 512, True)
    assert first.env == {"A": "1", "B": "x y"}
    assert first.notebook == str(nbs / "nb00.ipynb")  # relative to the list's folder
    assert (second.line, second.name, second.provider, second.memory) == (6, None, "local", None)


def test_quoted_field_spanning_lines_keeps_the_start_line(nbs):
    path = nbs / "list.csv"
    path.write_text('notebook,name,payload\nnb00.ipynb,a,"{""x"":\n 1}"\nnb01.ipynb,b,\n')
    spec = load(str(path), operation="deploy", providers=PROVIDERS)
    assert spec.problems == []
    assert [(i.line, i.payload, i.has_payload) for i in spec.items] == [(2, {"x": 1}, True), (4, None, False)]


def test_row_overrides_command_line_which_overrides_file_defaults(nbs):
    path = nbs / "list.json"
    path.write_text(json.dumps({"defaults": {"provider": "aws", "memory": 256, "region": "eu-west-1",
                                             "env": {"A": "file", "B": "file"}},
                                "items": [{"notebook": "nb00.ipynb", "memory": 1024, "env": "B=row"},
                                          "nb01.ipynb"]}))
    cli = Overrides(provider="flaky", timeout=30, env={"A": "cli"})
    spec = load(str(path), cli=cli, providers=PROVIDERS)
    assert spec.problems == []
    row, plain = spec.items
    assert (row.provider, row.memory, row.timeout, row.region) == ("flaky", 1024, 30, "eu-west-1")
    assert row.env == {"A": "cli", "B": "row"}
    assert (plain.provider, plain.memory, plain.env) == ("flaky", 256, {"A": "cli", "B": "file"})


def test_json_problems_carry_the_line_of_their_item(nbs):
    path = nbs / "list.json"
    path.write_text('[\n  {"notebook": "nb00.ipynb"},\n\n  {"notebook": "nb01.ipynb",\n   "memory": "lots"},\n'
                    '  {"notebook": "nb02.ipynb", "colour": "red"},\n  7\n]\n')
    assert messages(load(str(path), providers=PROVIDERS)) == [
        f"{path}:4: bad memory value 'lots': a whole number of MB",
        f"{path}:6: unknown key 'colour' (known: notebook, name, provider, region, memory, timeout, entry, "
        "public, env, payload)",
        f"{path}:7: item is not an object or a notebook path",
    ]


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('[\n {"notebook": "a.ipynb"},\n {"notebook" "b.ipynb"}\n]')
    [problem] = messages(load(str(path), providers=PROVIDERS))
    assert problem.startswith(f"{path}:3: not valid JSON (Expecting ':' delimiter")


def test_text_list_skips_comments_and_blanks_and_reports_missing_files(nbs):
    path = nbs / "list.txt"
    path.write_text("# notebooks\nnb00.ipynb\n\n   nb01.ipynb   \nmissing.ipynb\nhttps://example.com/x.ipynb\n")
    spec = load(str(path), providers=PROVIDERS)
    assert [i.line for i in spec.items] == [2, 4, 6]
    assert messages(spec) == [f"{path}:5: notebook {nbs / 'missing.ipynb'} not found"]
    assert spec.items[2].is_url and spec.items[2].label == "x"


def test_every_row_problem_is_reported_at_once(nbs):
    path = nbs / "list.csv"
    path.write_text("notebook,name,provider,memroy,memory,timeout,env,public,entry\n"
                    "nb00.ipynb,a,awz,,,,,,\n"
                    "missing.ipynb,b,,,,,,,\n"
                    "nb01.ipynb,a,,,lots,0,FOO,maybe,not-a-name\n"
                    "nb02.ipynb,c,local,,1,2,K=V,no,handler,extra\n")
    got = messages(load(str(path), providers=PROVIDERS))
    assert got == [
        f"{path}:1: unknown column 'memroy' (known: notebook, name, provider, region, memory, timeout, entry, "
        "public, env, payload)",
        f"{path}:2: unknown provider 'awz' (available: aws, flaky, local)",
        f"{path}:3: notebook {nbs / 'missing.ipynb'} not found",
        f"{path}:4: bad memory value 'lots': a whole number of MB",
        f"{path}:4: bad timeout value 0: must be more than 0 s",
        f"{path}:4: bad env value 'FOO': expected K=V (pairs separated by ';')",
        f"{path}:4: bad public value 'maybe': use true or false",
        f"{path}:4: bad entry value 'not-a-name': must be a Python function name",
        f"{path}:4: duplicate name 'a' (also on line 2)",
        f"{path}:5: 10 fields but the header has 9",
    ]


def test_header_without_notebook_column_and_empty_lists(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("name,provider\nx,local\n")
    assert messages(load(str(path), providers=PROVIDERS)) == [f"{path}:1: no 'notebook' column"]
    # delete and invoke work from names alone
    assert load(str(path), operation="delete", providers=PROVIDERS).problems == []
    path.write_text("# nothing yet\n\n")
    assert messages(load(str(path), providers=PROVIDERS)) == [f"{path}:1: no header line (e.g. notebook,name,provider)"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert messages(load(str(empty), providers=PROVIDERS)) == [f"{empty}:1: lists no notebooks"]


def test_format_from_extension_or_option(tmp_path):
    assert detect_format("a.CSV", None) == "csv"
    assert detect_format("a.json", None) == "json"
    assert detect_format("a.txt", None) == "text"
    assert detect_format("list", None) == "text"
    assert detect_format("a.yaml", "csv") == "csv"
    with pytest.raises(BadInput, match="cannot tell the format of a.yaml"):
        detect_format("a.yaml", None)


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe n", "is not UTF-8"),
    (None, "not found"),
])
def test_unreadable_lists(tmp_path, content, message):
    path = tmp_path / "list.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        load(str(path), providers=PROVIDERS)


def test_env_parsing():
    assert parse_env("A=1; B = two ;C=") == {"A": "1", "B": "two", "C": ""}
    assert parse_env({"A": 1, "B": True}) == {"A": "1", "B": "true"}
    for bad in ("A", "=1", "1A=2", "A-B=1"):
        with pytest.raises(ValueError):
            parse_env(bad)


def test_transient_classification():
    class Throttled(Exception):
        response = {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}

    class Denied(Exception):
        response = {"Error": {"Code": "AccessDeniedException"}, "ResponseMetadata": {"HTTPStatusCode": 403}}

    assert is_transient(TransientError("slow down"))
    assert is_transient(ConnectionResetError())
    assert is_transient(Throttled())
    assert not is_transient(Denied())
    assert not is_transient(OperationFailed("the notebook failed to start"))
    assert not is_transient(NotFound("no endpoint"))
    assert not is_transient(ValueError("bug"))
    assert one_line(ValueError("two\n  lines")) == "ValueError: two lines"


def test_group_commit_loses_nothing_and_writes_less(tmp_path):
    registry = GroupCommitRegistry(tmp_path / "endpoints.json")
    registry.put(Endpoint("old", "local", "http://127.0.0.1:1/", created_at="2020-01-01T00:00:00Z"))
    threads = [threading.Thread(target=registry.put, args=(Endpoint(f"ep-{i:02d}", "flaky", f"http://x/{i}"),))
               for i in range(40)]
    # hold the registry's lock, as another kagg writing would: the first put to lead waits for
    # it, and every put queues meanwhile
    with registry.transaction():
        for t in threads:
            t.start()
        wait_until(lambda: registry.queued == 40, what="40 puts queued")
    for t in threads:
        t.join()
    registry.put(Endpoint("old", "local", "http://127.0.0.1:2/"))
    names = set(registry.all())
    assert names == {"old"} | {f"ep-{i:02d}" for i in range(40)}
    assert registry.get("old").created_at == "2020-01-01T00:00:00Z"  # kept, as Registry.put does
    assert registry.commits == 1 + 1 + 1  # the 40 went in one write


def test_group_commit_writes_the_bytes_registry_writes(tmp_path):
    """The group commit's own encoder (entry text reused between writes) makes Registry's file."""
    mine, theirs = GroupCommitRegistry(tmp_path / "g.json"), Registry(tmp_path / "r.json")
    entries = {}
    for step in range(12):  # entries added, changed, removed, and the registry emptied
        for i in range(step % 5 + 1):
            entries[f"ep-{(step * 3 + i) % 7}"] = Endpoint(
                f"ep-{(step * 3 + i) % 7}", "local", f"http://127.0.0.1:{step}/é\"\n", region=None,
                provider_data={"step": step, "ratio": step / 7, "nested": [{"a": [1, None, True]}, {}], "no": []},
                source={"path": "nb ☃.ipynb", "sha256": "0" * 64}).to_dict()
        if step % 4 == 3:
            entries.pop(min(entries), None)
        if step == 8:
            entries.clear()
        for registry in (mine, theirs):
            with registry.transaction() as endpoints:
                endpoints.clear()
                endpoints.update(json.loads(json.dumps(entries)))
        assert (tmp_path / "g.json").read_bytes() == (tmp_path / "r.json").read_bytes(), step


def test_cached_reads_refuse_a_bad_entry_as_registry_does(tmp_path):
    from kagg.errors import RegistryError

    path = tmp_path / "endpoints.json"
    Registry(path).put(Endpoint("good", "local", "http://x/"))
    doc = json.loads(path.read_text())
    doc["endpoints"]["other"] = dict(doc["endpoints"]["good"])  # key and name disagree
    path.write_text(json.dumps(doc))
    with pytest.raises(RegistryError) as theirs:
        Registry(path).find("other")
    mine = GroupCommitRegistry(path)
    assert mine.find("good").url == "http://x/"
    with pytest.raises(RegistryError) as cached:
        mine.find("other")
    assert str(cached.value) == str(theirs.value)


def test_group_commit_reads_what_another_writer_wrote_between_its_own_writes(tmp_path):
    path = tmp_path / "endpoints.json"
    mine, other = GroupCommitRegistry(path), Registry(path)
    mine.put(Endpoint("a", "local", "http://mine/"))
    other.put(Endpoint("b", "local", "http://other/"))  # the file no longer holds what mine wrote
    mine.put(Endpoint("c", "local", "http://mine/"))
    assert sorted(Registry(path).all()) == ["a", "b", "c"]
    assert mine.find("b").url == "http://other/"


def test_checking_in_processes_gives_what_checking_here_gives(tmp_path):
    from kagg.batch.operations import Context, get_operation
    from kagg.batch.checking import check_all, check_processes, processes_for

    write_notebooks(tmp_path, 30)
    (tmp_path / "nb07.ipynb").write_text("{not a notebook")
    lines = [f"nb{i:02d}.ipynb,c-{i}" for i in range(28)] + ["nb28.ipynb,", "nb28.ipynb,", "nb04.ipynb,Bad_Name"]
    (tmp_path / "list.csv").write_text("notebook,name\n" + "\n".join(lines) + "\n")
    spec = load(str(tmp_path / "list.csv"), providers=PROVIDERS)
    deploy = get_operation("deploy")
    assert [processes_for(200, 4, load) for load in (0.0, 0.4, 1.0, 2.6, 4.0, 9.0)] == [4, 4, 3, 1, 1, 1]
    assert processes_for(30, 8, 0.0) == 2 and processes_for(23, 8, 0.0) == 1  # a fork pays for 12 items
    assert check_processes(spec.items[:10], deploy, load=0.0) == 1  # too short to pay for a fork
    assert check_processes(spec.items, get_operation("invoke"), load=0.0) == 1  # not CPU work
    from kagg.batch.checking import load_from
    # a busy minute behind, nothing else running now (this process is the one running task)
    assert load_from("2.20 1.67 1.41 1/80 12125", 2.2) == 0.0
    assert load_from("1.50 1.00 0.80 3/80 12125", 1.5) == 1.5  # two others running: the average stands
    assert load_from("0.10 0.20 0.30 4/80 1", 0.1) == 0.1  # a moment's peak does not outweigh the average
    assert load_from("garbled", 0.7) == 0.7
    outcomes = []
    for processes in (1, 2):
        ctx = Context(GroupCommitRegistry(tmp_path / "endpoints.json"))
        jobs, problems = check_all(spec.items, deploy, ctx, workers=4, processes=processes)
        assert all(job.checked.provider is not None and job.checked.provider.name == "local" for job in jobs)
        assert [job.checked.function.name for job in jobs] == [job.name for job in jobs]
        outcomes.append(([(j.item.line, j.name) for j in jobs], [str(p) for p in problems]))
    assert outcomes[0] == outcomes[1]
    jobs, problems = outcomes[1]
    assert jobs == [(i + 2, f"c-{i}") for i in range(28) if i != 7] + [(30, "nb28"), (31, "nb28")]
    assert [p.split(":")[1] for p in problems] == ["9", "32", "31"]
    assert "duplicate name 'nb28' (also on line 30)" in problems[2]
    assert not (tmp_path / ".kagg").exists() or not any((tmp_path / ".kagg").rglob("*.zip"))  # nothing built


def test_a_checked_deploy_survives_the_trip_from_a_check_worker(tmp_path):
    """What a check worker process sends back (pickled) deploys like what was checked here."""
    import pickle

    from batch_provider import FlakyProvider
    from kagg.batch.operations import Context, get_operation
    from kagg.deploy import deploy_prepared
    from kagg.providers import register

    register("flaky", FlakyProvider)
    write_notebooks(tmp_path, 1)
    (tmp_path / "list.csv").write_text("notebook,name,provider\nnb00.ipynb,trip,flaky\n")
    item, = load(str(tmp_path / "list.csv"), providers=PROVIDERS).items
    deploy = get_operation("deploy")
    ctx = Context(GroupCommitRegistry(tmp_path / "endpoints.json"))
    job = deploy.check(item, ctx)
    sent = pickle.loads(pickle.dumps(deploy.portable(job)))
    assert sent.checked.provider is None  # a provider instance is not sent
    back = deploy.restore(sent, ctx)
    assert isinstance(back.checked.provider, FlakyProvider) and back.checked.function == job.checked.function
    result = deploy_prepared(back.checked, ctx.registry)
    assert result.status == "deployed" and Registry(tmp_path / "endpoints.json").get("trip").provider == "flaky"


def test_group_commit_reports_a_failed_write_to_every_waiter(tmp_path):
    path = tmp_path / "endpoints.json"
    path.write_text("{not json")
    registry = GroupCommitRegistry(path)
    with pytest.raises(BadInput, match="not valid JSON"):
        registry.put(Endpoint("a", "local", "http://x/"))
    assert path.read_text() == "{not json"


def test_state_round_trip_and_damaged_file(tmp_path):
    state = BatchState.for_list(tmp_path, "lists/x.csv", "deploy")
    assert state.path.parent == tmp_path / "batch" and state.path.name.startswith("x-deploy-")
    assert not state.load()
    state.save({"local:a": {"status": "ok"}, "local:b": {"status": "failed"}}, finished=False)
    again = BatchState.for_list(tmp_path, "lists/x.csv", "deploy")
    assert again.load()
    assert again.done("local:a") == {"status": "ok"} and again.done("local:b") is None
    assert BatchState.for_list(tmp_path, "lists/x.csv", "delete").path != state.path
    state.path.write_text("{half")
    assert not again.load()


def test_a_second_run_of_the_same_list_is_refused_while_one_holds_it(tmp_path):
    first = BatchState.for_list(tmp_path, "x.csv", "deploy")
    first.acquire()
    try:
        with pytest.raises(BadInput, match="another `kagg batch` is running"):
            BatchState.for_list(tmp_path, "x.csv", "deploy").acquire()
    finally:
        first.release()
    second = BatchState.for_list(tmp_path, "x.csv", "deploy")
    second.acquire()
    second.release()


def test_cached_reads_see_every_write(tmp_path):
    path = tmp_path / "endpoints.json"
    registry = GroupCommitRegistry(path)
    assert registry.find("a") is None
    registry.put(Endpoint("a", "local", "http://own/"))
    assert registry.find("a").url == "http://own/"
    from kagg.registry import Registry

    Registry(path).put(Endpoint("a", "local", "http://other-process/"))  # another writer, a new file
    assert registry.find("a").url == "http://other-process/"
    registry.find("a").provider_data["pid"] = 1  # a copy: the cache is not changed through it
    assert registry.find("a").provider_data == {}
    path.write_text("{broken")
    with pytest.raises(BadInput, match="not valid JSON"):
        registry.check()


def test_group_commit_parses_the_file_only_when_another_writer_changed_it(tmp_path, monkeypatch):
    """Its own last write is the document of its next transaction (the lock is held, the file is
    unchanged): a batch of 200 would otherwise parse the registry 400 times. The bytes stay
    Registry's, entries kept from earlier writes included."""
    path = tmp_path / "endpoints.json"
    mine = GroupCommitRegistry(path)
    parses = []
    real_read = Registry._read
    monkeypatch.setattr(Registry, "_read", lambda self: parses.append(1) or real_read(self))
    for i in range(30):
        mine.put(Endpoint(f"ep-{i:02d}", "local", f"http://127.0.0.1:{i}/", provider_data={"i": [i, {"j": None}]}))
    assert len(parses) == 1  # the first transaction, before any write of its own
    Registry(path).put(Endpoint("theirs", "local", "http://other/"))
    parses.clear()
    mine.put(Endpoint("ep-05", "local", "http://changed/"))
    assert len(parses) == 1  # another writer came in between: read again
    doc = json.loads(path.read_text())
    assert path.read_text() == json.dumps(doc, indent=2) + "\n"
    assert sorted(doc["endpoints"]) == sorted([f"ep-{i:02d}" for i in range(30)] + ["theirs"])
    assert doc["endpoints"]["ep-05"]["url"] == "http://changed/"


def test_a_batch_collects_garbage_less_and_puts_the_collector_back(tmp_path):
    import gc

    from batch_provider import FlakyProvider
    from kagg.batch import BatchRequest, run_batch
    from kagg.batch.report import Display
    from kagg.batch.session import BATCH_GC_THRESHOLD
    from kagg.providers import register

    register("flaky", FlakyProvider)
    write_notebooks(tmp_path, 3)
    (tmp_path / "list.csv").write_text("notebook,name,provider\n" +
                                       "".join(f"nb{i:02d}.ipynb,gc-{i},flaky\n" for i in range(3)))
    gc.unfreeze()  # as in `kagg batch`: nothing frozen before
    before = gc.get_threshold()
    seen = []

    def display(jobs):
        seen.append(gc.get_threshold())
        return Display()

    def batch() -> None:
        report = run_batch(BatchRequest(str(tmp_path / "list.csv"), force=True),
                           Registry(tmp_path / "endpoints.json"), display_for=display)
        assert report.counts["ok"] == 3

    batch()
    threshold, = seen
    assert threshold[0] == max(before[0], BATCH_GC_THRESHOLD) and threshold[1:] == before[1:]
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0  # nothing left frozen
    # what batches leave is freed by the collector's passes, not kept for good: batches in one
    # process (a service calling run_batch) leak nothing
    for _ in range(3):
        batch()
    gc.collect()
    kept = len(gc.get_objects())
    for _ in range(3):
        batch()
    gc.collect()
    assert len(gc.get_objects()) < kept + 500
    (tmp_path / "bad.csv").write_text("notebook,name,provider\nmissing.ipynb,x,flaky\n")
    with pytest.raises(BadInput):  # also when the list is refused
        run_batch(BatchRequest(str(tmp_path / "bad.csv")), Registry(tmp_path / "endpoints.json"))
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0

"""A provider for batch tests and benchmarks, registered from outside kagg like a third-party one.

``flaky`` and ``slow`` deploy nothing: ``apply`` sleeps, then returns an
endpoint, so a batch can be timed and interrupted without starting servers.
Behaviour comes from the environment, because the provider runs inside the
``kagg`` subprocess a test starts:

- ``KAGG_TEST_DELAY``: seconds ``apply`` takes (default 0 for flaky, 0.2 for slow);
- ``KAGG_TEST_TRANSIENT``: a glob of names whose first ``KAGG_TEST_TRANSIENT_TIMES`` (default 1)
  attempts fail with a :class:`TransientError`;
- ``KAGG_TEST_PERMANENT``: a glob of names that always fail with a plain :class:`OperationFailed`;
- ``KAGG_TEST_LOG``: a file where each ``apply`` appends ``name attempt in-flight total`` when it
  starts (in-flight: how many applies of this provider run at that moment, this one included;
  total: the same over every provider);
- ``KAGG_TEST_RENDEZVOUS``: N; the first applies wait for each other until N of them (over every
  provider) are in flight at once, then all go on; later ones do not wait. A run that never has
  N at once fails those items ("rendezvous not reached") instead of hanging, so a test proves
  concurrency of at least N by construction, with no timing;
- ``KAGG_TEST_GATE``: a file; every ``apply`` waits until it exists (the test opens the gate), so a
  test decides when deploys in flight may finish;
- ``KAGG_TEST_WAIT_LIMIT``: seconds a rendezvous or a gate waits before failing (default 120;
  only reached when a test is already failing).

:func:`install_entry_point` writes the ``.dist-info`` that makes ``importlib.metadata``
find the group ``kagg.providers`` — exactly how an installed package registers one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from kagg.errors import OperationFailed, TransientError
from kagg.model import Artifact, ConvertedFunction, DeployOptions, Endpoint, Plan, PlanStep
from kagg.providers.base import Provider

_attempts: Counter[str] = Counter()
_in_flight: Counter[str] = Counter()
_lock = threading.Lock()
_changed = threading.Condition(_lock)  # notified when the rendezvous is reached
_rendezvous = {"met": False}


def _matches(name: str, variable: str) -> bool:
    patterns = [p for p in os.environ.get(variable, "").split(",") if p]
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


class FlakyProvider(Provider):
    """Fails on request; otherwise deploys instantly (or after ``KAGG_TEST_DELAY``)."""

    name = "flaky"
    default_delay = 0.0

    def build(self, function: ConvertedFunction, options: DeployOptions) -> Artifact:
        """A content hash instead of a zip: the benchmark measures scheduling, not zipping."""
        digest = hashlib.sha256(f"{function.name}\0{function.module_source}\0{function.request_source}".encode())
        sha = digest.hexdigest()
        return Artifact(self.name, self.state_dir / "artifacts" / f"{sha}.zip", sha, 0, 0, function)

    def plan(self, artifact: Artifact, current: Optional[Endpoint], options: DeployOptions) -> Plan:
        unchanged = current is not None and current.artifact_sha256 == artifact.sha256
        return Plan(self.name, artifact.function.name, artifact, current, options,
                    [PlanStep("deploy", f"pretend to deploy {artifact.function.name}")], unchanged)

    def apply(self, plan: Plan) -> Endpoint:
        with _changed:
            _attempts[plan.name] += 1
            _in_flight[self.name] += 1
            attempt, in_flight, total = _attempts[plan.name], _in_flight[self.name], sum(_in_flight.values())
            log = os.environ.get("KAGG_TEST_LOG")
            if log:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{plan.name} {attempt} {in_flight} {total}\n")
        try:
            _meet(total)
            _wait_for_gate()
            time.sleep(float(os.environ.get("KAGG_TEST_DELAY", self.default_delay)))
        finally:
            with _changed:
                _in_flight[self.name] -= 1
        # it made nothing before failing, and says so (else kagg keeps the entry pending)
        if _matches(plan.name, "KAGG_TEST_PERMANENT"):
            exc: OperationFailed = OperationFailed(f"{plan.name}: the test provider refuses this one for good")
            exc.nothing_left = True
            raise exc
        if _matches(plan.name, "KAGG_TEST_TRANSIENT") and attempt <= int(os.environ.get("KAGG_TEST_TRANSIENT_TIMES", "1")):
            exc = TransientError(f"{plan.name}: throttled by the test provider (attempt {attempt})")
            exc.nothing_left = True
            raise exc
        return Endpoint(name=plan.name, provider=self.name, url=f"http://{self.name}.invalid/{plan.name}/",
                        source={"path": plan.artifact.function.source.path,
                                "sha256": plan.artifact.function.source.sha256},
                        artifact_sha256=plan.artifact.sha256, provider_data={"attempt": attempt})

    def delete(self, endpoint: Endpoint, options: Optional[DeployOptions] = None) -> list[str]:
        return []


def _wait_limit() -> float:
    return float(os.environ.get("KAGG_TEST_WAIT_LIMIT", "120"))


def _meet(total: int) -> None:
    """``KAGG_TEST_RENDEZVOUS``: wait until that many applies are in flight at once (once per process)."""
    wanted = int(os.environ.get("KAGG_TEST_RENDEZVOUS", "0"))
    with _changed:
        if wanted <= 0 or _rendezvous["met"]:
            return
        if total >= wanted:
            _rendezvous["met"] = True
            _changed.notify_all()
            return
        if not _changed.wait_for(lambda: _rendezvous["met"], timeout=_wait_limit()):
            raise OperationFailed(f"rendezvous not reached: never {wanted} applies in flight at once")


def _wait_for_gate() -> None:
    """``KAGG_TEST_GATE``: the deploy "takes" until the test creates that file."""
    gate = os.environ.get("KAGG_TEST_GATE")
    if not gate:
        return
    deadline = time.monotonic() + _wait_limit()
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise OperationFailed(f"the test never opened the gate {gate}")
        time.sleep(0.01)  # the pretend deploy's work: this process has no other way to hear of the file


class SlowProvider(FlakyProvider):
    """The benchmark's provider: every deploy takes 0.2 s unless ``KAGG_TEST_DELAY`` says otherwise."""

    name = "slow"
    default_delay = 0.2


ENTRY_POINTS = """[kagg.providers]
flaky = batch_provider:FlakyProvider
slow = batch_provider:SlowProvider
"""


def install_entry_point(site: Path) -> Path:
    """Write ``kagg_batch_test_provider-1.0.dist-info`` into ``site`` (a folder to put on PYTHONPATH)."""
    info = site / "kagg_batch_test_provider-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kagg-batch-test-provider\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


# -- helpers shared by the batch tests ------------------------------------------------------------------
def handler_notebook(code: str) -> str:
    """A one-cell handler-mode notebook (nbformat 4.5, Python kernel) holding ``code``."""
    import json

    return json.dumps({"nbformat": 4, "nbformat_minor": 5,
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"},
                                    "language_info": {"name": "python"}},
                       "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None,
                                  "outputs": [], "source": code}]}, indent=1)


def write_notebooks(folder: Path, count: int, prefix: str = "nb") -> list[Path]:
    """``count`` distinct handler notebooks (each answers ``{"x": x, "i": its number}``)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{prefix}{i:02d}.ipynb"
        path.write_text(handler_notebook(f"def handler(x: int = 1):\n    return {{'x': x, 'i': {i}}}\n"))
        paths.append(path)
    return paths


def provider_env(tmp: Path, registry: Path, **extra: str) -> dict[str, str]:
    """Environment for a ``kagg`` subprocess that finds ``flaky``/``slow`` through their entry point."""
    site = install_entry_point(tmp / "site")
    tests = Path(__file__).resolve().parent
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(tests), str(tests.parent)]),
           "KAGG_REGISTRY": str(registry)}
    env.update(extra)
    return env

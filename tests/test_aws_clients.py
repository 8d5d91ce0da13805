"""One boto3 session per process and environment, one client per (service, region), for every
provider instance and every retry (kagg/providers/aws/clients.py).

boto3's own Session class is wrapped by a counting subclass; kagg is not mocked.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import boto3.session
import pytest

import kagg
from aws_fixtures import FAST, HELLO, aws, fname, hello_function, moto_stack  # noqa: F401
from kagg.model import DeployOptions
from kagg.providers.aws import AWSProvider

KAGG_DIR = str(Path(kagg.__file__).resolve().parent)


def made_by_kagg() -> bool:
    """True when kagg's code is on the calling stack."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(KAGG_DIR):
            return True
        frame = frame.f_back
    return False


class Counted:
    sessions = 0
    clients: list[tuple[str, str]] = []
    lock = threading.Lock()


@pytest.fixture
def counting(monkeypatch):
    Counted.sessions, Counted.clients = 0, []

    class CountingSession(boto3.session.Session):
        """Counts the sessions and clients kagg makes (moto, in this process too, makes its own)."""

        def __init__(self, *args, **kwargs):
            self.by_kagg = made_by_kagg()
            if self.by_kagg:
                with Counted.lock:
                    Counted.sessions += 1
            super().__init__(*args, **kwargs)

        def client(self, service_name, region_name=None, *args, **kwargs):
            if self.by_kagg:
                with Counted.lock:
                    Counted.clients.append((service_name, region_name))
            return super().client(service_name, region_name, *args, **kwargs)

    monkeypatch.setattr(boto3.session, "Session", CountingSession)
    monkeypatch.setattr(boto3, "Session", CountingSession)  # the same class, by its other name
    return Counted


def options(**kwargs) -> DeployOptions:
    return DeployOptions(extra={**FAST, **kwargs.pop("extra", {})}, **kwargs)


def deploy(function, opts, current=None, state_dir=None):
    provider = AWSProvider(state_dir=state_dir)  # a provider per deploy, as kagg.deploy makes them
    return provider.apply(provider.plan(provider.build(function, opts), current, opts))


def test_a_batch_shares_one_session_and_its_clients(aws, counting, tmp_path, fname):
    aws.proxy.faults.mutating_failures = 4  # retries must not make sessions either
    names = [f"{fname}-{i}" for i in range(5)]
    with ThreadPoolExecutor(3) as pool:
        endpoints = list(pool.map(lambda n: deploy(hello_function(n), options(), state_dir=tmp_path / ".kagg"),
                                  names))
    changed = hello_function(names[0], source=HELLO.replace("hello ", "hi "))
    deploy(changed, options(), current=endpoints[0], state_dir=tmp_path / ".kagg")
    for ep in endpoints:
        AWSProvider(state_dir=tmp_path / ".kagg").delete(ep, options())
    assert counting.sessions == 1
    assert sorted(counting.clients) == [("iam", "us-east-1"), ("lambda", "us-east-1")]
    assert len([s for s in aws.proxy.log if s.injected]) == 4


def test_another_environment_gets_its_own_session(aws, counting, tmp_path, monkeypatch, fname):
    provider = AWSProvider(state_dir=tmp_path)
    provider.validate_options(options())
    provider.validate_options(options())
    assert counting.sessions == 1
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_PROFILE", "other")
    (tmp_path / "config").write_text("[profile other]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    assert provider.shared().region_name == "eu-west-1"
    assert counting.sessions == 2

"""Fixtures for the gcp tests: the Google stand-in, and service-account keys made in the test.

The key is a real RSA key (cryptography) in Google's key-file format whose
``token_uri`` is the stand-in's ``/token``: google-auth signs its JWT
assertion offline and exchanges it there, the code path a user with a key
file runs. ``GOOGLE_APPLICATION_CREDENTIALS`` names it; ``google.auth.default()``
never runs in a test.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gcp_standin import PROJECT, GoogleStandIn

#: retry and polling settings that keep tests fast; the policy is the same, only the waits shrink
FAST_RETRY = "attempts=4 base=0.01 cap=0.05 max_seconds=20 poll=0.01 call_timeout=20"


def service_account_key(path: Path, token_uri: str, project: str = PROJECT,
                        email: str = f"deployer@{PROJECT}.iam.gserviceaccount.com") -> Path:
    """Write a service account key file (a fresh RSA key) whose token requests go to ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": project, "private_key_id": hashlib.sha1(pem.encode()).hexdigest(),
            "private_key": pem, "client_email": email, "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x", "universe_domain": "googleapis.com"}
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return path


def user_adc(path: Path) -> Path:
    """An ``authorized_user`` file like `gcloud auth application-default login` writes."""
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "x.apps.googleusercontent.com",
                                "client_secret": "not-a-secret", "refresh_token": "1//refresh",
                                "quota_project_id": PROJECT}))
    return path


@pytest.fixture(scope="session")
def google_standin():
    server = GoogleStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sa_key(google_standin, tmp_path_factory) -> Path:
    path = service_account_key(tmp_path_factory.mktemp("gcp-key") / "key.json", f"{google_standin.url}/token")
    google_standin.trust(str(path))
    return path


@pytest.fixture
def gcp(google_standin, sa_key, monkeypatch):
    """The stand-in, cleared, with KAGG_GCP_API_URL and the key file pointing kagg at it."""
    google_standin.clear()
    monkeypatch.setenv("KAGG_GCP_API_URL", google_standin.url)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa_key))
    monkeypatch.setenv("KAGG_GCP_RETRY", FAST_RETRY)
    yield google_standin
    google_standin.clear()


@pytest.fixture
def fid(request) -> str:
    """A function id unique to this test (the stand-in is shared by the run)."""
    return "t-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]

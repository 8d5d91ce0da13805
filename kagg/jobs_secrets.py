"""The Kaggle credentials a function with ``/jobs`` is deployed with (docs/jobs.md, "Credentials").

One generic hook for every provider: the deploy adds *secret environment entries* to
``DeployOptions.env`` and names them in ``DeployOptions.extra["secret_env"]``. Each provider
passes ``env`` through its own mechanism (local: a 0600 file beside the registry, never the
registry itself; AWS: the Lambda function's environment variables), and records only the
names; a provider with a secret store (Google Secret Manager, Azure Key Vault references) may
put the entries named in ``secret_env`` there instead. The values come from the deployer's own
Kaggle chain (kaggle's: access token, kaggle.json, KAGGLE_USERNAME/KAGGLE_KEY) and never reach
the artifact, the registry, a log line or the deploy's output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Optional

from kagg.model import DeployOptions

SECRET_ENV_KEY = "secret_env"
API_URL_VAR = "KAGG_KAGGLE_API_URL"


@dataclass
class JobSecrets:
    """The entries to add (values secret), the Kaggle user, or why there are none."""

    env: dict[str, str] = field(default_factory=dict, repr=False)
    username: Optional[str] = None
    problem: Optional[str] = None


def deployer_secrets() -> JobSecrets:
    """The deployer's Kaggle credentials as environment entries for the function."""
    from kagg.errors import BadInput
    from kagg.kaggle.credentials import load_credentials

    try:
        creds = load_credentials()
    except BadInput as exc:
        return JobSecrets(problem=str(exc))
    env = {"KAGGLE_USERNAME": creds.username}
    if creds.token:
        env["KAGGLE_API_TOKEN"] = creds.token
    else:
        env["KAGGLE_KEY"] = creds.key or ""
    if os.environ.get(API_URL_VAR):  # a proxy (or a test's stand-in): the function uses the same API
        env[API_URL_VAR] = os.environ[API_URL_VAR].strip()
    return JobSecrets(env=env, username=creds.username)


def with_secrets(options: DeployOptions, secrets: JobSecrets) -> DeployOptions:
    """``options`` with the secret entries added (a value the user gave with --env wins)."""
    if not secrets.env:
        return options
    names = sorted(set(secrets.env) - set(options.env))
    return replace(options, env={**secrets.env, **options.env},
                   extra={**options.extra, SECRET_ENV_KEY: names})


def exposure_lines(public: bool, public_jobs: bool, username: Optional[str]) -> list[str]:
    """What the deploy output says about ``/jobs`` of a public endpoint."""
    if not public:
        return []
    who = f"Kaggle account {username}" if username else "your Kaggle account"
    if public_jobs:
        return [f"  /jobs is public too (--public-jobs): anyone who knows the URL can start GPU training runs "
                f"on {who} (spending its weekly GPU quota), read their logs and outputs, and stop them"]
    return ["  /jobs is closed on this public URL (403): starting jobs would spend the GPU quota of "
            f"{who}; redeploy with --public-jobs to open it to anyone who knows the URL"]

"""The provider interface (docs/architecture.md, "Providers"), after AWS Chalice's planner/executor split.

``build`` is local and deterministic, ``plan`` makes only read-only calls,
``apply`` makes the mutating calls. So ``--dry-run`` is ``plan`` printed, and
a plan can be tested without any cloud.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterator, Optional

from kagg.errors import BadInput
from kagg.model import Artifact, ConvertedFunction, DeployOptions, Endpoint, Plan

#: the tag (label, app setting) that names the registry entry which made a cloud resource
OWNER_TAG = "kagg-owner"


class Provider(ABC):
    """Base class of every provider, built in or registered through ``kagg.providers``."""

    #: the name used with ``--provider NAME`` and stored in the registry
    name: str = ""
    #: the entry shims this provider's artifact needs (see kagg.packaging.builder.SHIMS)
    shims: tuple[str, ...] = ("gcf",)
    #: what a valid endpoint name looks like for this provider, and how to say so
    name_pattern = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
    name_rule = "1-63 characters: lower-case letters, digits and '-', starting with a letter"
    #: the DeployOptions fields this provider reads; the CLI refuses any other option a user sets
    #: (``--memory`` for a provider without ``memory``). Fields kagg.deploy reads for every
    #: provider (name, entry, force, dry_run, allow_secrets, adopt, owner, extra) are never refused.
    #: Default: every field, so a provider that does not say is refused nothing.
    options_used: frozenset[str] = frozenset(DeployOptions.__dataclass_fields__)

    def __init__(self, state_dir: Optional[Path] = None):
        """``state_dir`` is where the provider may keep files (beside the registry)."""
        self.state_dir = Path(state_dir) if state_dir else Path(".kagg")
        #: where a provider says what a long step is doing (kagg.deploy points it at the user)
        self.progress: Callable[[str], None] = lambda message: None

    # -- checks before any work ------------------------------------------------------
    def validate_name(self, name: str) -> None:
        """Raise :class:`BadInput` if this provider cannot accept ``name``."""
        if not self.name_pattern.match(name):
            raise BadInput(f"invalid endpoint name {name!r} for provider {self.name}: {self.name_rule}")

    def validate_options(self, options: DeployOptions) -> None:
        """Raise :class:`BadInput` for options this provider cannot accept. Makes no call."""

    def validate_target(self, name: str, current: Optional[Endpoint], options: DeployOptions) -> None:
        """Raise :class:`BadInput` for a deploy that cannot go where asked (e.g. a port taken).

        Runs before anything is built, with the endpoint already registered under ``name``,
        so bad input is refused before any progress is shown or any work is done.
        """

    def check_owner(self, what: str, remote_owner: Optional[str], current: Optional[Endpoint],
                    options: DeployOptions) -> None:
        """Refuse to change ``what`` (an existing cloud resource) unless this registry's entry made it.

        ``remote_owner`` is the :data:`OWNER_TAG` value found on the resource (None: no tag).
        An entry written by a kagg that predates owner tags (``current.owner`` is None) may
        change an untagged resource it names; ``--adopt`` (``options.adopt``) takes anything over.
        Providers call this from ``plan``, so a refusal is bad input and nothing has changed.
        """
        if options.adopt or (remote_owner is not None and remote_owner == options.owner):
            return
        if remote_owner is None and current is not None and current.owner is None:
            return
        if remote_owner is None:
            raise BadInput(f"{what} already exists and was not made by kagg (it has no {OWNER_TAG} tag); "
                           "choose another --name, or pass --adopt to take it over")
        raise BadInput(f"{what} was made by another kagg endpoint (owner {remote_owner}, not this registry's "
                       f"entry {options.owner}): another registry or a stale entry; choose another --name, "
                       "or pass --adopt to take it over")

    def check_function(self, function: ConvertedFunction, options: DeployOptions) -> None:
        """Raise :class:`BadInput` if the converted notebook cannot run where this provider
        would run it (e.g. a requirement the local environment lacks). Makes no change."""

    # -- the four steps ------------------------------------------------------------------
    def build(self, function: ConvertedFunction, options: DeployOptions) -> Artifact:
        """Build the deterministic zip for this provider. Local work only."""
        from kagg.packaging.builder import build_artifact

        return build_artifact(function, provider=self.name, shims=self.shims,
                              out_dir=self.state_dir / "artifacts")

    @abstractmethod
    def plan(self, artifact: Artifact, current: Optional[Endpoint], options: DeployOptions) -> Plan:
        """Decide what would change. Read-only calls only."""

    def pending_data(self, plan: Plan) -> dict:
        """What the ``pending`` entry written before :meth:`apply` must add to the previous entry's
        ``provider_data`` so that :meth:`delete` finds whatever ``apply`` may create if the run is
        killed midway (a cloud function's name, an uploaded object). JSON values only."""
        return {}

    @abstractmethod
    def apply(self, plan: Plan) -> Endpoint:
        """Carry out the plan and return the endpoint to record.

        On failure raise :class:`kagg.errors.DeployFailed` to say what now serves (or that
        nothing was left); any other error leaves the entry ``pending`` for delete or a redeploy.
        """

    @abstractmethod
    def delete(self, endpoint: Endpoint, options: Optional[DeployOptions] = None) -> list[str]:
        """Remove the deployed resources. Returns warnings (e.g. "already gone").

        ``options.extra`` carries provider-specific switches such as ``purge_role``.
        """

    def health(self, endpoint: Endpoint) -> Optional[str]:
        """A word or two on whether the endpoint serves (``up``, ``down``, ``up, restarted 2x``)
        for ``kagg endpoints list``; None when the provider cannot tell without a slow call."""
        return None

    # -- calling ---------------------------------------------------------------------------
    def sign(self, endpoint: Endpoint, method: str, url: str, headers: dict[str, str],
             body: bytes) -> dict[str, str]:
        """Return the headers to send, with authentication added. Default: unchanged."""
        return dict(headers)

    def logs(self, endpoint: Endpoint, follow: bool = False) -> Iterator[str]:
        """Yield the function's log lines."""
        raise BadInput(f"provider {self.name} cannot show logs; use the cloud's console")

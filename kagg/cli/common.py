"""What every command shares: the registry chosen by ``--registry``, provider flags, ``--env`` pairs.

Commands only parse, call the library and print; these helpers are the parsing they share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import click

from kagg.errors import BadInput

if TYPE_CHECKING:
    from kagg.registry import Registry

#: ``--local --aws --gcp --azure`` are shorthands for ``--provider NAME``
PROVIDER_FLAGS = ("local", "aws", "gcp", "azure")


def registry_of(ctx: click.Context) -> "Registry":
    """The registry chosen by the top-level ``--registry`` (or ``$KAGG_REGISTRY``, or ./endpoints.json)."""
    from kagg.registry import Registry

    obj = ctx.find_root().obj
    if isinstance(obj, dict) and isinstance(obj.get("registry"), Registry):
        return obj["registry"]
    return Registry()


def registry_args(ctx: click.Context) -> list[str]:
    """``["--registry", PATH]`` when this run's registry was chosen with ``--registry`` (before or
    after the command), so that a command line printed for the user reaches the same registry."""
    obj = ctx.find_root().obj
    chosen = obj.get("registry_option") if isinstance(obj, dict) else None
    return ["--registry", str(chosen)] if chosen is not None else []


def parse_seconds(text: str, option: str, whole: bool = False) -> float:
    """A duration option (``10``, ``10s``, ``2m``) in seconds, read as every kagg option reads
    durations (:func:`kagg.monitor.units.parse_duration`); ``whole``: a whole number of seconds."""
    from kagg.monitor.units import parse_duration

    seconds = parse_duration(text, option)
    if whole and seconds != int(seconds):
        raise BadInput(f"invalid {option} {text!r}: give whole seconds, such as 30s or 2m")
    return seconds


def parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--env K=V`` options (one pair each: a value may hold ``=`` or ``;``) as a dict."""
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--env {pair!r} is not of the form KEY=VALUE")
        env[key] = value
    return env


def provider_options(help: str = "Provider to use (default: local).") -> Callable:
    """Decorator: ``--provider NAME`` and its shorthands, read back with :func:`chosen_provider`."""
    def decorate(func: Callable) -> Callable:
        for name in reversed(PROVIDER_FLAGS):
            func = click.option(f"--{name}", f"flag_{name}", is_flag=True, help=f"Shorthand for --provider {name}.")(func)
        return click.option("--provider", "-p", metavar="NAME", help=help)(func)
    return decorate


def chosen_provider(kwargs: dict[str, Any], default: Optional[str] = "local") -> Optional[str]:
    """Pop ``provider`` and the shorthand flags from a command's kwargs; the one provider chosen.

    Two different choices are bad input; none gives ``default``.
    """
    chosen = [name for name in PROVIDER_FLAGS if kwargs.pop(f"flag_{name}", False)]
    provider = kwargs.pop("provider", None)
    if provider:
        chosen.append(provider)
    if len(set(chosen)) > 1:
        raise BadInput(f"choose one provider, not {' and '.join(sorted(set(chosen)))}")
    return chosen[0] if chosen else default

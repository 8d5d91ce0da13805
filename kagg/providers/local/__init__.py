"""The local provider: endpoints served on this machine, no cloud account needed."""

from kagg.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]

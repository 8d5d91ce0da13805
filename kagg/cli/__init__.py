"""The ``kagg`` command line: one module per command group, :mod:`kagg.cli.common` for what they share.

Commands only parse arguments, call the library and print; see docs/architecture.md.
"""

from kagg.cli.main import cli, main

__all__ = ["cli", "main"]

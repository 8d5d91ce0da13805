"""kagg: turn a Jupyter notebook into an HTTP function and deploy it anywhere.

The package is usable from Python as well as from the ``kagg`` command; the
CLI in :mod:`kagg.cli` only parses arguments, calls these modules and prints.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

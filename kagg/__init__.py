"""kagg: turn a Jupyter notebook into an HTTP function and deploy it anywhere.

The package is usable from Python as well as from the ``kagg`` command; the
CLI in :mod:`kagg.cli` only parses arguments, calls these modules and prints.

Public API (stable): :func:`kagg.deploy.deploy` and :func:`kagg.deploy.delete`,
:func:`kagg.convert_source`, :func:`kagg.invoke.call`, :class:`kagg.registry.Registry`
and the provider base class :class:`kagg.providers.base.Provider`. Everything else
is internal and may change; docs/architecture.md describes the layout.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "convert_source"]


def __getattr__(name: str):
    """``kagg.convert_source`` without importing the notebook stage at ``import kagg``."""
    if name == "convert_source":
        from kagg.notebook.convert import convert_source

        return convert_source
    raise AttributeError(f"module 'kagg' has no attribute {name!r}")

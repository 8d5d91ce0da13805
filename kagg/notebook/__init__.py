"""Everything that reads a notebook: the first stage of kagg's flow (see docs/architecture.md).

    loading       a path or URL -> a validated nbformat v4 notebook (LoadedNotebook)
    schema        is it valid v4? a cheap check first, nbformat's validator only when it cannot tell
    cells         a cell's source and tags, as Jupyter and papermill store them
    magics        notebook-only syntax (%pip, !shell, %%time ...) -> plain Python
    parameters    the ``parameters`` cell and a handler's signature -> Parameter list
    requirements  requirements.txt, or pip lines plus the installed distributions of the imports
    convert       the cells -> a ConvertedFunction (handler or script mode)
    secrets       the gate: hard-coded credentials stop a deploy (rules in secret_rules)
    preprocess    cleaned copies of a notebook (outputs, metadata)

The Kaggle kernel builder reuses these instead of parsing notebooks again. Public API:
:func:`kagg.notebook.convert.convert_source` (also ``kagg.convert_source``).
"""

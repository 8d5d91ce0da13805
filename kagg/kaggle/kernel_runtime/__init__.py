"""Code that runs inside a kagg-built kernel, stdlib only: ``kagg_kernel`` is embedded as source in
the kernel's first cell; ``kagg_driver`` runs a kernel's cells locally without a Jupyter kernel."""

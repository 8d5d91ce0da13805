"""Kaggle: training notebooks run as Kaggle kernels (ARCHITECTURE.md §9, docs/kaggle-kernel.md).

    kernel        a notebook + a KernelRequest -> the KernelBundle that is pushed (build_kernel)
    manifest      the kernel's kagg-result.json and log markers, read back (read_result, markers_in)
    local_run     the same kernel run on this machine under a /kaggle-like root (run_locally)
    accelerators  the accelerator names Kaggle knows, and the retired ones it replaces
    checkpoints   compatibility keys and the resume decision, as the user sees them
    kernel_cells, kernel_params, kernel_notebook, code_archive   the builder's parts
    kernel_runtime/   what runs inside the kernel (stdlib only) and the local cell driver

Nothing here imports kaggle or kagglesdk (``import kaggle`` authenticates at import time): only
the client modules that talk to Kaggle do, on their own code paths.
"""

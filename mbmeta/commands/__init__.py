"""The ``mbmeta`` subcommands, one module each (dispatched by :mod:`mbmeta.cli`)."""

import os


def configure_threads() -> int:
    """Set torch's intra-op threads from ``MBMETA_THREADS`` (default 1) and return the number.

    The planner's model calls are many small batched ops interleaved with environment steps: on a few cores, extra
    torch threads mostly spin against the simulator and other processes (measured 20-40x slower per planning step
    with 2 threads on a busy 2-core machine). Raise it for large models or GPU-free fitting on many cores.
    """
    import torch

    threads = int(os.environ.get("MBMETA_THREADS", "1"))
    torch.set_num_threads(threads)
    return threads

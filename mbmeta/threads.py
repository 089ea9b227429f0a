"""How many CPU threads torch uses: one sane default for every command and for an agent in a user's own loop.

Planning is many small batched tensor operations interleaved with simulation steps. On a few cores, torch's default
(one thread per core) makes its threads spin against the simulator and against other processes: measured on a busy
2-core machine, ``MPCAgent.act`` took 600-676 ms per step with torch's default 2 threads and 35 ms with one, and a
``mbmeta fit`` took 660 s instead of 57 s. Every ``mbmeta`` command therefore calls :func:`configure_threads`, and so
should a script that plans with :class:`~mbmeta.control.MPCAgent` on CPU. This module imports nothing heavy (torch
only inside the functions), so ``import mbmeta`` stays fast.
"""

from __future__ import annotations

import os

THREADS_VARIABLE = "MBMETA_THREADS"
"""Environment variable with the number of torch threads :func:`configure_threads` sets (default 1)."""


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (default: ``MBMETA_THREADS``, else 1) and return the number set.

    Raise it (``MBMETA_THREADS=8``) for large models on many otherwise idle cores; keep one thread per process for
    planning and for several jobs side by side.

    Args:
        threads: the number of threads; None reads ``MBMETA_THREADS`` (1 when unset).

    Raises:
        ValueError: the number (or ``MBMETA_THREADS``) is not an integer >= 1; the message names where it came from.
    """
    import torch

    source = "configure_threads(threads=...)"
    if threads is None:
        source = THREADS_VARIABLE
        text = os.environ.get(THREADS_VARIABLE, "1").strip()
        try:
            threads = int(text)
        except ValueError:
            raise ValueError(f"{THREADS_VARIABLE} must be an integer >= 1, got {text!r}") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"{source} must be an integer >= 1, got {threads!r}")
    torch.set_num_threads(threads)
    return threads


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def free_cores() -> int:
    """Cores not kept busy by other work: the available cores minus the 1-minute load average, at least 1.

    The load average counts runnable processes machine-wide (this one included when it is busy), so this is an
    estimate, good enough to tell a busy 2-core machine from an idle 16-core one.
    """
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on Windows: assume an idle machine
        load = 0.0
    return max(1, min(cores, cores - round(load)))


def too_many_threads_message() -> str | None:
    """A warning text when torch uses more intra-op threads than there are free cores, else None."""
    import torch

    threads, free = torch.get_num_threads(), free_cores()
    if threads <= free:
        return None
    return (
        f"torch uses {threads} threads but only {free} of {available_cores()} CPU cores are free: planning on CPU "
        "is many small operations that run many times slower when threads outnumber free cores (measured 600 ms "
        "instead of 35 ms per step on a busy 2-core machine). Call mbmeta.configure_threads() (one thread; "
        f"{THREADS_VARIABLE}=N for N) or torch.set_num_threads(1) before planning."
    )

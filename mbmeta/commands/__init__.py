"""The ``mbmeta`` subcommands, one module each (dispatched by :mod:`mbmeta.cli`)."""

import functools
import os
import sys
from collections.abc import Callable

TRACEBACK_VARIABLE = "MBMETA_TRACEBACK"
"""Set it (``MBMETA_TRACEBACK=1``) to see the traceback of an error a command would report in one line."""


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures a user can act on: bad settings or files, OS errors (missing, permission, disk full), divergence."""
    from mbmeta.runs.run_dir import RunInUseError
    from mbmeta.training.callbacks import DivergenceError

    return (ValueError, KeyError, OSError, DivergenceError, RunInUseError)


def one_line_errors(command: str) -> Callable[[Callable[[list[str]], int]], Callable[[list[str]], int]]:
    """Make a command's ``run(argv)`` report expected failures as one line on stderr and exit code 1.

    Ctrl-C prints ``interrupted`` and returns 130. Anything else (a bug) keeps its traceback, as does every error when
    ``MBMETA_TRACEBACK`` is set.
    """

    def wrap(run: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
        @functools.wraps(run)
        def guarded(argv: list[str]) -> int:
            if os.environ.get(TRACEBACK_VARIABLE):
                return run(argv)
            try:
                return run(argv)
            except KeyboardInterrupt:
                print(f"mbmeta {command}: interrupted", file=sys.stderr, flush=True)
                return 130
            except _expected_errors() as err:
                message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
                message = " ".join(str(message).split()) or type(err).__name__  # one line
                print(f"mbmeta {command}: error: {message}", file=sys.stderr, flush=True)
                return 1

        return guarded

    return wrap


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

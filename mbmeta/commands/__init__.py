"""The ``mbmeta`` subcommands, one module each (dispatched by :mod:`mbmeta.cli`)."""

import functools
import os
import sys
from collections.abc import Callable

from mbmeta.threads import configure_threads as configure_threads  # every command calls it; kept importable here

TRACEBACK_VARIABLE = "MBMETA_TRACEBACK"
"""Set it (``MBMETA_TRACEBACK=1``) to see the traceback of an error a command would report in one line."""


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures a user can act on: bad settings or files, OS errors, divergence, a missing optional extra.

    OS errors: a missing file, no permission, a full disk; an extra: ``pip install -e '.[baselines]'``.
    """
    from mbmeta.baselines.extra import MissingExtraError
    from mbmeta.runs.run_dir import RunInUseError
    from mbmeta.training.callbacks import DivergenceError

    return (ValueError, KeyError, OSError, DivergenceError, RunInUseError, MissingExtraError)


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

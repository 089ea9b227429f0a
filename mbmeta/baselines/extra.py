"""The lazy import of stable-baselines3 and the one-line error when the ``baselines`` extra is not installed."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install -e '.[baselines]'"


class MissingExtraError(ImportError):
    """An optional dependency of mbmeta is not installed; the message names the command that installs it."""


def import_sb3() -> ModuleType:
    """Import and return ``stable_baselines3``.

    Raises:
        MissingExtraError: stable-baselines3 is not installed (or cannot be imported); one line naming
            ``pip install -e '.[baselines]'``.
    """
    try:
        return importlib.import_module("stable_baselines3")
    except ImportError as err:
        raise MissingExtraError(
            f"the baselines need stable-baselines3, which is not installed ({err}): {INSTALL_HINT}"
        ) from err

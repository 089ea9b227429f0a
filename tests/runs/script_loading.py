"""Load an experiment or benchmark script from its file, as ``python <script>`` runs it (for the tests here)."""

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType


def script_module(path: Path, name: str) -> Iterator[ModuleType]:
    """Yield the script at ``path`` as module ``name`` (registered in ``sys.modules`` while in use)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)

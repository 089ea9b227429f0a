"""Objects named by an import path ``"package.module:name"`` in a config (known physics, terminal values).

A config or checkpoint keeps the path, not the object, so that it stays plain JSON and names code that is already
installed; the module is imported only when the path is used.
"""

from __future__ import annotations

import importlib
from typing import Any


def import_object(path: str, option: str) -> Any:
    """The attribute ``name`` of module ``package.module`` for ``path = "package.module:name"``.

    Raises:
        ValueError: a malformed path, or an import or attribute that fails; the message names ``option``.
    """
    if not isinstance(path, str) or path.count(":") != 1 or not all(path.split(":")):
        raise ValueError(f"{option} must be an import path 'package.module:name', got {path!r}")
    module_name, name = path.split(":")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{option} {path!r} cannot be imported: {err}") from err

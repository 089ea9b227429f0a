"""Imports go one way (DESIGN.md §2): types ← {envs, models, planners} ← data ← control ← training ← commands/cli.

Checked from the source with `ast`, module-level and function-level imports alike, so a violation fails here.
Lightning appears only in the training layer and the commands.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mbmeta"

# layer -> the mbmeta layers it may import (besides itself)
ALLOWED = {
    "types": set(),
    "envs": {"types"},
    "models": {"types"},
    "planners": {"types"},
    "data": {"types", "envs", "models", "planners"},
    "control": {"types", "envs", "models", "planners", "data"},
    "training": {"types", "envs", "models", "planners", "data", "control"},
    "commands": {"types", "envs", "models", "planners", "data", "control", "training", "commands"},
    "cli": {"commands", "types"},
}
LIGHTNING_LAYERS = {"training", "commands"}


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts[0] in ALLOWED else "cli" if parts[0] in {"cli", "__main__"} else "root"


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if layer_of(p) != "root")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    layer = layer_of(path)
    for name in imported_modules(path):
        parts = name.split(".")
        if parts[0] == "mbmeta" and len(parts) > 1:
            target = parts[1] if parts[1] in ALLOWED else "cli" if parts[1] == "cli" else "root"
            if target == "root" or target == layer:
                continue
            assert target in ALLOWED[layer], f"{path.relative_to(PACKAGE)} ({layer}) imports {name} ({target})"
        if parts[0] in {"pytorch_lightning", "lightning"}:
            assert layer in LIGHTNING_LAYERS, f"{path.relative_to(PACKAGE)} ({layer}) imports {name}"

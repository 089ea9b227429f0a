"""Imports go one way (DESIGN.md §2), checked from the source with ``ast`` (module- and function-level imports):

    types ← {envs, models, planners} ← data ← control ← training ← evaluation ← {runs, baselines} ← commands/cli

- a layer imports only the layers below it (``models`` and ``planners`` never import each other, nor do ``runs``
  and ``baselines``, the model-free baselines of stable-baselines3);
- gymnasium and MuJoCo are imported only in ``envs`` and the layers above ``data``, Lightning only in ``training``
  and above, so importing ``types``, ``models``, ``planners`` or ``data`` pulls in no simulator and no Lightning;
- no import cycle between the modules of one package, type-checking imports included (a module that needs
  another's types for its annotations depends on it).
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mbmeta"

ORDER = ["types", "envs|models|planners", "data", "control", "training", "evaluation", "runs|baselines", "commands|cli"]
LAYER_RANK = {name: rank for rank, group in enumerate(ORDER) for name in group.split("|")}
SIBLINGS_ALLOWED = {("commands", "cli")}  # cli dispatches to commands, commands import nothing of cli
NO_SIMULATOR = {"types", "models", "planners", "data"}
NO_LIGHTNING = {"types", "envs", "models", "planners", "data", "control"}
SIMULATORS = {"gymnasium", "mujoco"}
LIGHTNING = {"pytorch_lightning", "lightning"}


def layer_of(path: Path) -> str | None:
    first = path.relative_to(PACKAGE).with_suffix("").parts[0]
    if first == "__main__":
        return "cli"
    return first if first in LAYER_RANK else None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(("mbmeta", *parts))


def _is_module(name: str) -> bool:
    """Whether ``mbmeta.x.y`` names a module or package of the source tree (``from pkg import module``)."""
    relative = Path(*name.split(".")[1:]) if name.startswith("mbmeta.") else None
    return relative is not None and (
        (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()
    )


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            submodules = [f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")]
            names += submodules if len(submodules) == len(node.names) else [base, *submodules]
    return names


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if layer_of(p) is not None)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    layer = layer_of(path)
    for name in imported_modules(path):
        parts = name.split(".")
        if parts[0] == "mbmeta" and len(parts) > 1 and parts[1] in LAYER_RANK:
            target = parts[1]
            if target == layer or (layer, target) in SIBLINGS_ALLOWED:
                continue
            assert LAYER_RANK[target] < LAYER_RANK[layer], (
                f"{path.relative_to(PACKAGE)} ({layer}) imports {name} ({target}), which is not below it"
            )
        if layer in NO_SIMULATOR:
            assert parts[0] not in SIMULATORS, f"{path.relative_to(PACKAGE)} ({layer}) imports {name}"
        if layer in NO_LIGHTNING:
            assert parts[0] not in LIGHTNING, f"{path.relative_to(PACKAGE)} ({layer}) imports {name}"


def _module_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = defaultdict(set)
    for name, path in modules.items():
        for imported in imported_modules(path):
            target = imported if imported in modules else imported.rpartition(".")[0]  # `from module import name`
            if target in modules and target != name and target.split(".")[:2] == name.split(".")[:2]:
                graph[name].add(target)
    return graph


def test_no_import_cycles_inside_a_package():
    graph = _module_graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt) :] + [nxt]))
            if state.get(nxt) is None:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node, [node])


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    # The checker itself: two modules importing each other are reported.
    fake = tmp_path / "mbmeta"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "__init__.py").write_text("")
    (fake / "models" / "a.py").write_text("from mbmeta.models.b import x\n")
    (fake / "models" / "b.py").write_text("def f():\n    from mbmeta.models import a\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycles_inside_a_package()


@pytest.mark.parametrize("module", ["mbmeta.types", "mbmeta.models", "mbmeta.planners", "mbmeta.data.segments"])
def test_lower_layers_import_no_simulator_and_no_lightning(module):
    import subprocess
    import sys

    code = (
        f"import sys, {module}; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'mujoco', 'gymnasium', 'pytorch_lightning', "
        "'lightning', 'mbmeta.envs'} or m.startswith('mbmeta.envs')); print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"importing {module} pulled in {result.stdout.strip()} {result.stderr[-500:]}"

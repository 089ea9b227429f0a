"""``mbmeta envs``: list the task families, their parameters and splits; ``--check`` that the parameters act.

Families of installed packages (entry points of the ``mbmeta.families`` group) are listed with the shipped ones;
``--check`` also takes import paths (``my_pkg.robots:ArmFamily``) and checks the task contract of each family's env
(takes, applies and reports its task), as ``mbmeta train`` does before collecting.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mbmeta.commands import one_line_errors
from mbmeta.envs import ENTRY_POINT_GROUP, families, get_family
from mbmeta.envs.family import TaskFamily, describe_regions, task_table_rows
from mbmeta.envs.registry import installed_families


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``mbmeta envs``."""
    parser = argparse.ArgumentParser(
        prog="mbmeta envs",
        description="List every registered task family with its Gymnasium id, varied parameters and splits, and the "
        "named test conditions of the reference-protocol families.",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (as in docs/task_families.md)")
    parser.add_argument(
        "--check",
        nargs="*",
        metavar="FAMILY",
        default=None,
        help="check that each family's env takes, applies and reports its task and that each task parameter changes "
        "the physics (same state and actions, two tasks differing in that parameter only); all families if none are "
        "named (names, or import paths module:NAME); exit code 1 if a check fails",
    )
    parser.add_argument("--steps", type=int, default=30, help="with --check: steps per rollout")
    return parser


def markdown_table() -> str:
    """The families' splits as one Markdown table, then the reference protocols' conditions."""
    lines = [
        "| family | env id | parameter | train | test |",
        "|---|---|---|---|---|",
        *(f"| {fam} | `{env_id}` | {param} | {train} | {test} |" for fam, env_id, param, train, test in _rows()),
    ]
    conditions = _condition_rows()
    if conditions:
        lines += [
            "",
            "| family | condition | group | tasks (each parameter drawn from its set) |",
            "|---|---|---|---|",
            *(f"| {fam} | {name} | {group} | {tasks} |" for fam, name, group, tasks in conditions),
        ]
    validation = _validation_rows()
    if validation:
        lines += [
            "",
            "| family | validation split (outside train, disjoint from test; `mbmeta evaluate --split validation`) |",
            "|---|---|",
            *(f"| {fam} | {tasks} |" for fam, tasks in validation),
        ]
    return "\n".join(lines)


def _rows() -> list[tuple[str, str, str, str, str]]:
    return task_table_rows(families())


def _condition_rows() -> list[tuple[str, str, str, str]]:
    """Rows ``(family, condition, group, tasks)`` of every family that names test conditions."""
    return [(fam.name, c.name, c.group, describe_regions(fam, c.regions)) for fam in families() for c in fam.conditions]


def _validation_rows() -> list[tuple[str, str]]:
    """Rows ``(family, tasks)`` of every family that defines a validation split."""
    return [(fam.name, describe_regions(fam, fam.validation)) for fam in families() if fam.validation]


def check(names: list[str], steps: int, console: Console) -> int:
    """Check the named families (all if none): task contract and per-parameter effect; print a table.

    Runs :func:`~mbmeta.envs.contract.check_family_env` (without the exact reward, which only planning with it
    needs) and :func:`~mbmeta.envs.task_effect.check_task_effect`.
    """
    from mbmeta.envs.contract import check_family_env
    from mbmeta.envs.task_effect import check_task_effect

    try:
        chosen: list[TaskFamily] = [get_family(n) for n in names] if names else families()
    except (KeyError, ValueError) as err:
        console.print(f"[red]mbmeta envs --check: {err.args[0]}[/red]", highlight=False)
        return 2
    broken = []
    for family in chosen:
        try:
            check_family_env(family, exact_reward=False, steps=steps)
        except ValueError as err:
            broken.append(str(err))
    table = Table(title=f"does each parameter change the physics? (same state and actions, {steps} steps)")
    for column in ("family", "parameter", "tasks", "Δ obs, step 1", "Δ obs, max", "changes physics"):
        table.add_column(column, overflow="fold")
    inert = []
    for family in chosen:
        try:
            effects = check_task_effect(family, steps=steps)
        except ValueError:  # e.g. an env that ignores options: already reported by the contract check
            continue
        for effect in effects:
            verdict = "yes" if effect.measurable else "[red]NO[/red]"
            if not effect.measurable:
                inert.append(f"{family.name}.{effect.parameter}")
            tasks = f"{effect.base:g} → {effect.other:g}"
            table.add_row(
                family.name, effect.parameter, tasks, f"{effect.first_step:.3g}", f"{effect.largest:.3g}", verdict
            )
    console.print(table)
    for message in broken:
        console.print(Text(message, style="red"))  # Text: no markup parsing of "info['task']"
    if inert:
        console.print(f"[red]no measurable effect (> 1e-6) of: {', '.join(inert)}[/red]")
    return 1 if inert or broken else 0


@one_line_errors("envs")
def run(argv: list[str]) -> int:
    """Print the table (or the check); returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.check is not None:
        return check(args.check, args.steps, Console())
    if args.markdown:
        print(markdown_table())
        return 0
    console = Console()
    table = Table(title="mbmeta task families", show_lines=False)
    for column in ("family", "env id", "parameter", "train", "test"):
        table.add_column(column, overflow="fold")
    for row in _rows():
        table.add_row(*row)
    console.print(table)
    installed = installed_families()
    if installed:
        listed = ", ".join(f"{name} ({where})" for name, where in installed.items())
        console.print(f"from installed packages (entry points {ENTRY_POINT_GROUP!r}): {listed}", highlight=False)
    conditions = _condition_rows()
    if conditions:
        table = Table(title="reference-protocol test conditions (mbmeta evaluate --protocol cadm)")
        for column in ("family", "condition", "group", "tasks"):
            table.add_column(column, overflow="fold")
        for row in conditions:
            table.add_row(*row)
        console.print(table)
    validation = _validation_rows()
    if validation:
        table = Table(title="validation splits: outside train, disjoint from test (mbmeta evaluate --split validation)")
        for column in ("family", "tasks (each parameter drawn from its set)"):
            table.add_column(column, overflow="fold")
        for row in validation:
            table.add_row(*row)
        console.print(table)
    return 0

"""``mbmeta envs``: list the task families, their parameters and splits; ``--check`` that the parameters act."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from mbmeta.commands import one_line_errors
from mbmeta.envs import families, get_family
from mbmeta.envs.family import TaskFamily, describe_regions, task_table_rows


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
        help="check that each task parameter changes the physics (same state and actions, two tasks differing in "
        "that parameter only); all families if none are named; exit code 1 if a parameter has no effect",
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
    return "\n".join(lines)


def _rows() -> list[tuple[str, str, str, str, str]]:
    return task_table_rows(families())


def _condition_rows() -> list[tuple[str, str, str, str]]:
    """Rows ``(family, condition, group, tasks)`` of every family that names test conditions."""
    return [(fam.name, c.name, c.group, describe_regions(fam, c.regions)) for fam in families() for c in fam.conditions]


def check(names: list[str], steps: int, console: Console) -> int:
    """Run :func:`~mbmeta.envs.task_effect.check_task_effect` on the named families (all if none); print a table."""
    from mbmeta.envs.task_effect import check_task_effect

    try:
        chosen: list[TaskFamily] = [get_family(n) for n in names] if names else families()
    except KeyError as err:
        console.print(f"[red]mbmeta envs --check: {err.args[0]}[/red]", highlight=False)
        return 2
    table = Table(title=f"does each parameter change the physics? (same state and actions, {steps} steps)")
    for column in ("family", "parameter", "tasks", "Δ obs, step 1", "Δ obs, max", "changes physics"):
        table.add_column(column, overflow="fold")
    inert = []
    for family in chosen:
        for effect in check_task_effect(family, steps=steps):
            verdict = "yes" if effect.measurable else "[red]NO[/red]"
            if not effect.measurable:
                inert.append(f"{family.name}.{effect.parameter}")
            tasks = f"{effect.base:g} → {effect.other:g}"
            table.add_row(
                family.name, effect.parameter, tasks, f"{effect.first_step:.3g}", f"{effect.largest:.3g}", verdict
            )
    console.print(table)
    if inert:
        console.print(f"[red]no measurable effect (> 1e-6) of: {', '.join(inert)}[/red]")
        return 1
    return 0


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
    conditions = _condition_rows()
    if conditions:
        table = Table(title="reference-protocol test conditions (mbmeta evaluate --protocol cadm)")
        for column in ("family", "condition", "group", "tasks"):
            table.add_column(column, overflow="fold")
        for row in conditions:
            table.add_row(*row)
        console.print(table)
    return 0

"""``mbmeta envs``: list the task families, their parameters and their train/test splits."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from mbmeta.commands import one_line_errors
from mbmeta.envs import families
from mbmeta.envs.family import task_table_rows


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``mbmeta envs``."""
    parser = argparse.ArgumentParser(
        prog="mbmeta envs",
        description="List every registered task family with its Gymnasium id, varied parameters and splits.",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (as in docs/task_families.md)")
    return parser


def markdown_table() -> str:
    """The families' splits as one Markdown table."""
    lines = [
        "| family | env id | parameter | train | test |",
        "|---|---|---|---|---|",
        *(f"| {fam} | `{env_id}` | {param} | {train} | {test} |" for fam, env_id, param, train, test in _rows()),
    ]
    return "\n".join(lines)


def _rows() -> list[tuple[str, str, str, str, str]]:
    return task_table_rows(families())


@one_line_errors("envs")
def run(argv: list[str]) -> int:
    """Print the table; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.markdown:
        print(markdown_table())
        return 0
    table = Table(title="mbmeta task families", show_lines=False)
    for column in ("family", "env id", "parameter", "train", "test"):
        table.add_column(column, overflow="fold")
    for row in _rows():
        table.add_row(*row)
    Console().print(table)
    return 0

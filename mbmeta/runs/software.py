"""The software an experiment's numbers were measured with: the ``software`` part of its merged table.

A simulator release can change what a closed-loop episode does, so a table whose evaluations ran under different
releases says so. Sources (written by :mod:`mbmeta.provenance`): ``software`` in each evaluation's ``results.json``
/ ``protocol.json``, and each training run's ``software.json`` (one entry per start and resume). Files written
before versions were recorded count as "not recorded".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mbmeta.provenance import PACKAGES, version_changes
from mbmeta.runs.run_dir import SOFTWARE_FILE

NOT_RECORDED = "not recorded"
# what the table lists: the interpreter, the library, then the packages whose releases can change a result
REPORTED = ("python", "mbmeta", *PACKAGES)


def evaluation_software(results: dict[str, Any]) -> dict[str, str] | None:
    """The versions an evaluation output records (``results["software"]``), or None if it records none."""
    found = results.get("software")
    return found if isinstance(found, dict) else None


def training_software(run_dir: Path) -> list[dict[str, str] | None] | None:
    """The versions of each start and resume of a training run (``software.json``), or None if absent or unreadable.

    A file whose first entry is a resume (``iteration`` > 0: the run started before versions were recorded) begins
    with None, the unrecorded start.
    """
    try:
        entries = json.loads((run_dir / SOFTWARE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entries, list):
        return None
    entries = [e for e in entries if isinstance(e, dict) and isinstance(e.get("versions"), dict)]
    if not entries:
        return None
    unrecorded_start: list[dict[str, str] | None] = [None] if entries[0].get("iteration", 0) else []
    return unrecorded_start + [e["versions"] for e in entries]


def _counts(records: list[dict[str, str] | None], package: str) -> dict[str, int]:
    """``{version: how many records name it}``, records without versions under :data:`NOT_RECORDED` (last)."""
    counts: dict[str, int] = {}
    for record in records:
        version = NOT_RECORDED if record is None else record.get(package, NOT_RECORDED)
        counts[version] = counts.get(version, 0) + 1
    recorded = {v: c for v, c in sorted(counts.items()) if v != NOT_RECORDED}
    return recorded | ({NOT_RECORDED: counts[NOT_RECORDED]} if NOT_RECORDED in counts else {})


def _cell(counts: dict[str, int]) -> str:
    return ", ".join(f"{version} ({count})" for version, count in counts.items()) or "—"


def software_lines(software: dict[str, Any]) -> list[str]:
    """The Markdown of the ``software`` section from a summary's ``software`` entry.

    Args:
        software: ``{"evaluations": {out_dir: versions | None}, "trainings": {run_dir: [versions | None, ...] |
            None}}`` (:func:`evaluation_software`, :func:`training_software`); a training run counts once per start
            or resume, an unrecorded one as "not recorded".
    """
    evaluations = list(software["evaluations"].values())
    trainings = [v for entries in software["trainings"].values() for v in (entries or [None])]
    if all(record is None for record in evaluations + trainings):
        return [
            "## software",
            "",
            "Not recorded: these evaluations and training runs predate mbmeta's record of software versions "
            "(`software` in results.json, `software.json` in a run directory).",
            "",
        ]
    lines = [
        "## software",
        "",
        f"Releases the numbers were measured with: {len(evaluations)} done evaluation(s) and {len(trainings)} "
        "training start(s) or resume(s), counted per release.",
        "",
        "| package | evaluations | training |",
        "|---|---|---|",
    ]
    mixed = []
    for package in REPORTED:
        evaluated = _counts(evaluations, package)
        lines.append(f"| {package} | {_cell(evaluated)} | {_cell(_counts(trainings, package))} |")
        if len([v for v in evaluated if v != NOT_RECORDED]) > 1:
            mixed.append(f"{package} ({', '.join(v for v in evaluated if v != NOT_RECORDED)})")
    lines.append("")
    if mixed:
        lines += [
            "The evaluations ran under more than one release of " + "; ".join(mixed) + ": a closed-loop number can "
            "move with the simulator's release, so compare methods measured under one release.",
            "",
        ]
    recorded = {run: [v for v in entries or [] if v is not None] for run, entries in software["trainings"].items()}
    changed = [
        f"`{run}` ({'; '.join(version_changes(entries[0], entries[-1]))})"
        for run, entries in recorded.items()
        if entries and version_changes(entries[0], entries[-1])
    ]
    if changed:
        lines += ["Training runs resumed under other software than they started with: " + ", ".join(changed), ""]
    return lines


def release_warnings(software: dict[str, Any], current: dict[str, str]) -> list[str]:
    """One line per package whose recorded evaluation releases differ from ``current`` (the installed ones).

    What ``mbmeta sweep`` says before it adds results to an experiment measured under other releases; only
    ``software["evaluations"]`` is read.
    """
    evaluations = [v for v in software["evaluations"].values() if v is not None]
    lines = []
    for package in PACKAGES:
        installed = current.get(package, NOT_RECORDED)
        others = _counts([v for v in evaluations if package in v and v[package] != installed], package)
        if others:
            found = ", ".join(f"{count} under {version}" for version, count in others.items())
            lines.append(
                f"this experiment's done evaluations ran under other {package} releases ({found}) than this sweep's "
                f"{installed}: a closed-loop number can move with the release; the merged table's software section "
                "counts each"
            )
    return lines

"""Carry the local state of experiment runs (replay buffers, iteration checkpoints) over a change of machine.

A run directory keeps in git only what a reported number needs (.gitignore); its ``buffer.npz`` and
``checkpoints/`` stay local, yet an unfinished run resumes only with them, and the kept checkpoints of a finished run
are what its learning-curve evaluations read. A new machine that receives the checkout's untracked files but not its
ignored ones (as happened on 2026-12-05: two half-done CaDM runs had to start again) loses them.

``park`` copies those files of every run directory (one holding ``state.json``, e.g. ``experiments/<name>/runs/<run>/``
or ``experiments/<name>/pilot/<run>/``) into ``experiments/<name>/carry/<runs or pilot>/<run>/``
(not ignored, never committed: the copies are renamed ``*.carried`` so that ``*.ckpt`` rules do not apply);
``restore`` puts back every parked file its run directory lacks, never overwriting one, then deletes the parking
place. Stop the training processes before ``park``: a buffer copied while a run writes it does not match its
``state.json`` (the loop refuses such a buffer on resume, by its digest, rather than use it).

Usage: ``python experiments/carry_runs.py park`` at the end of a session, ``python experiments/carry_runs.py
restore`` at the start of the next, before re-issuing the runs' commands.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from mbmeta.runs.run_dir import BUFFER_FILE, CHECKPOINT_DIR, STATE_FILE

EXPERIMENTS = Path(__file__).resolve().parent
CARRY_DIR = "carry"
SUFFIX = ".carried"


def local_files(run: Path) -> list[Path]:
    """The ignored files of a run directory that a resume or a curve evaluation needs, relative to it."""
    files = [Path(BUFFER_FILE)] if (run / BUFFER_FILE).is_file() else []
    files += sorted(p.relative_to(run) for p in (run / CHECKPOINT_DIR).glob("*.ckpt"))
    return files


def park(root: Path) -> list[Path]:
    """Copy every run's local files into ``<experiment>/carry/<group>/<run>/``; returns the copies made."""
    made = []
    for run in sorted(state.parent for state in root.glob(f"*/*/*/{STATE_FILE}")):
        if run.parent.name == CARRY_DIR:
            continue
        for rel in local_files(run):
            target = run.parent.parent / CARRY_DIR / run.parent.name / run.name / f"{rel}{SUFFIX}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / rel, target)
            made.append(target)
    return made


def restore(root: Path) -> tuple[list[Path], list[Path]]:
    """Put parked files back where missing; returns (restored, left because the run already has them)."""
    restored, kept = [], []
    for carry in sorted(root.glob(f"*/{CARRY_DIR}")):
        for parked in sorted(carry.rglob(f"*{SUFFIX}")):
            rel = parked.relative_to(carry)
            target = carry.parent / rel.parent / rel.name.removesuffix(SUFFIX)
            if target.exists():
                kept.append(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(parked, target)
            restored.append(target)
        shutil.rmtree(carry)
    return restored, kept


def main(argv: list[str] | None = None) -> None:
    """Park or restore the runs' local files."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["park", "restore"])
    p.add_argument("--root", type=Path, default=EXPERIMENTS, help="the experiments directory")
    args = p.parse_args(argv)
    if args.action == "park":
        made = park(args.root)
        print(f"parked {len(made)} files ({sum(f.stat().st_size for f in made) / 1e6:.1f} MB)")
    else:
        restored, kept = restore(args.root)
        print(f"restored {len(restored)} files; {len(kept)} already present, left as they are")


if __name__ == "__main__":
    main()

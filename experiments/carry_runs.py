"""Carry what unfinished experiment work needs (replay buffers, checkpoints) over a change of machine, through git.

A run directory keeps in git only what a reported number needs (.gitignore): its ``state.json`` and final
``model.ckpt`` travel, its ``buffer.npz`` and ``checkpoints/`` stay local. Yet an unfinished run resumes only with
its buffer and the checkpoint ``state.json`` commits, and a kept checkpoint whose learning-curve point is not yet
evaluated is read by that evaluation. A new machine receives only what was committed to main: on 2026-12-05 two
half-done CaDM runs started again, and on 2026-12-07 the parked, uncommitted copies of every run's local files
(1015 MB) did not arrive either, so a HalfCheetah curve lost two points and a trained juggler run was redone.

So ``park`` copies only what is still *needed*, small enough to commit:

- an unfinished run (fewer iterations in ``state.json`` than ``loop.iterations`` in its ``config.json``): its buffer,
  the checkpoint its state commits and its kept checkpoints;
- a finished run: the kept checkpoints whose curve evaluation the experiment's design (``experiment.yaml``) still
  lists as not done (every kept checkpoint when the directory belongs to no design, e.g. a pilot run);

and of those, no checkpoint identical to the run's ``model.ckpt`` (same SHA-256; that file is committed). The copies
go to ``experiments/<name>/carry/<runs or pilot>/<run>/`` as ``*.carried`` (so no ``*.ckpt`` rule ignores them);
commit them at the stop together with the unfinished runs' tracked files. ``restore`` puts back every parked file
its run lacks (never overwriting one), rebuilds each needed checkpoint that is the same file as ``model.ckpt`` from
it, then deletes the parking places (commit that deletion). Stop the training processes before ``park``: a buffer
copied while a run writes it does not match its ``state.json`` (the loop refuses such a buffer on resume, by its
digest, rather than use it).

Usage: ``python experiments/carry_runs.py park`` at the end of a session, ``python experiments/carry_runs.py
restore`` at the start of the next, before re-issuing the runs' commands.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from mbmeta.runs.curve import curve_runs
from mbmeta.runs.experiment import EXPERIMENT_FILE, load_experiment
from mbmeta.runs.run_dir import BUFFER_FILE, CHECKPOINT_FILE, STATE_FILE, LoopState, file_sha256
from mbmeta.runs.status import configured_iterations

EXPERIMENTS = Path(__file__).resolve().parent
CARRY_DIR = "carry"
SUFFIX = ".carried"


def run_directories(root: Path) -> list[Path]:
    """Every run directory (one holding ``state.json``) at ``<root>/<experiment>/<group>/<run>/``, parking excluded."""
    return sorted(state.parent for state in root.glob(f"*/*/*/{STATE_FILE}") if state.parent.parent.name != CARRY_DIR)


def pending_curve_checkpoints(experiment_dir: Path) -> set[Path] | None:
    """The kept checkpoints whose curve evaluation the design lists as not done, or None without a readable design."""
    if not (experiment_dir / EXPERIMENT_FILE).is_file():
        return None
    try:
        experiment = load_experiment(experiment_dir)
        runs = curve_runs(experiment)
    except ValueError as err:  # ExperimentError too
        print(f"{experiment_dir}: its design cannot be read ({err}); every kept checkpoint counts as needed")
        return None
    return {(experiment.root / curve.checkpoint).resolve() for curve, status, _ in runs if status != "done"}


def is_finished(run: Path, state: LoopState) -> bool:
    """Whether the run completed the iterations its ``config.json`` asks for (unknown: not finished)."""
    iterations = configured_iterations(run)
    return iterations is not None and state.iteration >= iterations


def needed_files(run: Path, pending: set[Path] | None) -> list[tuple[Path, str | None]]:
    """The local files the run's continuation needs: ``(path relative to the run, recorded SHA-256 or None)``.

    Args:
        run: the run directory.
        pending: the design's kept checkpoints not yet evaluated (absolute paths), or None for "all of them".
    """
    state = LoopState.load(run / STATE_FILE)
    kept = [(Path(k.checkpoint), k.sha256) for k in state.kept]
    if not is_finished(run, state):
        files = [(Path(BUFFER_FILE), None)] if (run / BUFFER_FILE).is_file() else []
        if state.checkpoint is not None:
            files.append((Path(state.checkpoint), state.checkpoint_sha256))
        files += kept
    else:
        files = [(rel, sha) for rel, sha in kept if pending is None or (run / rel).resolve() in pending]
    unique: dict[Path, str | None] = {}
    for rel, sha in files:
        unique.setdefault(rel, sha)
    return list(unique.items())


def needs(root: Path) -> list[tuple[Path, Path, str | None, str | None]]:
    """Every needed file of every run: ``(run, path relative to it, recorded SHA-256, SHA-256 of its model.ckpt)``."""
    pending_by_experiment: dict[Path, set[Path] | None] = {}
    found = []
    for run in run_directories(root):
        experiment_dir = run.parent.parent
        if experiment_dir not in pending_by_experiment:
            pending_by_experiment[experiment_dir] = pending_curve_checkpoints(experiment_dir)
        final = run / CHECKPOINT_FILE
        final_sha = file_sha256(final) if final.is_file() else None
        found += [(run, rel, sha, final_sha) for rel, sha in needed_files(run, pending_by_experiment[experiment_dir])]
    return found


def park(root: Path) -> list[Path]:
    """Copy what every run still needs into ``<experiment>/carry/<group>/<run>/``; returns the copies made."""
    made = []
    for run, rel, sha, final_sha in needs(root):
        if not (run / rel).is_file() or (sha is not None and sha == final_sha):
            continue  # lost already, or the committed model.ckpt itself (restore rebuilds it)
        target = run.parent.parent / CARRY_DIR / run.parent.name / run.name / f"{rel}{SUFFIX}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / rel, target)
        made.append(target)
    return made


def restore(root: Path) -> tuple[list[Path], list[Path]]:
    """Put parked files back where missing, rebuild needed copies of ``model.ckpt``, delete the parking places.

    Returns:
        (files restored or rebuilt, parked files left because the run already has them).
    """
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
    for run, rel, sha, final_sha in needs(root):
        if final_sha is not None and sha == final_sha and not (run / rel).exists():
            (run / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / CHECKPOINT_FILE, run / rel)
            restored.append(run / rel)
    return restored, kept


def main(argv: list[str] | None = None) -> None:
    """Park or restore what the runs still need."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["park", "restore"])
    p.add_argument("--root", type=Path, default=EXPERIMENTS, help="the experiments directory")
    args = p.parse_args(argv)
    if args.action == "park":
        made = park(args.root)
        size = sum(f.stat().st_size for f in made) / 1e6
        print(f"parked {len(made)} files ({size:.1f} MB); commit them: git add {args.root}/*/{CARRY_DIR}")
        for path in made:
            print(f"  {path.relative_to(args.root)}  {path.stat().st_size / 1e6:.1f} MB")
    else:
        restored, kept = restore(args.root)
        print(f"restored {len(restored)} files; {len(kept)} already present, left as they are")


if __name__ == "__main__":
    main()

"""`mbmeta sweep` end to end on experiments/smoke (real `mbmeta train` / `evaluate` subprocesses, seconds each).

One SLURM array task is run locally (SLURM_ARRAY_TASK_ID=0 with experiments/slurm_array.sh and the printed
commands), then the local runner resumes the rest of seed 0, skipping what the array task did; the merged table
reports each training seed once and the undone seed as missing.
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mbmeta.cli import main

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "experiments" / "smoke"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A copy of experiments/smoke after one array task (none-seed0) and a local sweep of seed 0.

    The array task and the local sweep of context-seed0 run at the same time (as array tasks and local runs may);
    a last local sweep of seed 0 then finds everything done.
    """
    root = tmp_path_factory.mktemp("exp") / "smoke"
    shutil.copytree(SMOKE, root, ignore=shutil.ignore_patterns("runs", "results"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["sweep", str(root), "--print-commands"]) == 0
    commands = root.parent / "smoke.commands"
    commands.write_text(printed.getvalue())
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="0", PYTHONPATH=str(REPO))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the `mbmeta` of this environment
    array_task = subprocess.Popen(
        ["bash", str(REPO / "experiments" / "slurm_array.sh"), str(commands)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert main(["sweep", str(root), "--methods", "context", "--seeds", "0", "--jobs", "1"]) == 0
    output, _ = array_task.communicate(timeout=600)
    assert array_task.returncode == 0, output
    stamps = sorted((root / "results").glob("*/eval0/sweep.json"))
    before = {p: p.read_text() for p in stamps}
    assert main(["sweep", str(root), "--seeds", "0", "--jobs", "2"]) == 0
    return root, printed.getvalue().splitlines(), before


def test_print_commands_gives_one_line_per_training_run(swept):
    root, lines, _ = swept
    assert lines == [f"mbmeta sweep {root} --run {run} --jobs 1" for run in
                     ("none-seed0", "none-seed1", "context-seed0", "context-seed1")]  # fmt: skip


def test_the_array_task_ran_its_line_and_a_second_sweep_skipped_what_was_done(swept):
    root, _, before = swept
    assert sorted(p.parent.parent.name for p in before) == ["context-seed0", "none-seed0"]
    for stamp, text in before.items():
        assert stamp.read_text() == text  # not run again
        assert json.loads(text)["status"] == "done"
    assert not (root / "runs" / "none-seed1").exists()


def test_run_directory_keeps_what_a_number_needs(swept):
    root, _, _ = swept
    run = root / "runs" / "context-seed0"
    for name in ("model.ckpt", "config.json", "state.json", "train.log", "sweep.json"):
        assert (run / name).is_file(), name
    assert "iteration 1/1" in (run / "train.log").read_text()
    assert json.loads((run / "config.json").read_text())["loop"]["run_dir"] == "runs/context-seed0"  # relative


def test_merged_table_has_each_seed_once_and_the_missing_seed(swept):
    root, _, _ = swept
    summary = json.loads((root / "results" / "summary.json").read_text())
    for method in ("none", "context"):
        episodes = json.loads((root / "results" / f"{method}-seed0" / "eval0" / "results.json").read_text())["episodes"]
        expected = sum(e["episode_return"] for e in episodes) / len(episodes)
        overall = summary["metrics"]["episode_return"]["methods"][method]["overall"]
        assert overall["n"] == 1 and overall["per_seed"]["0"] == pytest.approx(expected)
        assert overall["low"] is None  # one seed: no interval
    statuses = {(r["method"], r["seed"]): r["status"] for r in summary["runs"]}
    assert statuses == {("none", 0): "done", ("none", 1): "missing", ("context", 0): "done", ("context", 1): "missing"}
    difference = summary["metrics"]["episode_return"]["differences"]["context - none"]["overall"]
    assert difference["verdict"] == "not established"
    table = (root / "results" / "table.md").read_text()
    assert "| `none` | 1 |" in table and "1 done, 1 missing" in table


def test_merge_only_rebuilds_the_same_table(swept):
    root, _, _ = swept
    before = (root / "results" / "table.md").read_text()
    (root / "results" / "table.md").unlink()
    assert main(["sweep", str(root), "--merge-only"]) == 0
    assert (root / "results" / "table.md").read_text() == before


def test_wandb_sweep_config_lists_the_runs(swept, capsys):
    root, _, _ = swept
    assert main(["sweep", str(root), "--wandb-sweep", "--methods", "context"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["parameters"] == {"run": {"values": ["context-seed0", "context-seed1"]}}
    assert config["command"][:3] == ["mbmeta", "sweep", str(root)] and config["command"][-1] == "${args}"


def test_a_bad_experiment_is_one_line_on_stderr(tmp_path, capsys):
    root = tmp_path / "bad"
    shutil.copytree(SMOKE, root, ignore=shutil.ignore_patterns("runs", "results"))
    (root / "configs" / "methods" / "none.yaml").write_text("model:\n  adaptaton: none\n")
    assert main(["sweep", str(root), "--jobs", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mbmeta sweep: error: ") and "none-seed0" in err and "adaptaton" in err
    assert "\n" not in err
    assert not (root / "runs").exists()  # refused before anything started


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_gitignore_keeps_run_essentials_and_drops_buffers():
    run = "experiments/pendulum/runs/none-seed0"

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0

    kept_files = ("model.ckpt", "config.json", "state.json", "train.log", "sweep.json", "learning_curve.csv")
    for kept in (*kept_files, "software.json"):
        assert not ignored(f"{run}/{kept}"), kept
    for dropped in ("buffer.npz", "checkpoints/iteration_001.ckpt", "wandb/run.wandb", "wandb_id", ".lock"):
        assert ignored(f"{run}/{dropped}"), dropped
    assert ignored("experiments/pendulum/results/none-seed0/eval0/wandb/x") and ignored("model.ckpt")
    assert not ignored("experiments/pendulum/results/none-seed0/eval0/results.json")
    assert ignored("experiments/smoke/runs/none-seed0/model.ckpt")  # the smoke experiment keeps nothing

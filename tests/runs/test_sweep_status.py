"""``mbmeta sweep --status``: each job's training and evaluations read from the files a (fake) sweep left, a run
stopped, failed, running or started with other configs, evaluations running now, and that nothing is written."""

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from test_sweep_runner import FAKE, write_experiment  # the runner tests' fake experiment (tests/runs on sys.path)

from mbmeta.runs.experiment import load_experiment
from mbmeta.runs.run_dir import LOCK_PATIENCE, RunInUseError, RunLock
from mbmeta.runs.status import Counts, experiment_status, status_table
from mbmeta.runs.sweep import Sweep, evaluation_lock_name, plan_jobs

METHODS = {  # a model_of method (two evaluations per run) and a reference policy (no training)
    "none": "configs/none.yaml",
    "context": "configs/context.yaml",
    "context-x": {"model_of": "context", "agent": {"disagreement_penalty": 1.0}},
    "random": {"policy": "random"},
}
EVALUATE = {"split": "test", "episodes_per_task": 1, "num_envs": 2, "seeds": [0], "every_kept_checkpoint": True}


@pytest.fixture
def swept(tmp_path, calls, monkeypatch):
    monkeypatch.setenv("FAKE_KEEP", "1,2")
    experiment = load_experiment(write_experiment(tmp_path / "exp", methods=METHODS, evaluate=EVALUATE))
    outcomes = Sweep(experiment, plan_jobs(experiment), command=FAKE, log=lambda line: None, parallel=2).run()
    assert all(o.status == "done" for o in outcomes), outcomes
    return experiment


def statuses(experiment):
    return {s.name: s for s in experiment_status(experiment, plan_jobs(experiment))}


def as_interrupted(experiment, run: str, iteration: int, iterations: int) -> Path:
    """Make ``runs/<run>`` look like a training killed after ``iteration`` of ``iterations``, nothing evaluated."""
    directory = experiment.root / "runs" / run
    shutil.rmtree(experiment.root / "results" / run)
    stamp = json.loads((directory / "sweep.json").read_text())
    (directory / "sweep.json").write_text(json.dumps({**stamp, "status": "running"}))
    (directory / "model.ckpt").unlink()
    state = json.loads((directory / "state.json").read_text())
    (directory / "state.json").write_text(json.dumps({**state, "iteration": iteration}))
    (directory / "config.json").write_text(json.dumps({"loop": {"iterations": iterations}}))
    return directory


def test_a_finished_sweep_is_all_done_with_its_counts(swept):
    status = statuses(swept)
    assert set(status) == {f"{m}-seed{s}" for m in ("none", "context", "random") for s in (0, 1)}
    assert status["context-seed0"].training.state == "done"
    assert status["context-seed0"].evaluations == Counts(done=2, declared=2)  # context and context-x
    assert status["context-seed0"].curve == Counts(done=4, declared=4)  # 2 kept checkpoints × 2 methods
    assert status["none-seed1"].evaluations == Counts(done=1, declared=1)
    assert status["random-seed0"].training is None and status["random-seed0"].evaluations == Counts(done=1, declared=1)
    table = status_table(swept, list(status.values()))
    assert "reference policy" in table and "2 of 2 done" in table and "4 of 4 kept done" in table
    assert table.splitlines()[-1] == "trainings: 4 done; evaluations 20 of 20 done"  # finals 2 + 4 + 2, curve 4 + 8


def test_an_interrupted_training_is_stopped_and_its_evaluations_todo(swept):
    as_interrupted(swept, "none-seed1", iteration=1, iterations=4)
    status = statuses(swept)["none-seed1"]
    assert (status.training.state, status.training.iteration, status.training.iterations) == ("stopped", 1, 4)
    assert status.evaluations == Counts(done=0, declared=1)  # no final model: its evaluation is not done
    line = next(row for row in status_table(swept, [status], now=time.time()).splitlines() if "none-seed1" in row)
    assert "stopped: 1 of 4 iterations, written 0 min ago" in line


def test_a_training_whose_lock_is_held_is_running(swept):
    directory = as_interrupted(swept, "context-seed1", iteration=2, iterations=5)
    with RunLock(directory):  # as the live `mbmeta train` process holds it
        assert statuses(swept)["context-seed1"].training.state == "running"
    assert statuses(swept)["context-seed1"].training.state == "stopped"


def test_failed_not_started_and_other_configs_are_told_apart(swept):
    directory = swept.root / "runs" / "none-seed0"
    stamp = json.loads((directory / "sweep.json").read_text())
    (directory / "sweep.json").write_text(json.dumps({**stamp, "status": "failed", "returncode": 1}))
    (directory / "model.ckpt").unlink()
    for path in (swept.root / "runs" / "none-seed1").iterdir():
        if path.is_file():
            path.unlink()
    (swept.root / "configs" / "context.yaml").write_text("model:\n  adaptation: context\n  latent_dim: 3\n")
    status = statuses(swept)
    assert status["none-seed0"].training.state == "failed"
    assert status["none-seed1"].training.state == "not started"
    assert status["context-seed0"].training.state == "stale"
    assert "started with other configs (--replace)" in status_table(swept, [status["context-seed0"]])


def test_an_evaluation_holding_its_lock_counts_as_running(swept):
    out = "results/context-seed0/curve/iteration_002/eval0"
    (swept.root / out / "sweep.json").unlink()  # not done any more
    (swept.root / out / "results.json").unlink()
    with RunLock(swept.root / "runs" / "context-seed0", evaluation_lock_name(out)):
        assert statuses(swept)["context-seed0"].curve == Counts(done=3, declared=4, running=1)
    assert statuses(swept)["context-seed0"].curve == Counts(done=3, declared=4)


def test_the_status_command_prints_the_table_and_writes_nothing(swept, capsys):
    from mbmeta.cli import main

    as_interrupted(swept, "none-seed1", iteration=1, iterations=4)
    before = {p: p.stat().st_mtime_ns for p in swept.root.rglob("*")}
    assert main(["sweep", str(swept.root), "--status", "--methods", "none"]) == 0
    out = capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in swept.root.rglob("*")} == before
    assert "none-seed0" in out and "stopped: 1 of 4 iterations" in out and "context-seed0" not in out
    assert out.splitlines()[-2].startswith("trainings: 1 done, 1 stopped;")
    assert out.splitlines()[-1].startswith("left: 1 training(s) and ")  # the time estimate (test_sweep_estimate.py)


def test_in_use_probes_without_creating_the_lock_file(tmp_path):
    assert not RunLock.in_use(tmp_path) and not (tmp_path / ".lock").exists()
    with RunLock(tmp_path):
        assert RunLock.in_use(tmp_path)
    assert not RunLock.in_use(tmp_path)


def test_a_lock_released_within_the_patience_is_taken_and_one_held_longer_refused(tmp_path):
    held = RunLock(tmp_path).__enter__()
    threading.Timer(0.2, held.__exit__).start()  # e.g. a status probe, or a run ending
    with RunLock(tmp_path):
        pass
    start = time.monotonic()
    with RunLock(tmp_path), pytest.raises(RunInUseError, match="in use by another mbmeta process"):
        RunLock(tmp_path).__enter__()
    assert time.monotonic() - start >= LOCK_PATIENCE


def test_results_of_other_settings_are_counted_stale(swept):
    out = swept.root / "results" / "none-seed0" / "eval0"
    stamp = json.loads((out / "sweep.json").read_text())
    (out / "sweep.json").write_text(json.dumps({**stamp, "settings": {**stamp["settings"], "episodes_per_task": 9}}))
    status = statuses(swept)["none-seed0"]
    assert status.evaluations == Counts(done=0, declared=1, stale=1)
    table = status_table(swept, [status])
    assert "0 of 1 done, 1 stale" in table and table.splitlines()[-2].endswith("--replace moves them aside")

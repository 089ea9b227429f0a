"""The runner's scheduling, stamps, resuming, refusals and failure records, with a fake ``mbmeta`` (no torch)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mbmeta.runs.experiment import load_experiment
from mbmeta.runs.merge import merge, write_merged
from mbmeta.runs.sweep import (
    Sweep,
    SweepError,
    agent_report,
    child_environment,
    job_commands,
    plan_jobs,
    wandb_sweep_config,
)

FAKE = [sys.executable, str(Path(__file__).with_name("fake_mbmeta.py"))]


def write_experiment(root: Path, **changes) -> Path:
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "train.yaml").write_text("loop:\n  family: pendulum\n")
    (root / "configs" / "none.yaml").write_text("model:\n  adaptation: none\n")
    (root / "configs" / "context.yaml").write_text("model:\n  adaptation: context\n")
    design = {
        "family": "pendulum",
        "train": {"configs": ["configs/train.yaml"], "seeds": [0, 1]},
        "methods": {
            "none": "configs/none.yaml",
            "context": {"configs": ["configs/context.yaml"]},
            "context-dp": {"model_of": "context", "agent": {"disagreement_penalty": 100}},
        },
        "evaluate": {"episodes_per_task": 1, "num_envs": 2, "seeds": [0, 1]},
        "report": {"comparisons": [["context", "none"]]},
        **changes,
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(design, sort_keys=False))
    return root


def read_calls(path: Path) -> list[str]:
    return [line.split(" ", 2)[2] for line in path.read_text().splitlines()] if path.exists() else []


def sweep(experiment, **kwargs):
    options = {k: kwargs.pop(k) for k in ("methods", "seeds", "run") if k in kwargs}
    return Sweep(experiment, plan_jobs(experiment, **options), command=FAKE, log=lambda line: None, **kwargs)


def test_trains_each_run_once_and_evaluates_every_method_and_seed(tmp_path, calls):
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    outcomes = sweep(experiment, parallel=2).run()
    trains = [c for c in read_calls(calls) if c.startswith("train")]
    evaluations = [c for c in read_calls(calls) if c.startswith("evaluate")]
    assert len(trains) == 4  # none, context × 2 seeds: context-dp reuses context's models
    assert len(evaluations) == 3 * 2 * 2  # 3 methods × 2 training seeds × 2 evaluation seeds
    assert all(o.status == "done" for o in outcomes)
    dp = [c for c in evaluations if "--labels context-dp" in c]
    assert dp and all("runs/context-seed" in c and "--agent.disagreement_penalty 100" in c for c in dp)
    for run in ("none-seed0", "context-seed1"):
        stamp = json.loads((experiment.root / "runs" / run / "sweep.json").read_text())
        assert stamp["status"] == "done" and len(stamp["checkpoint_sha256"]) == 64
        assert (experiment.root / "runs" / run / "train.log").read_text().startswith("# ")


def test_the_merged_table_has_every_seed_once_and_the_paired_difference(tmp_path, calls):
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    sweep(experiment, parallel=2).run()
    summary = merge(experiment)
    overall = summary["metrics"]["episode_return"]["methods"]["context"]["overall"]
    # fake return = 200 + 10 * seed + eval seed + task index; per seed the mean over 2 eval seeds × 2 tasks
    assert overall["per_seed"] == {"0": 201.0, "1": 211.0}
    assert overall["mean"] == pytest.approx(206.0) and overall["n"] == 2
    difference = summary["metrics"]["episode_return"]["differences"]["context - none"]["overall"]
    assert difference["per_seed"] == {"0": 100.0, "1": 100.0}
    assert difference["verdict"] == "not established"  # the same on both seeds: no spread, nothing established
    table, _ = write_merged(experiment, summary)
    assert "| `context` − `none` | 2 | +100.0 |" in table.read_text()


def test_a_second_sweep_skips_everything_done(tmp_path, calls):
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    sweep(experiment, parallel=2).run()
    before = len(read_calls(calls))
    outcomes = sweep(experiment, parallel=2).run()
    assert len(read_calls(calls)) == before
    assert {o.status for o in outcomes} == {"skipped"}


def test_jobs_run_side_by_side(tmp_path, calls, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "0.4")
    experiment = load_experiment(write_experiment(tmp_path / "exp", evaluate={"seeds": [0]}))
    sweep(experiment, parallel=2, methods=["none"]).run()
    spans = [tuple(map(float, line.split()[:2])) for line in calls.read_text().splitlines() if "train" in line]
    (start0, end0), (start1, end1) = spans
    assert start1 < end0 and start0 < end1  # the two trainings overlapped


def test_a_failed_training_is_recorded_and_redone_on_the_next_sweep(tmp_path, calls, monkeypatch):
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    monkeypatch.setenv("FAKE_FAIL", "context-seed1")
    outcomes = sweep(experiment, parallel=2).run()
    by_step = {o.step: o.status for o in outcomes}
    assert by_step["train context-seed1"] == "failed"
    assert by_step["evaluate context-seed1/eval0"] == "not run"
    assert by_step["evaluate context-dp-seed1/eval1"] == "not run"
    summary = merge(experiment)
    failed = [r for r in summary["runs"] if r["status"] == "failed"]
    assert {(r["method"], r["seed"]) for r in failed} == {("context", 1), ("context-dp", 1)}
    assert all("runs/context-seed1/train.log" in r["detail"] for r in failed)
    context = summary["metrics"]["episode_return"]["methods"]["context"]["overall"]
    assert context["n"] == 1  # the failed seed is reported as failed, not averaged in
    table, _ = write_merged(experiment, summary)
    assert "2 done, 2 failed" in table.read_text()
    monkeypatch.setenv("FAKE_FAIL", "")
    before = len(read_calls(calls))
    sweep(experiment, parallel=2).run()
    redone = read_calls(calls)[before:]
    assert sum(c.startswith("train") for c in redone) == 1 and "context-seed1" in redone[0]
    assert all(r["status"] == "done" for r in merge(experiment)["runs"])


def test_a_changed_config_retrains_and_its_old_results_are_not_overwritten(tmp_path, calls):
    root = write_experiment(tmp_path / "exp")
    experiment = load_experiment(root)
    sweep(experiment, parallel=2).run()
    (root / "configs" / "none.yaml").write_text("model:\n  adaptation: none\n  ensemble_size: 7\n")
    with pytest.raises(SweepError, match="runs/none-seed0 .* not made from the current configs"):
        sweep(experiment, methods=["none"]).check()
    old_model = (root / "runs" / "none-seed0" / "model.ckpt").read_text()
    before = len(read_calls(calls))
    sweep(experiment, methods=["none"], replace=True).run()
    redone = read_calls(calls)[before:]
    assert sum(c.startswith("train") for c in redone) == 2 and sum(c.startswith("evaluate") for c in redone) == 4
    # the old run and its results were moved aside, not deleted, and the new run started fresh
    (moved_run,) = (root / "runs" / "replaced").glob("none-seed0-*")
    assert (moved_run / "model.ckpt").read_text() == old_model
    assert "ensemble_size: 7" in (root / "runs" / "none-seed0" / "model.ckpt").read_text()
    assert len(list((root / "results" / "replaced").glob("none-seed0/eval0-*/results.json"))) == 1


def test_results_from_elsewhere_stop_the_sweep_before_anything_runs(tmp_path, calls):
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    migrated = experiment.root / "results" / "none-seed0" / "eval0"
    migrated.mkdir(parents=True)
    (migrated / "results.json").write_text("{}")
    with pytest.raises(SweepError, match="none-seed0/eval0"):
        sweep(experiment).run()
    assert read_calls(calls) == []
    assert (migrated / "results.json").read_text() == "{}"


def test_an_interrupted_evaluation_is_redone(tmp_path, calls):
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    sweep(experiment, methods=["none"], seeds=[0]).run()
    stamp_path = experiment.root / "results" / "none-seed0" / "eval1" / "sweep.json"
    stamp = json.loads(stamp_path.read_text())
    stamp_path.write_text(json.dumps({**stamp, "status": "running"}))  # as a kill during the evaluation leaves it
    assert merge(experiment)["runs"][1]["status"] == "incomplete"
    before = len(read_calls(calls))
    sweep(experiment, methods=["none"], seeds=[0]).run()
    assert [c.split()[0] for c in read_calls(calls)[before:]] == ["evaluate"]


def test_selection_errors_name_what_is_declared(tmp_path):
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    with pytest.raises(SweepError, match="unknown method 'oracle'"):
        plan_jobs(experiment, methods=["oracle"])
    with pytest.raises(SweepError, match="declares no run"):
        plan_jobs(experiment, seeds=[7])
    with pytest.raises(SweepError, match="runs: none-seed0"):
        plan_jobs(experiment, run="nothing-seed0")
    jobs = plan_jobs(experiment, methods=["context-dp"], seeds=[1])
    assert [j.name for j in jobs] == ["context-seed1"] and {e.method for e in jobs[0].evaluations} == {"context-dp"}


def test_commands_for_a_job_array_and_a_wandb_sweep(tmp_path):
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    jobs = plan_jobs(experiment)
    lines = job_commands("experiments/exp", jobs)
    assert lines[0] == "mbmeta sweep experiments/exp --run none-seed0 --jobs 1"
    assert len(lines) == 4 and len(set(lines)) == 4
    config = wandb_sweep_config(experiment, "experiments/exp", jobs)
    assert config["method"] == "grid"
    assert config["parameters"]["run"]["values"] == ["none-seed0", "none-seed1", "context-seed0", "context-seed1"]
    assert config["command"] == ["mbmeta", "sweep", "experiments/exp", "--jobs", "1", "${args}"]


def test_children_get_one_thread_the_runners_code_and_no_wandb_agent_ids():
    env = child_environment({"PYTHONPATH": "/elsewhere", "WANDB_RUN_ID": "abc", "WANDB_SWEEP_ID": "s", "PATH": "/bin"})
    assert env["MBMETA_THREADS"] == "1" and env["OMP_NUM_THREADS"] == "1"
    assert "WANDB_RUN_ID" not in env and "WANDB_SWEEP_ID" not in env
    package_root = Path(__file__).resolve().parents[2]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(package_root), "/elsewhere"]


def test_a_wandb_sweep_point_reports_its_own_seed_and_statuses(tmp_path, calls, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "none-seed1")
    experiment = load_experiment(write_experiment(tmp_path / "exp"))
    sweep(experiment, parallel=2).run()
    summary = merge(experiment)
    report = agent_report(summary, plan_jobs(experiment, run="context-seed1"))
    # context-seed1's job evaluates context and context-dp at seed 1: 200 or 300 + 10 + mean(eval 0, 1) + mean(task)
    assert report == {"episode_return/context": 211.0, "episode_return/context-dp": 311.0, "runs/done": 4}
    failed = agent_report(summary, plan_jobs(experiment, run="none-seed1"))
    assert failed == {"runs/failed": 2}


def test_progress_lines_reach_a_redirected_stdout_at_once(tmp_path):
    """`nohup mbmeta sweep ... >> sweep.log`: each progress line is in the file when its step starts."""
    root = write_experiment(tmp_path / "exp")
    script = (
        "import sys, time\n"
        "from mbmeta.runs.experiment import load_experiment\n"
        "from mbmeta.runs.sweep import Sweep, plan_jobs\n"
        f"experiment = load_experiment({str(root)!r})\n"
        "sweep = Sweep(experiment, plan_jobs(experiment), command=sys.argv[1:])\n"
        "sweep._say('start  marker')\n"
        "time.sleep(60)\n"  # killed long before: only a flushed line can be in the file
    )
    out = tmp_path / "sweep.log"
    with open(out, "w") as f:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a user's shell has it
        proc = subprocess.Popen([sys.executable, "-c", script, *FAKE], stdout=f, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while "start  marker" not in out.read_text() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            assert "start  marker" in out.read_text(), out.read_text()
        finally:
            proc.kill()
            proc.wait()

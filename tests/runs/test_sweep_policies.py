"""Reference-policy methods in a sweep: planned without training, run as `mbmeta evaluate --policy`, stamped,
resumed and merged like any method (fake `mbmeta` first, then one real `evaluate --policy` subprocess)."""

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_sweep_runner import read_calls, sweep, write_experiment

from mbmeta.cli import main
from mbmeta.runs.curve import merge_curve
from mbmeta.runs.experiment import load_experiment
from mbmeta.runs.merge import merge, write_merged
from mbmeta.runs.sweep import evaluate_arguments, evaluation_settings, job_commands, plan_jobs

REPO = Path(__file__).resolve().parents[2]
POLICIES = {"random": {"policy": "random"}, "scripted": {"policy": "scripted", "seeds": [0]}}


def with_policies(root: Path, **changes) -> Path:
    """The runner tests' experiment (none, context, context-dp at seeds 0, 1) plus reference policies."""
    write_experiment(root, **changes)
    design = yaml.safe_load((root / "experiment.yaml").read_text())
    design["methods"].update(POLICIES)
    design["report"]["comparisons"].append(["context", "random"])
    (root / "experiment.yaml").write_text(yaml.safe_dump(design, sort_keys=False))
    return root


def test_policy_jobs_train_nothing_and_evaluate_with_the_policy_on_the_experiments_family(tmp_path):
    experiment = load_experiment(with_policies(tmp_path / "exp", evaluate={"tasks": 3, "seeds": [0, 1]}))
    jobs = plan_jobs(experiment)
    assert [j.name for j in jobs][-3:] == ["random-seed0", "random-seed1", "scripted-seed0"]
    random1 = jobs[-2]
    assert random1.training is None and [e.eval_seed for e in random1.evaluations] == [0, 1]
    assert plan_jobs(experiment, run="scripted-seed0")[0].evaluations[0].method == "scripted"
    evaluation = random1.evaluations[1]
    assert evaluate_arguments(experiment, evaluation) == [
        "evaluate", "--policy", "random", "--family", "pendulum", "--policy_seed", "1", "--labels", "random",
        "--split", "test", "--episodes_per_task", "2", "--num_envs", "4", "--seed", "1",
        "--tasks", "3", "--task_design", "balanced", "--out", "results/random-seed1/eval1",
    ]  # fmt: skip
    settings = evaluation_settings(experiment, evaluation)
    assert settings["policy"] == "random" and settings["policy_seed"] == 1 and settings["seed"] == 1
    assert "agent" not in settings and "error_horizon" not in settings  # neither changes a policy's numbers
    assert job_commands("experiments/exp", jobs)[-1] == "mbmeta sweep experiments/exp --run scripted-seed0 --jobs 1"


def test_dry_run_prints_no_training_for_a_policy(tmp_path, capsys):
    evaluate = {"episodes_per_task": 1, "num_envs": 2, "seeds": [0, 1], "every_kept_checkpoint": True}
    root = with_policies(tmp_path / "exp", evaluate=evaluate)
    assert main(["sweep", str(root), "--dry-run", "--methods", "scripted"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"# scripted-seed0 (in {root})" and len(lines) == 3  # two evaluation seeds, no curve line
    assert all(line.startswith("mbmeta evaluate --policy scripted --family pendulum") for line in lines[1:])


def test_policies_are_evaluated_stamped_merged_and_paired_by_seed(tmp_path, calls):
    experiment = load_experiment(with_policies(tmp_path / "exp"))
    outcomes = sweep(experiment, parallel=2).run()
    assert all(o.status == "done" for o in outcomes)
    policy_calls = [c for c in read_calls(calls) if "--policy" in c]
    assert len(policy_calls) == (2 + 1) * 2 and not any("random" in c or "scripted" in c for c in read_calls(calls)
                                                         if c.startswith("train"))  # fmt: skip
    stamp = json.loads((experiment.root / "results" / "random-seed1" / "eval0" / "sweep.json").read_text())
    assert stamp["status"] == "done" and stamp["checkpoint"] is None and stamp["settings"]["policy_seed"] == 1
    summary = merge(experiment)
    methods = summary["metrics"]["episode_return"]["methods"]
    # fake return = base + 10 * policy seed + eval seed + task index; per seed the mean over 2 eval seeds × 2 tasks
    assert methods["random"]["overall"]["per_seed"] == {"0": 51.0, "1": 61.0} and methods["random"]["overall"]["n"] == 2
    assert methods["scripted"]["overall"]["n"] == 1
    difference = summary["metrics"]["episode_return"]["differences"]["context - random"]["overall"]
    assert difference["per_seed"] == {"0": 150.0, "1": 150.0}
    assert difference["verdict"] == "not established"  # the same on both seeds: no spread, nothing established
    runs = [r for r in summary["runs"] if r["method"] == "random"]
    assert len(runs) == 4 and all(r["status"] == "done" and r["training"] is None for r in runs)
    table = write_merged(experiment, summary)[0].read_text()
    assert "| `random` | 2 |" in table and "| `context` − `random` | 2 | +150.0 |" in table
    assert "Reference policies `random` (random), `scripted` (scripted) are not trained" in table
    assert summary["not_in_design"] == []


def test_a_second_sweep_skips_done_policies_and_changed_settings_make_them_stale(tmp_path, calls):
    root = with_policies(tmp_path / "exp")
    experiment = load_experiment(root)
    sweep(experiment, methods=["random"]).run()
    before = len(read_calls(calls))
    assert {o.status for o in sweep(experiment, methods=["random"]).run()} == {"skipped"}
    assert len(read_calls(calls)) == before
    # a model's settings (error horizon, agent) do not concern a policy; its episodes do
    changed = with_policies(root, evaluate={"episodes_per_task": 1, "num_envs": 2, "seeds": [0, 1], "error_horizon": 3,
                                            "agent": {"horizon": 4}})  # fmt: skip
    assert sweep(load_experiment(changed), methods=["random"]).stale_results() == []
    changed = with_policies(root, evaluate={"episodes_per_task": 2, "num_envs": 2, "seeds": [0, 1]})
    assert len(sweep(load_experiment(changed), methods=["random"]).stale_results()) == 4
    assert {r["status"] for r in merge(load_experiment(changed))["runs"] if r["method"] == "random"} == {"stale"}


def test_evaluate_only_runs_the_policies(tmp_path, calls):
    experiment = load_experiment(with_policies(tmp_path / "exp"))
    outcomes = sweep(experiment, train=False, methods=["scripted", "none"]).run()
    statuses = {o.step: o.status for o in outcomes}
    assert statuses["evaluate scripted-seed0/eval1"] == "done" and statuses["evaluate none-seed0/eval0"] == "not run"
    assert not any(c.startswith("train") for c in read_calls(calls))


def test_a_scripted_method_on_a_family_without_a_controller_is_refused_before_anything_runs(tmp_path, capsys):
    root = with_policies(tmp_path / "exp")
    assert main(["sweep", str(root), "--methods", "random", "--jobs", "1"]) == 1  # the design is wrong, whatever runs
    err = capsys.readouterr().err.strip()
    assert err.startswith("mbmeta sweep: error: ") and "\n" not in err
    assert "methods.scripted.policy is 'scripted' but family 'pendulum' has no scripted controller" in err
    assert not (root / "results").exists()


def test_a_real_sweep_of_a_random_policy_merges_into_the_smoke_table(tmp_path):
    root = tmp_path / "smoke"
    shutil.copytree(REPO / "experiments" / "smoke", root, ignore=shutil.ignore_patterns("runs", "results"))
    design = yaml.safe_load((root / "experiment.yaml").read_text())
    design["methods"]["random"] = {"policy": "random", "seeds": [0]}
    (root / "experiment.yaml").write_text(yaml.safe_dump(design, sort_keys=False))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["sweep", str(root), "--methods", "random", "--jobs", "1"]) == 0
    results = json.loads((root / "results" / "random-seed0" / "eval0" / "results.json").read_text())
    assert results["policy"] == "random" and results["family"] == "pendulum" and results["task_design"] == "even"
    assert len(results["episodes"]) == 2 and {e["method"] for e in results["episodes"]} == {"random"}
    summary = json.loads((root / "results" / "summary.json").read_text())
    overall = summary["metrics"]["episode_return"]["methods"]["random"]["overall"]
    mean = sum(e["episode_return"] for e in results["episodes"]) / 2
    assert overall["n"] == 1 and overall["per_seed"]["0"] == pytest.approx(mean)
    assert "| `random` | 1 |" in (root / "results" / "table.md").read_text()
    assert not (root / "runs").exists()  # nothing trained


def test_learning_curves_leave_the_policies_out(tmp_path, calls, monkeypatch):
    monkeypatch.setenv("FAKE_KEEP", "1")
    evaluate = {"episodes_per_task": 1, "num_envs": 2, "seeds": [0], "every_kept_checkpoint": True}
    experiment = load_experiment(with_policies(tmp_path / "exp", evaluate=evaluate))
    outcomes = sweep(experiment, methods=["context", "random"], seeds=[0]).run()
    steps = {o.step: o.status for o in outcomes}
    assert steps["evaluate context-seed0/curve/iteration_001/eval0"] == "done" and steps["evaluate random-seed0/eval0"]
    assert not any("random" in step and "curve" in step for step in steps)
    curve = merge_curve(experiment)
    assert {p["method"] for p in curve["points"]} == {"context"}
    assert {r["method"] for r in curve["runs"]} == {"context", "context-dp"}  # the trained runs' kept checkpoints


def test_a_method_declared_without_a_curve_evaluates_its_final_models_only(tmp_path, calls, monkeypatch):
    monkeypatch.setenv("FAKE_KEEP", "1")
    evaluate = {"episodes_per_task": 1, "num_envs": 2, "seeds": [0], "every_kept_checkpoint": True}
    root = with_policies(tmp_path / "exp", evaluate=evaluate)
    design = yaml.safe_load((root / "experiment.yaml").read_text())
    design["methods"]["context-dp"]["curve"] = False
    (root / "experiment.yaml").write_text(yaml.safe_dump(design, sort_keys=False))
    experiment = load_experiment(root)
    assert experiment.methods["context-dp"].curve is False and experiment.methods["context"].curve is True
    outcomes = sweep(experiment, methods=["context", "context-dp"], seeds=[0]).run()
    steps = {o.step: o.status for o in outcomes}
    assert steps["evaluate context-seed0/curve/iteration_001/eval0"] == "done"
    assert steps["evaluate context-seed0/eval0"] == "done" and steps["evaluate context-dp-seed0/eval0"] == "done"
    assert not any(step.startswith("evaluate context-dp") and "curve" in step for step in steps)
    curve = merge_curve(experiment)
    assert {p["method"] for p in curve["points"]} == {"context"}
    assert {r["method"] for r in curve["runs"]} == {"context"}
    summary = merge(experiment)
    assert summary["metrics"]["episode_return"]["methods"]["context-dp"]["overall"]["n"] == 1


def test_a_curve_setting_that_is_not_a_boolean_is_refused(tmp_path):
    root = with_policies(tmp_path / "exp")
    design = yaml.safe_load((root / "experiment.yaml").read_text())
    design["methods"]["context-dp"]["curve"] = "no"
    (root / "experiment.yaml").write_text(yaml.safe_dump(design, sort_keys=False))
    with pytest.raises(ValueError, match=r"methods\.context-dp\.curve: expected true or false, got 'no'"):
        load_experiment(root)

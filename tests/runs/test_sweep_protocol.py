"""The runner under CaDM's protocol and with learning curves, on a fake ``mbmeta`` (no torch): the commands it runs,
the merged table against hand-computed values, the curve of kept checkpoints, and the design's refusals.

The fake's protocol returns (tests/runs/fake_mbmeta.py): episode i of condition c returns
``base + slope * training seed + eval seed + 100 * iteration + offset[c] + i`` with offsets train 0, c0 −40 (extreme),
c1 −10 (moderate), c2 −20 (moderate), c3 −30 (extreme).
"""

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from mbmeta.runs.curve import merge_curve, write_curve
from mbmeta.runs.experiment import ExperimentError, load_experiment
from mbmeta.runs.merge import headline_table, merge, write_merged
from mbmeta.runs.sweep import Sweep, SweepError, plan_jobs

FAKE = [sys.executable, str(Path(__file__).with_name("fake_mbmeta.py"))]
T_975_2 = 4.302652729749464  # Student-t 97.5 % quantile, 2 degrees of freedom


def write_protocol_experiment(root: Path, evaluate: dict | None = None, **changes) -> Path:
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "train.yaml").write_text("loop:\n  family: cadm_pendulum\n")
    (root / "configs" / "none.yaml").write_text("model:\n  adaptation: none\n")
    (root / "configs" / "context.yaml").write_text("model:\n  adaptation: context\n")
    design = {
        "family": "cadm_pendulum",
        "train": {"configs": ["configs/train.yaml"], "seeds": [0, 1, 2]},
        "methods": {"none": "configs/none.yaml", "context": "configs/context.yaml"},
        "evaluate": {
            "protocol": "cadm",
            "protocol_episodes": 2,
            "num_envs": 2,
            "seeds": [0],
            "every_kept_checkpoint": True,
            "curve_episodes": 1,
            **(evaluate or {}),
        },
        "report": {"comparisons": [["context", "none"]]},
        **changes,
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(design, sort_keys=False))
    return root


@pytest.fixture
def fake(tmp_path, monkeypatch):
    path = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_CALLS", str(path))
    monkeypatch.setenv("FAKE_BASE", json.dumps({"none": 100.0, "context": 200.0}))
    monkeypatch.setenv("FAKE_SLOPE", json.dumps({"none": 10.0, "context": 13.0}))
    monkeypatch.setenv("FAKE_KEEP", "1,2")
    return path


def calls(path: Path) -> list[str]:
    return [line.split(" ", 2)[2] for line in path.read_text().splitlines()] if path.exists() else []


def sweep(experiment, **kwargs):
    return Sweep(experiment, plan_jobs(experiment), command=FAKE, log=lambda line: None, **kwargs)


@pytest.fixture
def swept(tmp_path, fake):
    experiment = load_experiment(write_protocol_experiment(tmp_path / "exp"))
    outcomes = sweep(experiment, parallel=2).run()
    assert all(o.status == "done" for o in outcomes), outcomes
    return experiment


def test_the_runner_evaluates_with_the_protocol_and_every_kept_checkpoint(swept, fake):
    evaluations = [c for c in calls(fake) if c.startswith("evaluate")]
    assert len(evaluations) == 2 * 3 * (1 + 2)  # methods × seeds × (final + 2 kept checkpoints)
    final = "evaluate --protocol cadm --ckpt runs/none-seed0/model.ckpt --labels none --protocol_episodes 2"
    assert f"{final} --num_envs 2 --seed 0 --out results/none-seed0/eval0" in evaluations
    kept = "evaluate --protocol cadm --ckpt runs/context-seed2/checkpoints/iteration_002.ckpt --labels context"
    assert (
        f"{kept} --protocol_episodes 1 --num_envs 2 --seed 0 --out results/context-seed2/curve/iteration_002/eval0"
        in evaluations
    )
    assert not any("--split" in c or "--episodes_per_task" in c for c in evaluations)
    stamp = json.loads((swept.root / "results/context-seed2/curve/iteration_002/eval0/sweep.json").read_text())
    assert (stamp["status"], stamp["iteration"], stamp["transitions"]) == ("done", 2, 2000)
    assert stamp["checkpoint"] == "runs/context-seed2/checkpoints/iteration_002.ckpt"


def test_a_method_may_evaluate_another_s_models_with_cadm_s_estimator(tmp_path, fake):
    from mbmeta.runs.sweep import evaluate_arguments, evaluation_settings

    methods = {
        "none": "configs/none.yaml",
        "none-cadm": {"model_of": "none", "protocol_estimator": "first_finished", "curve": False},
        "none-all": {"model_of": "none", "protocol_estimator": "all"},  # the default, said explicitly
    }
    report = {"comparisons": [["none-cadm", "none"]]}
    experiment = load_experiment(write_protocol_experiment(tmp_path / "exp", methods=methods, report=report))
    assert experiment.methods["none-cadm"].protocol_estimator == "first_finished"
    assert experiment.methods["none-all"].protocol_estimator is None
    by_name = {(e.method, e.seed): e for e in experiment.evaluation_runs()}
    cadm = evaluate_arguments(experiment, by_name[("none-cadm", 1)])
    assert cadm[cadm.index("--protocol_estimator") + 1] == "first_finished"
    assert cadm[cadm.index("--ckpt") + 1] == "runs/none-seed1/model.ckpt"
    for method in ("none", "none-all"):  # unchanged settings: evaluations done before the option stay current
        settings = evaluation_settings(experiment, by_name[(method, 1)])
        assert "protocol_estimator" not in settings
        assert "--protocol_estimator" not in evaluate_arguments(experiment, by_name[(method, 1)])
    assert all(o.status == "done" for o in sweep(experiment, parallel=2).run())
    table, _ = write_merged(experiment, merge(experiment))
    text = table.read_text()
    assert "`none-cadm` is evaluated with CaDM's own estimator instead (`--protocol_estimator first_finished`)" in text


def test_the_merge_reports_each_condition_and_average_per_seed_first(swept):
    summary = merge(swept)
    assert summary["headline"] == "moderate" and summary["protocol"] == "cadm"
    assert summary["conditions"] == ["train", "c0", "c1", "c2", "c3", "moderate", "extreme", "test"]
    methods = summary["metrics"]["episode_return"]["methods"]
    # context, seed s: 200 + 13 s + offset + 0.5 (2 episodes: + 0, + 1); moderate = mean of c1 (−10) and c2 (−20)
    moderate = methods["context"]["moderate"]
    assert moderate["per_seed"] == {"0": 185.5, "1": 198.5, "2": 211.5}
    se = 13.0 / math.sqrt(3)
    assert moderate["mean"] == pytest.approx(198.5) and moderate["se"] == pytest.approx(se) and moderate["n"] == 3
    assert moderate["low"] == pytest.approx(198.5 - T_975_2 * se, rel=1e-9)
    assert moderate["high"] == pytest.approx(198.5 + T_975_2 * se, rel=1e-9)
    assert methods["context"]["extreme"]["per_seed"] == {"0": 165.5, "1": 178.5, "2": 191.5}  # −35
    assert methods["context"]["test"]["per_seed"] == {"0": 175.5, "1": 188.5, "2": 201.5}  # mean of c0..c3: −25
    assert methods["context"]["train"]["per_seed"] == {"0": 200.5, "1": 213.5, "2": 226.5}  # never in the test average
    assert methods["none"]["c1"]["per_seed"] == {"0": 90.5, "1": 100.5, "2": 110.5}
    difference = summary["metrics"]["episode_return"]["differences"]["context - none"]["moderate"]
    assert difference["per_seed"] == {"0": 100.0, "1": 103.0, "2": 106.0}
    assert difference["se"] == pytest.approx(math.sqrt(3)) and difference["n"] == 3
    assert difference["low"] == pytest.approx(103 - T_975_2 * math.sqrt(3), rel=1e-9)
    assert difference["verdict"] == "above"
    assert set(summary["metrics"]["episode_return"]["differences"]["context - none"]) == set(summary["conditions"])


def test_the_table_leads_with_the_moderate_average(swept):
    summary = merge(swept)
    table, _ = write_merged(swept, summary)
    text = table.read_text()
    assert "CaDM's evaluation protocol" in text
    assert "### moderate (mean of c1, c2)" in text
    assert "| `context` | 3 | 198.5 | 7.5 |" in text and "3 done" in text
    assert "| `context` − `none` | 3 | +103.0 | 1.7 | [+95.5, +110.5] | above |" in text
    assert "| moderate | 95.5 [70.7, 120.3] (n = 3) | 198.5 [166.2, 230.8] (n = 3) |" in text  # every condition
    assert headline_table(swept, summary).startswith(f"{swept.name}: episode return, moderate")


def test_the_curve_has_a_point_per_method_and_kept_iteration(swept):
    curve = merge_curve(swept)
    points = {(p["method"], p["iteration"]): p for p in curve["points"]}
    assert sorted(points) == [("context", 1), ("context", 2), ("none", 1), ("none", 2)]
    point = points[("context", 2)]
    assert point["transitions"] == 2000 and point["transitions_per_seed"] == {"0": 2000, "1": 2000, "2": 2000}
    # one episode per condition: 200 + 13 s + 100 × 2 − 15
    assert point["values"]["moderate"]["per_seed"] == {"0": 385.0, "1": 398.0, "2": 411.0}
    assert point["values"]["moderate"]["se"] == pytest.approx(13.0 / math.sqrt(3))
    assert len(curve["runs"]) == 12 and {r["status"] for r in curve["runs"]} == {"done"}
    table, data, plot = write_curve(swept, curve)
    assert "| `context` | 2 | 2,000 | 3 | 398.0 | 7.5 | [365.7, 430.3] |" in table.read_text()
    assert json.loads(data.read_text())["points"] == json.loads(json.dumps(curve["points"]))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_sweep_skips_the_kept_checkpoints_evaluated(swept, fake):
    before = len(calls(fake))
    outcomes = sweep(swept, parallel=2).run()
    assert len(calls(fake)) == before and {o.status for o in outcomes} == {"skipped"}


def test_a_done_curve_point_whose_kept_checkpoint_was_deleted_is_skipped(swept, fake):
    # kept checkpoints are not committed: a fresh clone holds the curve's results but not the files they evaluated
    for checkpoint in (swept.root / "runs").glob("*/checkpoints/*.ckpt"):
        checkpoint.unlink()
    before = len(calls(fake))
    outcomes = {o.step: o.status for o in sweep(swept).run()}
    assert len(calls(fake)) == before
    assert outcomes["evaluate none-seed1/curve/iteration_001/eval0"] == "skipped"
    assert set(outcomes.values()) == {"skipped"}
    statuses = {(r["method"], r["seed"], r["iteration"]): r["status"] for r in merge_curve(swept)["runs"]}
    assert set(statuses.values()) == {"done"}
    # a curve point not yet evaluated still needs its checkpoint
    (swept.root / "results/none-seed1/curve/iteration_001/eval0/sweep.json").unlink()
    (swept.root / "results/none-seed1/curve/iteration_001/eval0/protocol.json").unlink()
    outcomes = {o.step: o.status for o in sweep(swept).run()}
    assert outcomes["evaluate none-seed1/curve/iteration_001/eval0"] == "failed"
    assert len(calls(fake)) == before


def test_a_changed_kept_checkpoint_is_not_evaluated(swept, fake):
    checkpoint = swept.root / "runs/none-seed1/checkpoints/iteration_001.ckpt"
    checkpoint.write_text("damaged")
    (swept.root / "results/none-seed1/curve/iteration_001/eval0/sweep.json").unlink()
    (swept.root / "results/none-seed1/curve/iteration_001/eval0/protocol.json").unlink()
    before = len(calls(fake))
    outcomes = {o.step: o.status for o in sweep(swept).run()}
    assert outcomes["evaluate none-seed1/curve/iteration_001/eval0"] == "failed"
    assert len(calls(fake)) == before
    statuses = {(r["method"], r["seed"], r["iteration"]): r["status"] for r in merge_curve(swept)["runs"]}
    assert statuses[("none", 1, 1)] == "missing"


def test_a_kept_checkpoints_result_of_other_settings_stops_the_sweep(swept):
    path = swept.root / "results/context-seed0/curve/iteration_001/eval0/sweep.json"
    stamp = json.loads(path.read_text())
    path.write_text(json.dumps({**stamp, "settings": {**stamp["settings"], "protocol_episodes": 5}}))
    with pytest.raises(SweepError, match="context-seed0/curve/iteration_001/eval0"):
        sweep(swept).check()
    statuses = {(r["method"], r["seed"], r["iteration"]): r["status"] for r in merge_curve(swept)["runs"]}
    assert statuses[("context", 0, 1)] == "stale"


def test_order_seed_runs_every_methods_seed_before_the_next_seed(tmp_path):
    experiment = load_experiment(write_protocol_experiment(tmp_path / "exp", train={
        "configs": ["configs/train.yaml"], "seeds": [0, 1, 2], "order": "seed"}))  # fmt: skip
    assert [job.name for job in plan_jobs(experiment)][:4] == [
        "none-seed0",
        "context-seed0",
        "none-seed1",
        "context-seed1",
    ]
    default = load_experiment(write_protocol_experiment(tmp_path / "default"))
    assert [job.name for job in plan_jobs(default)][:2] == ["none-seed0", "none-seed1"]


@pytest.mark.parametrize(
    "evaluate, changes, message",
    [
        ({"split": "test"}, {}, "evaluate.split: does not apply with evaluate.protocol cadm"),
        ({"protocol": "other"}, {}, "evaluate.protocol: expected one of cadm or null"),
        ({"protocol": None, "protocol_episodes": 3}, {}, "evaluate.protocol_episodes: applies only with"),
        ({"every_kept_checkpoint": False}, {}, "evaluate.curve_episodes: applies only with"),
        ({"every_kept_checkpoint": "yes"}, {}, "every_kept_checkpoint: expected true or false"),
        ({}, {"report": {"metrics": ["success"]}}, "report.metrics: evaluate.protocol cadm reports episode_return"),
        ({}, {"report": {"conditions": {"light": {"mass": [0.2]}}}}, "report.conditions: .* its own conditions"),
        ({}, {"train": {"configs": ["configs/train.yaml"], "order": "random"}}, "train.order: expected one of"),
        ({}, {"report": {"published": {"values": {"moderate": {"none": 1.0}}}}}, "report.published.source: missing"),
        ({}, {"report": {"published": {"source": "P", "values": {"c9": {"none": 1.0}}}}}, "values.c9: unknown cond"),
        ({}, {"report": {"published": {"source": "P", "values": {"moderate": {"pets": 1.0}}}}}, "moderate.pets: unkn"),
        ({}, {"report": {"published": {"source": "P", "values": {"test": {"none": "high"}}}}}, "expected a finite nu"),
        ({}, {"report": {"published": {"source": " ", "values": {}}}}, "report.published.source: expected a non-e"),
        (
            {},
            {"methods": {"none": "configs/none.yaml", "x": {"model_of": "none", "protocol_estimator": "first"}}},
            "methods.x.protocol_estimator: expected one of all, first_finished",
        ),
        (
            {"protocol": None, "protocol_episodes": None, "every_kept_checkpoint": False, "curve_episodes": None},
            {
                "methods": {
                    "none": "configs/none.yaml",
                    "context": "configs/context.yaml",
                    "x": {"model_of": "none", "protocol_estimator": "first_finished"},
                }
            },
            "methods.x.protocol_estimator: applies only with evaluate.protocol",
        ),
    ],
    ids=[
        "split",
        "protocol",
        "episodes",
        "curve",
        "bool",
        "metrics",
        "conditions",
        "order",
        "published-source",
        "published-condition",
        "published-method",
        "published-number",
        "published-blank",
        "estimator",
        "estimator-without-protocol",
    ],  # fmt: skip
)
def test_a_bad_design_is_refused_naming_the_key(tmp_path, evaluate, changes, message):
    root = write_protocol_experiment(tmp_path / "exp", evaluate, **changes)
    with pytest.raises(ExperimentError, match=message):
        load_experiment(root)


def test_evaluate_only_evaluates_the_kept_checkpoints_of_a_run_stopped_early(swept, fake):
    run = swept.root / "runs" / "context-seed1"
    stamp = json.loads((run / "sweep.json").read_text())
    (run / "sweep.json").write_text(json.dumps({**stamp, "status": "running"}))  # as a kill during training leaves it
    (run / "model.ckpt").unlink()
    shutil.rmtree(swept.root / "results/context-seed1")  # nothing of it evaluated yet
    before = len(calls(fake))
    outcomes = {o.step: o.status for o in sweep(swept, train=False).run()}
    new = calls(fake)[before:]
    assert not any(c.startswith("train") for c in new)
    assert sorted(c.split("--out ")[1] for c in new) == [
        "results/context-seed1/curve/iteration_001/eval0", "results/context-seed1/curve/iteration_002/eval0"
    ]  # fmt: skip
    assert outcomes["evaluate context-seed1/eval0"] == "not run"  # no final model yet
    assert outcomes["evaluate context-seed1/curve/iteration_002/eval0"] == "done"
    assert "train context-seed1" not in outcomes


def test_evaluate_only_leaves_kept_checkpoints_of_other_configs_alone(swept, fake):
    (swept.root / "configs" / "context.yaml").write_text("model:\n  adaptation: context\n  latent_dim: 3\n")
    shutil.rmtree(swept.root / "results/context-seed0/curve")
    shutil.rmtree(swept.root / "results/context-seed0/eval0")
    before = len(calls(fake))
    with pytest.raises(SweepError, match="runs/context-seed0 .* not made from the current configs"):
        sweep(swept, train=False).run()
    assert len(calls(fake)) == before


def test_evaluate_only_does_not_go_with_replace(tmp_path, capsys):
    from mbmeta.cli import main

    root = write_protocol_experiment(tmp_path / "exp")
    assert main(["sweep", str(root), "--evaluate-only", "--replace"]) == 1
    assert "--replace moves runs aside" in capsys.readouterr().err


def test_an_evaluation_another_sweep_is_running_is_left_to_it(swept, fake):
    from mbmeta.runs.run_dir import RunLock

    out = "results/none-seed0/curve/iteration_002/eval0"
    shutil.rmtree(swept.root / out)
    lock = RunLock(swept.root / "runs" / "none-seed0", f".evaluate-{out.replace('/', '_')}.lock")
    before = len(calls(fake))
    with lock:  # held by another sweep
        outcomes = {o.step: o.status for o in sweep(swept).run()}
    assert outcomes["evaluate none-seed0/curve/iteration_002/eval0"] == "not run"
    assert len(calls(fake)) == before and not (swept.root / out).exists()
    assert {o.status for o in sweep(swept).run()} == {"skipped", "done"}  # released: now evaluated


def test_the_last_kept_checkpoint_that_is_the_final_model_reuses_the_final_evaluation(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("FAKE_KEEP_FINAL", "1")  # iteration 2 is model.ckpt itself, as in the real loop
    root = write_protocol_experiment(
        tmp_path / "exp", {"curve_episodes": None}, train={"configs": ["configs/train.yaml"], "seeds": [0]}
    )
    experiment = load_experiment(root)
    outcomes = sweep(experiment).run()
    assert all(o.status == "done" for o in outcomes), outcomes
    evaluations = [c for c in calls(fake) if c.startswith("evaluate")]
    assert len(evaluations) == 2 * (1 + 1)  # per method: the final evaluation and iteration 1; iteration 2 is copied
    assert not any("iteration_002" in c for c in evaluations)
    final, copied = root / "results/none-seed0/eval0", root / "results/none-seed0/curve/iteration_002/eval0"
    assert (copied / "protocol.json").read_bytes() == (final / "protocol.json").read_bytes()
    stamp = json.loads((copied / "sweep.json").read_text())
    assert stamp["reused_from"] == "results/none-seed0/eval0" and stamp["status"] == "done"
    assert stamp["checkpoint_sha256"] == json.loads((final / "sweep.json").read_text())["checkpoint_sha256"]
    points = {(p["method"], p["iteration"]): p for p in merge_curve(experiment)["points"]}
    assert sorted(points) == [("context", 1), ("context", 2), ("none", 1), ("none", 2)]
    assert {r["status"] for r in merge_curve(experiment)["runs"]} == {"done"}
    again = sweep(experiment).run()  # a second sweep finds the copy done
    assert [o.status for o in again if "iteration_002" in o.step] == ["skipped", "skipped"]


def test_a_final_evaluation_with_other_episodes_is_not_reused(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("FAKE_KEEP_FINAL", "1")
    root = write_protocol_experiment(tmp_path / "exp", train={"configs": ["configs/train.yaml"], "seeds": [0]})
    outcomes = sweep(load_experiment(root)).run()  # curve_episodes 1: the curve's settings differ from the final's
    assert all(o.status == "done" for o in outcomes), outcomes
    assert sum("iteration_002" in c for c in calls(fake)) == 2


PUBLISHED = {"source": "A paper (2020), Table 1", "values": {"moderate": {"context": 150.0, "none": 100.0}}}


def test_published_numbers_sit_beside_ours_with_the_shifted_interval(tmp_path, fake):
    design = {"comparisons": [["context", "none"]], "published": PUBLISHED}
    experiment = load_experiment(write_protocol_experiment(tmp_path / "exp", report=design))
    before = merge(experiment)["published"]  # nothing run yet: every row without a result, no verdict
    assert [(r["method"], r["ours"]["n"], r["verdict"]) for r in before["rows"]] == [
        ("context", 0, "—"),
        ("none", 0, "—"),
    ]
    outcomes = sweep(experiment, parallel=2).run()
    assert all(o.status == "done" for o in outcomes), outcomes
    summary = merge(experiment)
    published = summary["published"]
    assert published["source"] == "A paper (2020), Table 1" and published["metric"] == "episode_return"
    context, none = published["rows"]
    # context moderate per seed 185.5, 198.5, 211.5 (see the merge test): ours − 150 = +48.5, s.e. 13 / sqrt(3)
    assert (context["condition"], context["method"], context["published"]) == ("moderate", "context", 150.0)
    assert context["difference"]["mean"] == pytest.approx(48.5) and context["difference"]["n"] == 3
    assert context["difference"]["se"] == pytest.approx(13 / math.sqrt(3))
    assert context["difference"]["low"] == pytest.approx(48.5 - T_975_2 * 13 / math.sqrt(3), rel=1e-9)
    assert context["verdict"] == "above" and context["ours"]["mean"] == pytest.approx(198.5)
    # none moderate per seed 85.5, 95.5, 105.5: ours − 100 = −4.5, interval [−29.3, +20.3]
    assert none["difference"]["mean"] == pytest.approx(-4.5) and none["verdict"] == "not established"
    table, _ = write_merged(experiment, summary)
    text = table.read_text()
    assert "## published numbers: A paper (2020), Table 1" in text
    assert "| moderate | `context` | 150.0 | 198.5 | 3 | +48.5 | [+16.2, +80.8] | above |" in text
    assert "| moderate | `none` | 100.0 | 95.5 | 3 | −4.5 | [−29.3, +20.3] | not established |" in text
    assert text.index("## published numbers") < text.index("## episode return, every condition")
    assert json.loads((experiment.root / "results" / "summary.json").read_text())["published"] == published


def test_an_experiment_without_published_numbers_has_no_such_section(swept):
    summary = merge(swept)
    assert "published" not in summary
    table, _ = write_merged(swept, summary)
    assert "published numbers" not in table.read_text()


@pytest.mark.parametrize("holder", ["another sweep", "mbmeta train"])
def test_a_training_someone_else_is_running_is_left_to_it(tmp_path, fake, holder):
    from mbmeta.runs.run_dir import LOCK_FILE, RunLock
    from mbmeta.runs.sweep import training_lock

    root = write_protocol_experiment(tmp_path / "exp", train={"configs": ["configs/train.yaml"], "seeds": [0]})
    experiment = load_experiment(root)
    run_dir = root / "runs" / "none-seed0"
    run_dir.mkdir(parents=True)
    stamp = '{"status": "running"}'  # the other process's stamp, which a busy sweep must not touch
    (run_dir / "sweep.json").write_text(stamp)
    lock = training_lock(run_dir) if holder == "another sweep" else RunLock(run_dir, LOCK_FILE)
    with lock:
        outcomes = {o.step: o.status for o in sweep(experiment).run()}
    assert outcomes["train none-seed0"] == "not run" and outcomes["evaluate none-seed0/eval0"] == "not run"
    assert outcomes["train context-seed0"] == "done"  # the rest of the sweep went on
    assert not any("runs/none-seed0" in c for c in calls(fake))
    assert (run_dir / "sweep.json").read_text() == stamp and not (run_dir / "model.ckpt").exists()
    outcomes = {o.step: o.status for o in sweep(experiment).run()}  # released: now trained and evaluated
    assert outcomes["train none-seed0"] == "done" and outcomes["evaluate none-seed0/eval0"] == "done"
    assert outcomes["train context-seed0"] == "skipped"


def test_the_training_lock_stays_beside_a_run_moved_aside(tmp_path):
    from mbmeta.runs.sweep import training_lock

    run_dir = tmp_path / "runs" / "none-seed0"
    run_dir.mkdir(parents=True)
    with training_lock(run_dir) as lock:
        assert lock.path == tmp_path / "runs" / ".train-none-seed0.lock"
        shutil.move(str(run_dir), str(tmp_path / "runs" / "replaced"))  # what --replace does to a stale run
        assert lock.path.exists()

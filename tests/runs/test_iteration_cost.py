"""benchmarks/iteration_cost.py: one tiny iteration of an experiment's configs, extrapolated by its formula."""

import importlib.util
import json
import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "iteration_cost.py"


def test_measures_and_extrapolates_the_smoke_cadm_experiment(tmp_path):
    spec = importlib.util.spec_from_file_location("iteration_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "cost.json"
    assert module.main([str(REPO / "experiments" / "smoke_cadm"), "--method", "none", "--steps", "12",
                        "--fit_batches", "3", "--out", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())["methods"]["none"]
    assert report["fit_s_per_batch"] > 0 and report["plan_s_per_step"] > 0 and report["collection_steps"] == 12
    # smoke_cadm: 2 iterations x 1 epoch x 4 batches (256 / 64) + validation (5120 / 64 / 3), 2 x 20 collection
    # steps of 2 environments; the protocol: 5 sets x 200 steps of 2 environments; 2 kept checkpoints x 1 episode
    fit = 2 * 1 * (4 + 5120 / 64 / 3) * report["fit_s_per_batch"]
    collect = 2 * 20 * report["plan_s_per_step"] + 2 * 20 * report["random_s_per_step"]
    assert math.isclose(report["fit_h"], fit / 3600) and math.isclose(report["collect_h"], collect / 3600)
    assert math.isclose(report["evaluate_h"], 5 * 200 * report["plan_s_per_step"] / 3600)
    assert math.isclose(report["curve_h"], 2 * 5 * 200 * report["plan_s_per_step"] / 2 / 3600)
    assert math.isclose(report["run_h"], report["train_h"] + report["evaluate_h"] + report["curve_h"])

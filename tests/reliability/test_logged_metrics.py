"""What the loop logs per iteration besides the fit's losses: collection returns and planner statistics."""

import csv

from pytorch_lightning.loggers import CSVLogger

from mbmeta.runs.loop import run_training

from .conftest import AGENT, tiny_settings


def test_loop_logs_collection_returns_and_planner_statistics(tmp_path):
    logger = CSVLogger(tmp_path / "logs", name="run")
    printed = []
    run_training(**{**tiny_settings(tmp_path / "run"), "logger": logger, "log": printed.append})
    with open(logger.log_dir + "/metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("plan/ms_per_call")]
    assert len(rows) == 1 and rows[0]["loop/iteration"] == "1"  # one row per MPC iteration
    row = {k: float(v) for k, v in rows[0].items() if v}
    options = AGENT["planner"]["init_args"]
    assert row["plan/sequences_per_env_step"] == options["population"] * options["iterations"]
    assert row["plan/ms_per_call"] > 0 and row["plan/sequence_steps_per_s"] > 0
    assert row["plan/fallback_fraction"] == 0.0
    assert row["plan/planned_return_mean"] < 0  # pendulum rewards are costs
    assert "collect/return_mean" in row
    # the realised counterpart of the planned return: the episodes' reward per step over a horizon (discount 1)
    per_step = row["collect/return_mean"] / row["collect/length_mean"]  # every episode has the same length here
    assert abs(row["plan/realised_return_mean"] - AGENT["horizon"] * per_step) < 1e-4 * abs(per_step)
    line = next(m for m in printed if "planned" in m)
    assert f"realised {row['plan/realised_return_mean']:.1f}" in line

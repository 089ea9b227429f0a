"""What the loop logs per iteration besides the fit's losses: collection returns and planner statistics."""

import csv

from pytorch_lightning.loggers import CSVLogger

from mbmeta.runs.loop import _pace_line, run_training

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
    # where the iteration's wall time went, logged and printed (the last iteration: no time left to estimate)
    assert row["time/fit_s"] > 0 and row["time/collect_s"] > 0
    done = next(m for m in printed if m.startswith("iteration 1/1 done in "))
    assert "(fit " in done and ", collect " in done and "left" not in done
    # and kept beside the run, one row per committed iteration, the parts adding up to the whole
    with open(tmp_path / "run" / "iteration_times.csv") as f:
        times = list(csv.DictReader(f))
    assert [int(t["iteration"]) for t in times] == [0, 1]
    assert float(times[1]["fit_s"]) == row["time/fit_s"] and float(times[1]["collect_s"]) == row["time/collect_s"]
    assert float(times[1]["seconds"]) >= row["time/fit_s"] + row["time/collect_s"]
    assert float(times[0]["fit_s"]) == 0.0 and float(times[0]["collect_s"]) == float(times[0]["seconds"]) > 0


def test_the_pace_line_estimates_the_iterations_left_from_those_this_process_ran():
    metrics = {"time/fit_s": 900.0, "time/collect_s": 300.0}
    assert _pace_line(2, 5, [600.0, 1200.0], metrics) == (
        "iteration 2/5 done in 20 min 0 s (fit 15 min 0 s, collect 5 min 0 s); "
        "about 45 min for the 3 left (the mean of the 2 this process ran)"
    )
    assert _pace_line(5, 5, [60.0], {"time/fit_s": 45.0, "time/collect_s": 15.0}) == (
        "iteration 5/5 done in 1 min 0 s (fit 45 s, collect 15 s)"
    )

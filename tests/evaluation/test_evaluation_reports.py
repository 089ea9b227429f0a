"""`evaluation/reports.py`: summaries by method and task, the JSON/CSV files and the prediction-error plot."""

import csv
import json
import math
from dataclasses import asdict

import numpy as np
import pytest
from wandb_records import wandb_run_record  # tests/wandb_records.py

from mbmeta.evaluation.episodes import EpisodeRecord
from mbmeta.evaluation.reports import (
    log_to_wandb,
    measure_means,
    plot_prediction_error,
    success_rates,
    summarise,
    task_label,
    write_results,
)
from mbmeta.provenance import software_versions


def record(method, mass, episode_return, success=None, task_id=0, seed=0, **task):
    return EpisodeRecord(method, task_id, {"mass": mass, **task}, seed, episode_return, 200, False, success)


RECORDS = [
    record("context", 0.5, 1.0, success=True),
    record("context", 0.5, 3.0, success=False, seed=1),
    record("context", 2.0, 5.0, success=True, task_id=1),
    record("none", 0.5, -4.0),
]


def test_summarise_gives_mean_std_and_count_per_method_task_and_overall():
    summary = summarise(RECORDS)
    assert set(summary) == {"context", "none"}
    assert summary["context"]["mass=0.5"] == (2.0, 1.0, 2)
    assert summary["context"]["mass=2"] == (5.0, 0.0, 1)
    mean, std, n = summary["context"]["overall"]
    assert (mean, n) == (3.0, 3) and std == pytest.approx(math.sqrt(8 / 3))  # population std of 1, 3, 5
    assert summary["none"] == {"mass=0.5": (-4.0, 0.0, 1), "overall": (-4.0, 0.0, 1)}


def test_success_rates_count_only_episodes_that_define_success():
    rates = success_rates(RECORDS)
    assert rates == {"context": {"mass=0.5": 0.5, "mass=2": 1.0, "overall": pytest.approx(2 / 3)}}
    assert success_rates([record("none", 1.0, 0.0)]) == {}


def test_task_label_is_short_and_keeps_the_parameter_order():
    assert task_label({"mass": 0.2, "length": 1.6}) == "mass=0.2 length=1.6"
    assert task_label({"length": 1.0, "mass": 1e-05}) == "length=1 mass=1e-05"
    assert task_label({}) == ""


def test_write_results_round_trips_through_json_and_csv(tmp_path):
    records = [*RECORDS, record("none", 2.0, 0.123456, task_id=1, damping=1.5)]  # one task with an extra parameter
    extra = {"family": "pendulum", "prediction_error": {"none": np.array([0.5, 1.5], dtype=np.float32)}}
    write_results(records, tmp_path / "out", extra=extra)

    payload = json.loads((tmp_path / "out" / "results.json").read_text())
    assert payload["episodes"] == [asdict(r) for r in records]
    assert payload["summary"]["context"]["overall"] == {"mean": 3.0, "std": pytest.approx(math.sqrt(8 / 3)), "n": 3}
    assert payload["success_rate"] == json.loads(json.dumps(success_rates(records)))
    assert payload["family"] == "pendulum" and payload["prediction_error"] == {"none": [0.5, 1.5]}
    assert payload["software"] == software_versions()  # what the numbers were measured with

    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["method", "task_id", "task.damping", "task.mass", "seed", "episode_return", "length",
                       "terminated", "success"]  # fmt: skip
    assert len(rows) == 1 + len(records)
    assert rows[1] == ["context", "0", "nan", "0.5", "0", "1.0000", "200", "0", "1"]
    assert rows[4][-1] == ""  # no success defined: an empty cell
    assert rows[5][:6] == ["none", "1", "1.5", "2.0", "0", "0.1235"]


def test_measures_get_their_own_columns_and_means_per_method(tmp_path):
    records = [
        EpisodeRecord("a", 0, {"mass": 1.0}, 0, 1.0, 250, False, True, {"apexes": 7.0, "target_apexes": 5.0}),
        EpisodeRecord("a", 1, {"mass": 2.0}, 0, 2.0, 40, True, False, {"apexes": 1.0, "target_apexes": 0.0}),
        EpisodeRecord("b", 0, {"mass": 1.0}, 0, 3.0, 250, False, None),  # a method without measures
    ]
    assert measure_means(records) == {"a": {"apexes": 4.0, "target_apexes": 2.5}}
    write_results(records, tmp_path)
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["episodes"][0]["measures"] == {"apexes": 7.0, "target_apexes": 5.0}
    assert payload["measure_mean"] == {"a": {"apexes": 4.0, "target_apexes": 2.5}}
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-3:] == ["success", "measure.apexes", "measure.target_apexes"]
    assert rows[2][-2:] == ["1", "0"] and rows[3][-2:] == ["", ""]  # empty where an episode has none


def test_csv_columns_of_pendulum_tasks_are_unambiguous(tmp_path):
    pendulum_record = EpisodeRecord("context", 0, {"mass": 0.5, "length": 1.6}, 0, -10.0, 200, False, True)
    write_results([pendulum_record], tmp_path)
    with open(tmp_path / "results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert len(header) == len(set(header)), header
    assert {"task.length", "length"} <= set(header)  # the rod's length and the episode's, told apart


def test_wandb_table_columns_are_unambiguous_and_the_run_is_named(tmp_path):
    pendulum_record = EpisodeRecord("context", 0, {"mass": 0.5, "length": 1.6}, 0, -10.0, 200, False, True)
    out = tmp_path / "pend-eval"
    run_dir = log_to_wandb(out, [pendulum_record], config={"family": "pendulum"}, init={"tags": ["t1"]})
    tables = list(run_dir.rglob("*.table.json"))
    assert len(tables) == 1, tables
    columns = json.loads(tables[0].read_text())["columns"]
    assert len(columns) == len(set(columns)) and {"task.length", "length"} <= set(columns), columns
    run = wandb_run_record(run_dir)
    assert (run.display_name, run.run_group, list(run.tags)) == ("evaluate-pend-eval", "pend-eval", ["t1"])


def test_write_results_refuses_values_json_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_results(RECORDS, tmp_path, extra={"bad": object()})


def test_plot_prediction_error_writes_a_png(tmp_path):
    path = plot_prediction_error({"context": np.array([0.1, 0.2, 0.4]), "none": np.array([0.3, 0.9, 2.0])},
                                 tmp_path / "error.png", title="test")  # fmt: skip
    assert path == tmp_path / "error.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000

"""The learning curve a run keeps beside it: one row per iteration, a redone iteration replaces its row, a plot."""

import math

from mbmeta.runs.learning_curve import CURVE_FILE, PLOT_FILE, read_learning_curve, record_iteration


def metrics(mean):
    return {"collect/return_mean": mean, "collect/return_min": mean - 1, "collect/return_max": mean + 1,
            "collect/length_mean": 200.0}  # fmt: skip


def test_rows_accumulate_and_a_redone_iteration_replaces_its_row(tmp_path):
    record_iteration(tmp_path, 0, metrics(-900.0), policy="random", episodes=4, transitions=800)
    record_iteration(tmp_path, 1, metrics(-500.0), policy="mpc", episodes=2, transitions=1200)
    record_iteration(tmp_path, 2, metrics(-300.0), policy="mpc", episodes=2, transitions=1600)  # killed before commit
    record_iteration(tmp_path, 2, metrics(-250.0), policy="mpc", episodes=2, transitions=1600, title="t")  # redone
    rows = read_learning_curve(tmp_path)
    assert [(r["iteration"], r["policy"], r["return_mean"]) for r in rows] == [
        (0.0, "random", -900.0), (1.0, "mpc", -500.0), (2.0, "mpc", -250.0)
    ]  # fmt: skip
    assert rows[2]["transitions"] == 1600 and math.isnan(rows[2]["success_rate"])  # pendulum-like: no success
    assert (tmp_path / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_resuming_from_an_earlier_iteration_drops_the_later_rows(tmp_path):
    for iteration in range(3):
        record_iteration(tmp_path, iteration, metrics(float(iteration)), policy="mpc", episodes=1, transitions=1)
    record_iteration(tmp_path, 1, metrics(10.0), policy="mpc", episodes=1, transitions=1)
    assert [r["iteration"] for r in read_learning_curve(tmp_path)] == [0.0, 1.0]
    assert (tmp_path / CURVE_FILE).read_text().splitlines()[0].startswith("iteration,policy,episodes,transitions")


def test_counts_of_earlier_rows_stay_whole_numbers_when_the_file_is_rewritten(tmp_path):
    record_iteration(tmp_path, 0, metrics(-900.0), policy="random", episodes=4, transitions=800)
    record_iteration(tmp_path, 1, metrics(-500.0), policy="mpc", episodes=2, transitions=1200)
    first = (tmp_path / CURVE_FILE).read_text().splitlines()[1]
    assert first.startswith("0,random,4,800,-900.0,"), first  # was "0.0,random,4.0,800.0,..." after a rewrite
    assert [type(r["transitions"]) for r in read_learning_curve(tmp_path)] == [int, int]


def test_a_file_with_float_counts_reads_back_as_ints(tmp_path):
    (tmp_path / CURVE_FILE).write_text(
        "iteration,policy,episodes,transitions,return_mean,return_min,return_max,length_mean,success_rate\n"
        "1.0,mpc,8.0,262467.0,0.5,0.2,1.5,28.75,0.0\n"
    )
    (row,) = read_learning_curve(tmp_path)
    assert (row["iteration"], row["episodes"], row["transitions"]) == (1, 8, 262467)
    assert row["return_mean"] == 0.5 and isinstance(row["return_mean"], float)

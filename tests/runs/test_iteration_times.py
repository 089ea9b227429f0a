"""``iteration_times.csv``: one row per committed iteration, replaced when redone, read back for the status's
estimate of a training's cost and time left; a damaged file is left alone."""

import pytest

from mbmeta.runs.iteration_times import (
    TIMES_FILE,
    mean_iteration_seconds,
    read_iteration_times,
    record_iteration_time,
    training_seconds,
)


def test_rows_are_added_in_order_and_a_redone_iteration_replaces_its_row_and_those_after(tmp_path):
    messages = []
    for iteration, seconds in [(0, 5.0), (1, 60.0), (2, 70.0), (3, 80.0)]:
        record_iteration_time(tmp_path, iteration, seconds, messages.append, fit_s=seconds / 2, collect_s=seconds / 2)
    assert read_iteration_times(tmp_path) == {0: 5.0, 1: 60.0, 2: 70.0, 3: 80.0}
    record_iteration_time(tmp_path, 2, 75.0, messages.append)  # a run rolled back to iteration 1 redoes 2
    assert read_iteration_times(tmp_path) == {0: 5.0, 1: 60.0, 2: 75.0}
    assert messages == []
    header, *rows = (tmp_path / TIMES_FILE).read_text().splitlines()
    assert header == "iteration,seconds,fit_s,collect_s" and rows[1] == "1,60.0,30.0,30.0"
    assert rows[2] == "2,75.0,nan,nan"  # parts not given are not made up


def test_a_damaged_file_is_left_as_it_is_and_named(tmp_path):
    path = tmp_path / TIMES_FILE
    path.write_text("not,a\ntimes table\n")
    messages = []
    record_iteration_time(tmp_path, 4, 60.0, messages.append)
    assert path.read_text() == "not,a\ntimes table\n"
    assert len(messages) == 1 and str(path) in messages[0] and "not recorded" in messages[0]
    with pytest.raises(ValueError, match=TIMES_FILE):
        read_iteration_times(tmp_path)


def test_no_file_reads_as_no_times(tmp_path):
    assert read_iteration_times(tmp_path) == {}
    assert training_seconds({}, 10) is None and mean_iteration_seconds({}, 3) is None


def test_a_trainings_time_counts_unrecorded_iterations_at_the_mean_of_the_recorded_ones():
    # iterations 1-2 ran before the file existed (or their rows were lost); 3 and 4 recorded at 100 s and 300 s
    assert training_seconds({3: 100.0, 4: 300.0}, 4) == 800.0
    assert training_seconds({0: 7.0, 1: 100.0, 2: 300.0}, 2) == 407.0
    assert training_seconds({0: 7.0}, 4) is None  # no fitted iteration: nothing to go by


def test_a_runs_pace_is_the_mean_of_its_committed_fitted_iterations():
    times = {0: 7.0, 1: 100.0, 2: 200.0, 3: 999.0}  # 3 is not committed in this state: a row of a rolled-back run
    assert mean_iteration_seconds(times, completed=2) == 150.0
    assert mean_iteration_seconds({0: 7.0}, completed=0) is None  # iteration 0 (no fit) is no pace

"""The time-left estimate of ``mbmeta sweep --status``: medians of the finished steps per kind and method, the
fraction of a stopped training, the checkpoint evaluations a training will still keep, copied evaluations free, and
the status line through a (fake) sweep's files."""

import json

import pytest
from test_sweep_status import as_interrupted, statuses, swept  # noqa: F401  (the fixture and helpers)

from mbmeta.runs.estimate import CURVE, FINAL, TRAIN, Remaining, Step, estimate_remaining, remaining_line
from mbmeta.runs.iteration_times import record_iteration_time
from mbmeta.runs.status import status_table


def finished_job(method, train, final, curves, copied_last=True):
    """A job whose training and evaluations are done, with these wall times (the last curve point copied)."""
    steps = [Step(TRAIN, method, True, train, left=0.0), Step(FINAL, method, True, final, left=0.0)]
    steps += [Step(CURVE, method, True, s, left=0.0) for s in curves]
    return steps + [Step(CURVE, method, True, None, left=0.0, copied=True)] * copied_last


def test_a_stopped_training_costs_its_fraction_left_plus_its_evaluations_to_come():
    done = finished_job("none", 100.0, 10.0, [5.0, 7.0])  # ran 2 curve points, the third copied
    stopped = [Step(TRAIN, "none", False, left=0.5), Step(FINAL, "none", False)]
    left = estimate_remaining([done, stopped])
    # training 0.5 x 100, its final evaluation 10, and 2 curve points to come at the median 6
    assert left == Remaining(seconds=50.0 + 10.0 + 2 * 6.0, trainings=1, evaluations=3, unknown=0)


def test_curve_points_already_kept_or_done_are_not_counted_twice():
    done = finished_job("none", 100.0, 10.0, [5.0, 7.0])
    stopped = [
        Step(TRAIN, "none", False, left=0.5),
        Step(FINAL, "none", False),
        Step(CURVE, "none", True, 9.0, left=0.0),  # its first kept checkpoint, evaluated
        Step(CURVE, "none", False),  # its second, kept, to do
    ]
    left = estimate_remaining([done, stopped])
    assert left.evaluations == 2  # the final and the declared curve point: 2 expected - 1 done - 1 declared = 0 more
    assert left.seconds == pytest.approx(50.0 + 10.0 + 7.0)  # curve median of 5, 7, 9


def test_a_method_with_nothing_finished_uses_every_methods_medians():
    jobs = [finished_job("none", 100.0, 10.0, [5.0, 7.0]), finished_job("none", 300.0, 30.0, [5.0, 7.0])]
    new = [Step(TRAIN, "context", False), Step(FINAL, "context", False)]
    left = estimate_remaining([*jobs, new])
    assert left == Remaining(seconds=200.0 + 20.0 + 2 * 6.0, trainings=1, evaluations=3, unknown=0)


def test_a_methods_own_median_is_preferred():
    jobs = [finished_job("none", 100.0, 10.0, []), finished_job("context", 1000.0, 50.0, [], copied_last=False)]
    left = estimate_remaining([*jobs, [Step(TRAIN, "context", False), Step(FINAL, "context", False)]])
    assert left.seconds == 1050.0


def test_an_evaluation_to_be_copied_costs_nothing_and_copies_are_not_medians():
    done = finished_job("none", 100.0, 10.0, [4.0])
    todo = [Step(TRAIN, "none", True, 100.0, left=0.0), Step(FINAL, "none", False)]
    todo += [Step(CURVE, "none", False), Step(CURVE, "none", False, left=0.0, copied=True)]
    left = estimate_remaining([done, todo])
    assert left == Remaining(seconds=10.0 + 4.0, trainings=0, evaluations=2, unknown=0)


def test_a_method_with_no_finished_training_is_costed_by_its_running_ones_projection():
    done = finished_job("none", 100.0, 10.0, [])
    running = [Step(TRAIN, "context", False, left=0.75, left_seconds=600.0, projected=800.0)]
    waiting = [Step(TRAIN, "context", False)]
    # the running one at its own pace, the one not started at its method's projection, not at none's 100
    assert estimate_remaining([done, running, waiting]).seconds == 600.0 + 800.0
    assert estimate_remaining([done, waiting]).seconds == 100.0  # no projection: every method's median
    finished = finished_job("context", 500.0, 10.0, [])
    assert estimate_remaining([done, finished, running, waiting]).seconds == 600.0 + 500.0  # finished ones first


def test_steps_of_a_kind_nothing_measures_are_counted_unknown():
    left = estimate_remaining([[Step(TRAIN, "none", False), Step(FINAL, "none", False)]])
    assert left == Remaining(seconds=0.0, trainings=1, evaluations=1, unknown=2)
    line = remaining_line(left, lambda s: f"{s:.0f} s")
    assert line == (
        "left: 1 training(s) and 1 evaluation(s); no finished step of their kinds to estimate their time from yet"
    )


def test_the_line_says_the_time_and_what_it_leaves_out():
    line = remaining_line(Remaining(3600.0, 2, 5, 1), lambda s: f"{s / 3600:.0f} h")
    assert line == (
        "left: 2 training(s) and 5 evaluation(s), 1 of them with no finished step of their kind to estimate from: "
        "about 1 h of one core (from the listed runs' finished steps and recorded iterations)"
    )
    assert remaining_line(Remaining(0.0, 0, 0, 0), str) is None


def restamp(path, seconds):
    stamp = json.loads(path.read_text())
    if "reused_from" not in stamp:
        path.write_text(json.dumps({**stamp, "seconds": seconds}))


def test_the_status_table_ends_with_the_estimate_from_the_stamps(swept):  # noqa: F811
    for stamp in (swept.root / "runs").glob("*/sweep.json"):
        restamp(stamp, 600.0)
    for stamp in (swept.root / "results").rglob("sweep.json"):
        restamp(stamp, 60.0)
    status = statuses(swept)
    assert status_table(swept, list(status.values())).splitlines()[-1].startswith("trainings: ")  # nothing left
    as_interrupted(swept, "none-seed1", iteration=2, iterations=4)
    status = statuses(swept)
    expected_curve = sum(1 for s in status["none-seed0"].steps if s.kind == CURVE and not s.copied)
    left = estimate_remaining([s.steps for s in status.values()])
    assert left == Remaining(300.0 + 60.0 * (1 + expected_curve), 1, 1 + expected_curve, 0)
    assert expected_curve == 2  # FAKE_KEEP 1,2: two kept checkpoints, neither the final model
    last = status_table(swept, list(status.values())).splitlines()[-1]
    assert last == (
        "left: 1 training(s) and 3 evaluation(s): about 8 min of one core "
        "(from the listed runs' finished steps and recorded iterations)"
    )


def test_recorded_iteration_times_override_the_stamps_and_pace_a_stopped_training(swept):  # noqa: F811
    for stamp in (swept.root / "runs").glob("*/sweep.json"):
        restamp(stamp, 600.0)  # a resumed training's stamp: its last part only
    for stamp in (swept.root / "results").rglob("sweep.json"):
        restamp(stamp, 60.0)
    done = swept.root / "runs" / "none-seed0"
    (done / "config.json").write_text(json.dumps({"loop": {"iterations": 4}}))
    for iteration, seconds in [(0, 20.0), (3, 400.0), (4, 500.0)]:  # iterations 1-2 ran before the file existed
        record_iteration_time(done, iteration, seconds, print)
    stopped = as_interrupted(swept, "none-seed1", iteration=2, iterations=4)
    for iteration, seconds in [(0, 10.0), (1, 100.0), (2, 140.0), (3, 900.0)]:  # 3: a row past the committed state
        record_iteration_time(stopped, iteration, seconds, print)
    status = statuses(swept)
    assert status["none-seed0"].training.seconds == 20.0 + 4 * 450.0  # not the stamp's 600
    assert "done in 30 min" in status_table(swept, list(status.values()))
    assert status["none-seed1"].training.pace == 120.0  # its own pace over iterations 1-2
    assert status["none-seed1"].training.projected == 10.0 + 240.0 + 2 * 120.0  # the whole run at that pace
    assert "stopped: 2 of 4 iterations (about 2 min each)" in status_table(swept, list(status.values()))
    left = estimate_remaining([s.steps for s in status.values()])
    assert left == Remaining(240.0 + 60.0 * 3, 1, 3, 0)  # the training at its own pace, evaluations as before


def test_a_damaged_times_file_falls_back_to_the_stamp(swept):  # noqa: F811
    for stamp in (swept.root / "runs").glob("*/sweep.json"):
        restamp(stamp, 600.0)
    done = swept.root / "runs" / "none-seed0"
    (done / "config.json").write_text(json.dumps({"loop": {"iterations": 4}}))
    (done / "iteration_times.csv").write_text("iteration,seconds\n1,abc\n")
    assert statuses(swept)["none-seed0"].training.seconds == 600.0

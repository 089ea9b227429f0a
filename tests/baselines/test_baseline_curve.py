"""The learning curve: round trip through its CSV, and the first step reaching a target."""

import pytest

from mbmeta.baselines.curve import CURVE_COLUMNS, curve_point, read_curve, steps_to_reach, write_curve
from mbmeta.evaluation.episodes import EpisodeRecord


def _records(lengths, success=True):
    return [
        EpisodeRecord("ppo", i, {"mass": 1.0}, 0, float(n), n, n < 500, (n == 500) if success else None)
        for i, n in enumerate(lengths)
    ]


def test_a_curve_survives_its_csv(tmp_path):
    points = [
        curve_point(_records([10, 30]), env_steps=0, train_episodes=0, wall_seconds=0.5),
        curve_point(_records([400, 500]), env_steps=10_000, train_episodes=40, wall_seconds=20.0),
        curve_point(_records([200], success=False), env_steps=20_000, train_episodes=70, wall_seconds=41.0),
    ]
    path = write_curve(points, tmp_path / "learning_curve.csv")
    assert path.read_text().splitlines()[0] == ",".join(CURVE_COLUMNS)
    assert read_curve(path) == points
    assert points[1].length_mean == 450 and points[1].success_rate == 0.5 and points[2].success_rate is None


def test_steps_to_reach_is_the_first_point_at_or_above_the_target():
    points = [
        curve_point(_records([n]), env_steps=s, train_episodes=0, wall_seconds=0.0)
        for s, n in [(0, 20), (10_000, 460), (20_000, 300), (30_000, 500)]
    ]
    assert steps_to_reach(points, "length_mean", 450) == 10_000
    assert steps_to_reach(points, "length_mean", 480) == 30_000
    assert steps_to_reach(points, "length_mean", 501) is None
    with pytest.raises(ValueError, match="unknown curve column"):
        steps_to_reach(points, "balance", 1)


def test_a_file_that_is_not_a_curve_is_named(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="is not a learning curve"):
        read_curve(tmp_path / "x.csv")

"""The loop's iteration 0 read from recorded episodes (``loop.initial_buffer``), and the files it refuses."""

import json

import numpy as np
import pytest

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import get_family
from mbmeta.runs.learning_curve import read_learning_curve
from mbmeta.runs.loop import run_training

from .conftest import ENV, tiny_settings


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """4 random pendulum episodes on train tasks, saved as a buffer file (as ``mbmeta collect`` writes one)."""
    family = get_family("pendulum")
    policy = RandomPolicy(family.action_space, seed=11)
    collection = collect_episodes(policy, 4, family=family, num_envs=2, env_kwargs=dict(ENV), seed=11)
    path = tmp_path_factory.mktemp("recorded") / "robot_log.npz"
    collection.buffer.save(path)
    return path


def test_a_run_starts_from_the_recorded_episodes_and_counts_them(tmp_path, recorded):
    source = EpisodeBuffer.load(recorded)
    run_training(**tiny_settings(tmp_path / "run", initial_buffer=str(recorded)))
    buffer = EpisodeBuffer.load(tmp_path / "run" / "buffer.npz")
    assert buffer.num_episodes == source.num_episodes + 2  # the recorded episodes, then one MPC iteration of 2
    for e in range(source.num_episodes):
        np.testing.assert_array_equal(buffer.episode(e)["obs"], source.episode(e)["obs"])
        assert dict(buffer.task(e)) == dict(source.task(e))
    first = read_learning_curve(tmp_path / "run")[0]
    assert (first["iteration"], first["policy"], first["episodes"]) == (0, "buffer", source.num_episodes)
    assert first["transitions"] == source.num_transitions
    assert first["return_mean"] == pytest.approx(
        np.mean([source.episode(e)["reward"].sum() for e in range(source.num_episodes)])
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["loop"]["initial_buffer"] == str(recorded)


def _refused(tmp_path, path, match):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match) as caught:
        run_training(**tiny_settings(run_dir, initial_buffer=str(path)))
    assert "\n" not in str(caught.value)
    assert not (run_dir / "state.json").exists() and not (run_dir / "buffer.npz").exists()  # nothing recorded


def test_a_missing_file_is_refused_before_the_run_records_anything(tmp_path):
    _refused(tmp_path, tmp_path / "nope.npz", r"loop.initial_buffer '.*nope.npz': no such file")


def test_a_file_that_is_not_a_buffer_is_refused(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("not numpy")
    _refused(tmp_path, path, "not a readable episode buffer")


def test_episodes_of_another_family_are_refused(tmp_path, recorded):
    buffer = EpisodeBuffer.load(recorded)
    buffer.family = "cartpole"
    path = tmp_path / "cartpole.npz"
    buffer.save(path)
    _refused(tmp_path, path, "recorded on family 'cartpole', the run is on 'pendulum'")


def test_other_observation_sizes_are_refused(tmp_path, recorded):
    source = EpisodeBuffer.load(recorded)
    wide = EpisodeBuffer(source.obs_dim + 1, source.action_dim, source.task_names)
    ep = source.episode(0)
    pad = lambda x: np.concatenate([x, np.zeros((len(x), 1))], axis=1)  # noqa: E731
    wide.add_episode(**{**ep, "obs": pad(ep["obs"]), "next_obs": pad(ep["next_obs"])}, task=source.task(0))
    path = tmp_path / "wide.npz"
    wide.save(path)
    _refused(tmp_path, path, r"has observations \[4\] and actions \[1\]; family 'pendulum' has \[3\] and \[1\]")


def test_a_test_split_task_is_refused(tmp_path, recorded):
    source = EpisodeBuffer.load(recorded)
    family = get_family("pendulum")
    (test_task,) = family.sample(np.random.default_rng(0), 1, "test")
    mixed = source.first(2)
    mixed.add_episode(**source.episode(2), task=test_task)
    path = tmp_path / "mixed.npz"
    mixed.save(path)
    _refused(tmp_path, path, "episode 2's task .* is not in the train split of 'pendulum'")


def test_a_resumed_run_no_longer_needs_the_file(tmp_path, recorded):
    copy = tmp_path / "copy.npz"
    copy.write_bytes(recorded.read_bytes())
    run_training(**tiny_settings(tmp_path / "run", initial_buffer=str(copy)))
    copy.unlink()  # the run's own buffer.npz holds the episodes now
    run_training(**tiny_settings(tmp_path / "run", initial_buffer=str(copy), iterations=2))
    assert [row["iteration"] for row in read_learning_curve(tmp_path / "run")] == [0, 1, 2]

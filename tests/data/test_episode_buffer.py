import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mbmeta.data.buffer import BufferFormatError, EpisodeBuffer
from mbmeta.data.recorder import EpisodeRecorder
from mbmeta.envs.family import TaskParams

FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


def make_episode(rng, length, obs_dim=3, action_dim=2, terminated=False):
    obs = rng.standard_normal((length + 1, obs_dim))
    term = np.zeros(length, bool)
    trunc = np.zeros(length, bool)
    (term if terminated else trunc)[-1] = True
    return {
        "obs": obs[:-1],
        "action": rng.uniform(-1, 1, (length, action_dim)),
        "reward": rng.standard_normal(length),
        "next_obs": obs[1:],
        "terminated": term,
        "truncated": trunc,
    }


def filled_buffer(lengths=(5, 8, 3), seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    buf = EpisodeBuffer(family="toy", env_id="mbmeta/Toy-v0", **kwargs)
    for e, length in enumerate(lengths):
        buf.add_episode(**make_episode(rng, length, terminated=e % 2 == 0), task={"mass": 0.5 + e, "length": 1.0})
    return buf


def assert_same_buffer(a: EpisodeBuffer, b: EpisodeBuffer):
    assert a.num_episodes == b.num_episodes and a.num_transitions == b.num_transitions
    for name in FIELDS:
        x, y = a.field(name), b.field(name)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), name  # bit-identical
    assert np.array_equal(a.episode_starts, b.episode_starts)
    assert a.tasks.tobytes() == b.tasks.tobytes()
    assert a.task_names == b.task_names and a.family == b.family and a.env_id == b.env_id


# ----- appending and accessors --------------------------------------------------------------------------------
def test_episodes_are_stored_with_their_tasks_and_slices():
    rng = np.random.default_rng(1)
    eps = [make_episode(rng, n) for n in (4, 6, 2)]
    buf = EpisodeBuffer()
    for e, ep in enumerate(eps):
        assert buf.add_episode(**ep, task=TaskParams.from_dict({"a": e, "b": -e})) == e
    assert buf.num_episodes == 3 and buf.num_transitions == 12
    assert buf.obs_dim == 3 and buf.action_dim == 2 and buf.task_dim == 2 and buf.task_names == ("a", "b")
    assert buf.episode_lengths.tolist() == [4, 6, 2]
    assert np.array_equal(buf.tasks, [[0, 0], [1, -1], [2, -2]])
    assert buf.task(2) == TaskParams.from_dict({"a": 2, "b": -2})
    for e, ep in enumerate(eps):
        got = buf.episode(e)
        np.testing.assert_array_equal(got["obs"], ep["obs"].astype(np.float32))
        np.testing.assert_array_equal(got["truncated"], ep["truncated"])


def test_growth_is_amortised_and_keeps_data():
    rng = np.random.default_rng(2)
    buf = EpisodeBuffer(capacity=4)
    eps = [make_episode(rng, int(n)) for n in rng.integers(1, 30, size=200)]
    for ep in eps:
        buf.add_episode(**ep, task={"m": 1.0})
    total = sum(len(ep["reward"]) for ep in eps)
    assert buf.num_transitions == total
    assert buf._capacity < 2 * total  # doubling: never more than twice what is needed
    np.testing.assert_array_equal(buf.reward, np.concatenate([ep["reward"] for ep in eps]).astype(np.float32))


def test_views_are_read_only():
    buf = filled_buffer()
    with pytest.raises(ValueError):
        buf.obs[0, 0] = 1.0
    with pytest.raises(ValueError):
        buf.tasks[0, 0] = 1.0


@pytest.mark.parametrize("field", ["obs", "next_obs", "action", "reward"])
def test_non_finite_values_are_rejected_naming_the_field(field):
    ep = make_episode(np.random.default_rng(0), 5)
    ep[field] = ep[field].copy()
    ep[field].flat[3] = np.nan
    with pytest.raises(ValueError, match=rf"^{field} contains NaN"):
        EpisodeBuffer().add_episode(**ep, task={"m": 1.0})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ep: ep.update(action=ep["action"][:-1]), "action has 4 steps"),
        (lambda ep: ep.update(obs=ep["obs"][:, 0]), r"obs must have shape \[L, O\]"),
        (lambda ep: ep.update(next_obs=ep["next_obs"][:, :2]), "next_obs has O = 2"),
        (lambda ep: ep["terminated"].__setitem__(1, True), "terminated/truncated is True at step 1"),
        (lambda ep: ep.update(truncated=np.full(5, 0.5)), "truncated must be bool"),
        (lambda ep: [ep.update({k: v[:0]}) for k, v in list(ep.items())], "at least one transition"),
    ],
)
def test_inconsistent_episodes_are_rejected(change, message):
    ep = make_episode(np.random.default_rng(0), 5)
    ep = {k: v.copy() for k, v in ep.items()}
    change(ep)
    buf = EpisodeBuffer()
    with pytest.raises(ValueError, match=message):
        buf.add_episode(**ep, task={"m": 1.0})
    assert buf.num_episodes == 0 and buf.num_transitions == 0


def test_later_episodes_must_match_dims_and_task_names():
    rng = np.random.default_rng(0)
    buf = EpisodeBuffer()
    buf.add_episode(**make_episode(rng, 3), task={"m": 1.0})
    with pytest.raises(ValueError, match="obs has dimension 4 but the buffer's is 3"):
        buf.add_episode(**make_episode(rng, 3, obs_dim=4), task={"m": 1.0})
    with pytest.raises(ValueError, match=r"task parameters \['x'\] do not match the buffer's \['m'\]"):
        buf.add_episode(**make_episode(rng, 3), task={"x": 1.0})
    with pytest.raises(ValueError, match="task contains NaN"):
        buf.add_episode(**make_episode(rng, 3), task={"m": float("nan")})
    assert buf.num_episodes == 1


def test_empty_buffer_raises_where_data_is_needed():
    buf = EpisodeBuffer()
    with pytest.raises(ValueError, match="buffer is empty"):
        buf.statistics()
    with pytest.raises(ValueError, match="obs_dim is unknown"):
        _ = buf.obs_dim
    with pytest.raises(IndexError, match="holds 0 episodes"):
        buf.episode(0)


# ----- statistics ---------------------------------------------------------------------------------------------
def test_statistics_match_numpy_over_a_subset():
    buf = filled_buffer(lengths=(5, 8, 3, 7))
    episodes = [1, 3]
    rows = np.concatenate([np.arange(5, 13), np.arange(16, 23)])
    np.testing.assert_array_equal(buf.transition_indices(episodes), rows)
    stats = buf.statistics(episodes)
    obs, nxt = buf.obs[rows].astype(np.float64), buf.next_obs[rows].astype(np.float64)
    expected = {
        "obs_mean": obs.mean(0),
        "obs_std": obs.std(0),
        "action_mean": buf.action[rows].mean(0),
        "action_std": buf.action[rows].std(0),
        "delta_mean": (nxt - obs).mean(0),
        "delta_std": (nxt - obs).std(0),
        "reward_mean": buf.reward[rows].mean(),
        "reward_std": buf.reward[rows].std(),
    }
    assert set(stats) == set(expected)
    for key, value in expected.items():
        assert stats[key].dtype == torch.float32
        assert stats[key].shape == np.shape(value)
        np.testing.assert_allclose(stats[key].numpy(), value, rtol=1e-5, atol=1e-6)
    all_stats = buf.statistics()
    assert not torch.allclose(all_stats["obs_mean"], stats["obs_mean"])


def test_statistics_clamp_std_of_constant_features():
    buf = EpisodeBuffer()
    n = 6
    obs = np.zeros((n, 2))
    obs[:, 1] = np.arange(n)
    buf.add_episode(obs, np.ones((n, 1)), np.zeros(n), obs, np.zeros(n, bool), np.zeros(n, bool), {"m": 1.0})
    stats = buf.statistics(min_std=1e-3)
    assert stats["obs_std"][0] == pytest.approx(1e-3)
    assert stats["obs_std"][1] > 1
    assert stats["action_std"][0] == pytest.approx(1e-3) and stats["reward_std"] == pytest.approx(1e-3)
    np.testing.assert_allclose(stats["delta_std"].numpy(), 1e-3)


# ----- save / load --------------------------------------------------------------------------------------------
def test_save_load_round_trip_is_bit_identical(tmp_path):
    buf = filled_buffer()
    path = buf.save(tmp_path / "buf.npz")
    loaded = EpisodeBuffer.load(path)
    assert_same_buffer(buf, loaded)
    # a loaded buffer keeps growing correctly
    loaded.add_episode(**make_episode(np.random.default_rng(5), 4), task={"mass": 9.0, "length": 1.0})
    assert loaded.num_episodes == buf.num_episodes + 1
    assert_same_buffer(buf, _first_episodes(loaded, buf.num_episodes))


def _first_episodes(buf, n):
    out = EpisodeBuffer(family=buf.family, env_id=buf.env_id)
    for e in range(n):
        out.add_episode(**buf.episode(e), task=buf.task(e))
    return out


def test_empty_buffer_round_trip(tmp_path):
    EpisodeBuffer(family="toy").save(tmp_path / "empty.npz")
    loaded = EpisodeBuffer.load(tmp_path / "empty.npz")
    assert loaded.num_episodes == 0 and loaded.family == "toy"


def test_failed_replace_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "buf.npz"
    old = filled_buffer(lengths=(4, 4))
    old.save(path)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        filled_buffer(lengths=(9, 9, 9), seed=3).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert_same_buffer(old, EpisodeBuffer.load(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["buf.npz"]  # no temporary file left behind


def test_failure_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "buf.npz"
    old = filled_buffer(lengths=(4, 4))
    old.save(path)
    real_savez = np.savez

    def half_written(file, **arrays):
        real_savez(file, **arrays)
        file.truncate(file.tell() // 2)
        raise KeyboardInterrupt  # even an interrupt must not leave a partial file

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(KeyboardInterrupt):
        filled_buffer(lengths=(9, 9, 9), seed=3).save(path)
    monkeypatch.undo()
    assert_same_buffer(old, EpisodeBuffer.load(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["buf.npz"]


def test_save_overwrites_atomically_with_new_content(tmp_path):
    path = tmp_path / "buf.npz"
    filled_buffer(lengths=(4,)).save(path)
    new = filled_buffer(lengths=(2, 3, 4), seed=7)
    new.save(path)
    assert_same_buffer(new, EpisodeBuffer.load(path))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        EpisodeBuffer.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.1])
def test_truncated_file_raises_naming_the_file(tmp_path, keep):
    path = tmp_path / "buf.npz"
    filled_buffer(lengths=(50, 50)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BufferFormatError, match="buf.npz"):
        EpisodeBuffer.load(path)


def test_garbage_file_raises_naming_the_file(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(BufferFormatError, match="garbage.npz.*corrupt"):
        EpisodeBuffer.load(path)


def test_flipped_bytes_are_detected(tmp_path):
    path = tmp_path / "buf.npz"
    filled_buffer(lengths=(50, 50)).save(path)
    data = bytearray(path.read_bytes())
    mid = len(data) // 3
    data[mid : mid + 16] = bytes(255 - b for b in data[mid : mid + 16])
    path.write_bytes(bytes(data))
    with pytest.raises(BufferFormatError, match="buf.npz"):
        EpisodeBuffer.load(path)  # zip CRC check


def test_other_npz_is_rejected_as_wrong_format(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(BufferFormatError, match=r"other.npz.*missing arrays"):
        EpisodeBuffer.load(path)


def test_wrong_format_tag_and_inconsistent_arrays_are_rejected(tmp_path):
    buf = filled_buffer()
    arrays = {name: buf.field(name) for name in FIELDS}
    arrays.update(episode_starts=buf.episode_starts, tasks=buf.tasks)
    meta = buf.metadata()
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays, metadata=np.array(json.dumps({**meta, "format": "something-else"})))
    with pytest.raises(BufferFormatError, match="not an EpisodeBuffer file"):
        EpisodeBuffer.load(path)
    np.savez(path, **{**arrays, "obs": arrays["obs"][:-1]}, metadata=np.array(json.dumps(meta)))
    with pytest.raises(BufferFormatError, match=r"bad.npz.*obs has shape"):
        EpisodeBuffer.load(path)
    np.savez(path, **arrays, metadata=np.array("{not json"))
    with pytest.raises(BufferFormatError, match="not valid JSON"):
        EpisodeBuffer.load(path)


class _Exploit:
    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_loading_never_unpickles(tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = marker
    buf = filled_buffer()
    arrays = {name: buf.field(name) for name in FIELDS}
    arrays.update(episode_starts=buf.episode_starts, tasks=buf.tasks)
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays, metadata=np.array([exploit], dtype=object))
    with zipfile.ZipFile(path) as zf:
        assert "metadata.npy" in zf.namelist()
    with pytest.raises(BufferFormatError, match="evil.npz"):
        EpisodeBuffer.load(path)
    assert not marker.exists()


# ----- property test ------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    obs_dim=st.integers(1, 5),
    action_dim=st.integers(1, 3),
    task_dim=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_random_buffers_round_trip(tmp_path, lengths, obs_dim, action_dim, task_dim, seed):
    rng = np.random.default_rng(seed)
    buf = EpisodeBuffer(capacity=3)
    episodes = []
    for length in lengths:
        ep = make_episode(rng, length, obs_dim, action_dim, terminated=bool(rng.integers(2)))
        task = {f"p{j}": float(rng.uniform(0.1, 2)) for j in range(task_dim)}
        buf.add_episode(**ep, task=task)
        episodes.append((ep, task))
    assert buf.num_transitions == sum(lengths)
    path = tmp_path / f"prop_{seed}.npz"
    buf.save(path)
    loaded = EpisodeBuffer.load(path)
    assert_same_buffer(buf, loaded)
    for e, (ep, task) in enumerate(episodes):
        got = loaded.episode(e)
        for name in FIELDS:
            np.testing.assert_array_equal(got[name], ep[name].astype(got[name].dtype))
        assert loaded.task(e).as_dict() == task


# ----- recorder -----------------------------------------------------------------------------------------------
def test_recorder_builds_episodes_per_env_and_closes_on_done():
    buf = EpisodeBuffer()
    rec = EpisodeRecorder(buf, num_envs=2)
    rec.begin(0, {"m": 0.0})
    rec.begin(1, {"m": 1.0})
    rng = np.random.default_rng(0)
    ends = {0: 3, 1: 5}
    closed_at = []
    for t in range(5):
        obs = np.stack([np.array([i, t, 0.0]) for i in range(2)])
        done = np.array([t == ends[0] - 1, t == ends[1] - 1])
        mask = np.array([t < ends[0], True])
        closed = rec.add_steps(
            obs, rng.uniform(size=(2, 1)), np.ones(2), obs + [0, 1, 0], done & [1, 0], done & [0, 1], mask
        )
        closed_at += [(t, env, ep) for env, ep in closed]
    assert closed_at == [(2, 0, 0), (4, 1, 1)]
    assert buf.episode_lengths.tolist() == [3, 5]
    assert np.array_equal(buf.episode(0)["obs"][:, :2], [[0, 0], [0, 1], [0, 2]])
    assert buf.episode(0)["terminated"].tolist() == [False, False, True]
    assert buf.episode(1)["truncated"].tolist() == [False] * 4 + [True]
    assert buf.tasks[:, 0].tolist() == [0.0, 1.0]


def test_recorder_finish_flushes_a_partial_episode_and_requires_begin():
    buf = EpisodeBuffer()
    rec = EpisodeRecorder(buf, num_envs=1)
    with pytest.raises(RuntimeError, match="call begin"):
        rec.add_step(0, [0.0], [0.0], 0.0, [1.0], False, False)
    rec.begin(0, {"m": 1.0})
    rec.add_step(0, [0.0], [0.0], 0.0, [1.0], False, False)
    assert rec.pending(0) == 1
    assert rec.finish(0) == 0
    assert buf.num_transitions == 1 and not buf.truncated[0]
    assert rec.finish(0) is None

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.data.segments import (
    SegmentSampler,
    gather_segments,
    split_by_task,
    split_episodes,
    to_meta_batch,
    train_val_split,
)
from mbmeta.types import MetaBatch


def encoded_buffer(lengths, tasks=None):
    """obs = [episode, step], next_obs = [episode, step + 1], reward = 1000 * episode + step."""
    buf = EpisodeBuffer()
    for e, length in enumerate(lengths):
        steps = np.arange(length)
        obs = np.stack([np.full(length, e), steps], axis=1)
        trunc = np.zeros(length, bool)
        trunc[-1] = True
        task = {"mass": float(e if tasks is None else tasks[e])}
        buf.add_episode(obs, obs[:, :1] * 0 + e, 1000 * e + steps, obs + [0, 1], np.zeros(length, bool), trunc, task)
    return buf


def check_segments(buf, index, k, m, pad):
    arrays = gather_segments(buf, index)
    ctx, tgt, mask = arrays["context_obs"], arrays["target_obs"], arrays["context_mask"]
    assert ctx.shape == (len(index.episode), k, 2) and tgt.shape == (len(index.episode), m, 2)
    lengths = buf.episode_lengths
    for b, episode in enumerate(index.episode):
        # targets: consecutive steps of ONE episode, inside it
        assert np.all(tgt[b, :, 0] == episode)
        t0 = tgt[b, 0, 1]
        assert np.array_equal(tgt[b, :, 1], t0 + np.arange(m))
        assert t0 + m <= lengths[episode]
        # context: the K steps right before t0 (masked slots only before the episode start, zeroed)
        expected_steps = t0 - k + np.arange(k)
        assert np.array_equal(mask[b], expected_steps >= 0)
        assert np.all(ctx[b, mask[b], 0] == episode)
        assert np.array_equal(ctx[b, mask[b], 1], expected_steps[mask[b]])
        assert np.all(ctx[b, ~mask[b]] == 0)
        if not pad:
            assert mask[b].all()
        # next_obs of the last context step is the first target's obs: context immediately precedes targets
        if mask[b, -1]:
            assert np.array_equal(arrays["context_next_obs"][b, -1], tgt[b, 0])
        assert arrays["task"][b, 0] == buf.tasks[episode, 0]


@pytest.mark.parametrize("pad", [False, True])
def test_segments_stay_in_one_episode_and_context_precedes_targets(pad):
    buf = encoded_buffer([3, 25, 12, 7, 40])
    sampler = SegmentSampler(buf.episode_starts, 4, 3, pad_context=pad)
    index = sampler.sample(np.random.default_rng(0), 500)
    check_segments(buf, index, 4, 3, pad)


def test_windows_cover_every_valid_position_exactly_once():
    lengths = [3, 25, 12, 7, 40]
    k, m = 4, 3
    buf = encoded_buffer(lengths)
    sampler = SegmentSampler(buf.episode_starts, k, m)
    expected = sum(max(0, n - k - m + 1) for n in lengths)
    assert sampler.num_windows == expected
    index = sampler.windows(np.arange(expected))
    pairs = {
        (int(e), int(t))
        for e, t in zip(index.episode, index.target[:, 0] - buf.episode_starts[index.episode], strict=True)
    }
    assert len(pairs) == expected
    assert pairs == {(e, t) for e, n in enumerate(lengths) for t in range(k, n - m + 1)}
    assert sampler.num_skipped == 1  # the 3-step episode
    assert 0 not in set(index.episode.tolist())


def test_sampling_is_uniform_over_windows():
    buf = encoded_buffer([10, 100])
    sampler = SegmentSampler(buf.episode_starts, 2, 3)  # 6 and 96 windows
    index = sampler.sample(np.random.default_rng(0), 20_000)
    frac = np.mean(index.episode == 0)
    assert frac == pytest.approx(6 / 102, abs=0.01)


def test_padded_windows_start_early_and_respect_min_context():
    buf = encoded_buffer([12])
    k, m = 5, 3
    sampler = SegmentSampler(buf.episode_starts, k, m, pad_context=True, min_context=2)
    index = sampler.windows(np.arange(sampler.num_windows))
    real = index.context_mask.sum(1)
    assert real.min() == 2 and real.max() == k
    assert sampler.num_windows == 12 - m - 2 + 1
    check_segments(buf, index, k, m, pad=True)
    zero_ctx = SegmentSampler(buf.episode_starts, k, m, pad_context=True, min_context=0)
    assert zero_ctx.windows(np.array([0])).context_mask.sum() == 0


def test_same_generator_seed_same_segments():
    buf = encoded_buffer([30, 30, 30])
    sampler = SegmentSampler(buf.episode_starts, 5, 5)
    a = sampler.sample(np.random.default_rng(7), 64)
    b = sampler.sample(np.random.default_rng(7), 64)
    c = sampler.sample(np.random.default_rng(8), 64)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a.target, c.target)


def test_no_long_enough_episode_names_k_m_and_longest():
    buf = encoded_buffer([5, 9, 3])
    with pytest.raises(ValueError, match=r"K=6 .*M=4 .*need length >= K \+ M = 10.*has 9 steps"):
        SegmentSampler(buf.episode_starts, 6, 4)
    with pytest.raises(ValueError, match="context_length"):
        SegmentSampler(buf.episode_starts, 0, 4)
    with pytest.raises(ValueError, match="target_length"):
        SegmentSampler(buf.episode_starts, 2, -1)
    # padding only needs min_context + M steps
    assert SegmentSampler(buf.episode_starts, 6, 4, pad_context=True).num_windows > 0


def test_sampler_restricted_to_given_episodes():
    buf = encoded_buffer([20, 20, 20, 20])
    sampler = SegmentSampler(buf.episode_starts, 3, 3, episodes=np.array([1, 3]))
    index = sampler.sample(np.random.default_rng(0), 300)
    assert set(index.episode.tolist()) == {1, 3}


def test_fixed_sample_is_distinct_and_sorted():
    buf = encoded_buffer([30, 30])
    sampler = SegmentSampler(buf.episode_starts, 3, 3)
    index = sampler.sample_fixed(np.random.default_rng(0), 20)
    keys = index.target[:, 0]
    assert len(set(keys.tolist())) == 20 and np.all(np.diff(keys) > 0)
    everything = sampler.sample_fixed(np.random.default_rng(0), 10_000)
    assert everything.target.shape[0] == sampler.num_windows


# ----- splits -------------------------------------------------------------------------------------------------
def test_split_by_episode_is_a_partition():
    train, val = split_episodes(20, 0.25, np.random.default_rng(0))
    assert len(val) == 5 and len(train) == 15
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(20))
    t2, v2 = split_episodes(20, 0.25, np.random.default_rng(0))
    assert np.array_equal(val, v2)


def test_split_by_task_holds_out_whole_tasks():
    rng = np.random.default_rng(0)
    task_values = rng.choice([0.75, 0.8, 0.9, 1.0, 1.1, 1.2, 1.25], size=(60, 2))
    train, val = split_by_task(task_values, 0.3, np.random.default_rng(1))
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(60))
    train_tasks = {tuple(t) for t in task_values[train]}
    val_tasks = {tuple(t) for t in task_values[val]}
    assert val_tasks and train_tasks
    assert not train_tasks & val_tasks  # no validation task in training
    n_tasks = len(train_tasks | val_tasks)
    assert len(val_tasks) == round(0.3 * n_tasks)


def test_split_errors():
    with pytest.raises(ValueError, match="val_fraction"):
        split_episodes(10, 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot split 1 episodes"):
        split_episodes(1, 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot split 1 distinct tasks"):
        split_by_task(np.ones((8, 2)), 0.2, np.random.default_rng(0))
    assert split_episodes(1, 0.0, np.random.default_rng(0))[1].size == 0
    buf = encoded_buffer([5, 5])
    with pytest.raises(ValueError, match="unknown split_by 'tasks'"):
        train_val_split(buf, 0.5, "tasks", np.random.default_rng(0))


# ----- meta batch ---------------------------------------------------------------------------------------------
def test_to_meta_batch_shapes_and_dtypes():
    buf = encoded_buffer([20, 20], tasks=[0.5, 1.5])
    index = SegmentSampler(buf.episode_starts, 4, 6).sample(np.random.default_rng(0), 8)
    batch = to_meta_batch(gather_segments(buf, index))
    assert isinstance(batch, MetaBatch)
    assert batch.context.obs.shape == (8, 4, 2) and batch.context.action.shape == (8, 4, 1)
    assert batch.context.reward.shape == (8, 4) and batch.context.terminated.shape == (8, 4)
    assert batch.target.next_obs.shape == (8, 6, 2) and batch.task.shape == (8, 1)
    for t in (*batch.context, *batch.target, batch.task):
        assert t.dtype in (torch.float32, torch.bool)
    assert batch.target.terminated.dtype == torch.bool and batch.task.dtype == torch.float32
    assert torch.equal(batch.task[:, 0], torch.where(batch.target.obs[:, 0, 0] == 0, 0.5, 1.5))


# ----- property test ------------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    k=st.integers(1, 8),
    m=st.integers(1, 8),
    pad=st.booleans(),
    seed=st.integers(0, 1000),
    source=st.sampled_from(["preceding", "episode"]),
)
def test_segment_invariants_hold_for_random_buffers(lengths, k, m, pad, seed, source):
    buf = encoded_buffer(lengths)
    first_t0 = 1 if pad else k
    need = m + first_t0 if source == "preceding" else max(m + first_t0, 2 * k + m - 1)
    if max(lengths) < need:
        with pytest.raises(ValueError, match=f"K={k} .*M={m} "):
            SegmentSampler(buf.episode_starts, k, m, pad_context=pad, context_source=source)
        return
    sampler = SegmentSampler(buf.episode_starts, k, m, pad_context=pad, context_source=source)
    assert sampler.num_windows == sum(n - m - first_t0 + 1 for n in lengths if n >= need)
    index = sampler.sample(np.random.default_rng(seed), 50)
    if source == "preceding":
        check_segments(buf, index, k, m, pad)
    else:
        check_episode_contexts(buf, index, k, m)


# ----- context_source="episode" ----------------------------------------------------------------------------------
def check_episode_contexts(buf, index, k, m):
    """Contexts are K consecutive steps of the targets' episode, clear of the targets; the mask is "preceding"'s."""
    arrays = gather_segments(buf, index)
    ctx, tgt, mask = arrays["context_obs"], arrays["target_obs"], arrays["context_mask"]
    lengths = buf.episode_lengths
    for b, episode in enumerate(index.episode):
        assert np.all(tgt[b, :, 0] == episode)
        t0 = tgt[b, 0, 1]
        assert np.array_equal(tgt[b, :, 1], t0 + np.arange(m))
        assert np.array_equal(mask[b], t0 - k + np.arange(k) >= 0)
        rows = index.context[b]
        assert np.array_equal(rows, rows[0] + np.arange(k))  # consecutive
        steps = rows - buf.episode_starts[episode]
        assert steps[0] >= 0 and steps[-1] < lengths[episode]  # inside the same episode
        assert steps[-1] < t0 or steps[0] >= t0 + m  # never overlapping the targets
        assert np.all(ctx[b, mask[b], 0] == episode) and np.all(ctx[b, ~mask[b]] == 0)


@pytest.mark.parametrize("pad", [False, True])
def test_episode_contexts_come_from_the_same_episode_and_miss_the_targets(pad):
    buf = encoded_buffer([3, 25, 12, 7, 40])
    sampler = SegmentSampler(buf.episode_starts, 4, 3, pad_context=pad, context_source="episode")
    assert 0 not in sampler.episodes and 3 not in sampler.episodes  # shorter than 2K + M - 1 = 10 steps
    index = sampler.sample(np.random.default_rng(0), 2000)
    check_episode_contexts(buf, index, 4, 3)
    # both sides of the targets occur, and the preceding window is not favoured
    t0 = index.target[:, 0]
    after = index.context[:, 0] > index.target[:, -1]
    assert 0.2 < after.mean() < 0.8
    assert (index.context[:, -1] == t0 - 1).mean() < 0.2


def test_episode_contexts_are_uniform_over_the_free_windows():
    buf = encoded_buffer([30])
    k, m = 4, 3
    sampler = SegmentSampler(buf.episode_starts, k, m, context_source="episode")
    target = sampler.windows(np.full(30_000, 10), np.random.default_rng(1))  # t0 = 14
    starts = target.context[:, 0]
    free = [c for c in range(30 - k + 1) if c + k <= 14 or c >= 14 + m]
    assert sorted(np.unique(starts)) == free
    counts = np.bincount(starts, minlength=30)[free]
    expected = 30_000 / len(free)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))  # multinomial: ±5 sd


def test_episode_contexts_are_seeded_and_need_a_generator():
    buf = encoded_buffer([25, 40])
    sampler = SegmentSampler(buf.episode_starts, 3, 2, context_source="episode")
    a, b = (sampler.sample(np.random.default_rng(5), 64) for _ in range(2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="needs rng"):
        sampler.windows(np.arange(4))
    with pytest.raises(ValueError, match="context_source must be one of"):
        SegmentSampler(buf.episode_starts, 3, 2, context_source="elsewhere")


def test_episode_contexts_name_the_length_they_need():
    buf = encoded_buffer([9, 8])  # long enough for K=4, M=3 preceding (7), not for 2K + M - 1 = 10
    SegmentSampler(buf.episode_starts, 4, 3)
    with pytest.raises(ValueError, match=r"2K \+ M - 1\) with context_source='episode' = 10, .* has 9 steps"):
        SegmentSampler(buf.episode_starts, 4, 3, context_source="episode")

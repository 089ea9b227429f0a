"""Open-loop prediction error of trained models on shared test data, by horizon and by task."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.data.segments import SegmentSampler, gather_segments, to_meta_batch
from mbmeta.envs.family import TaskFamily
from mbmeta.evaluation.reports import task_label
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import TaskParams


def test_data(
    family: TaskFamily,
    tasks: Sequence[TaskParams],
    episodes_per_task: int = 1,
    seed: int = 0,
    *,
    min_length: int = 0,
    max_extra_rounds: int = 4,
) -> EpisodeBuffer:
    """Random-action episodes on the given tasks: shared data on which every model's prediction error is measured.

    Args:
        family: the task family.
        tasks: the tasks; each gets ``episodes_per_task`` episodes.
        episodes_per_task: episodes per task.
        seed: seeds the actions and environments.
        min_length: episodes that terminate early (a juggler dropping its ball) may all be too short for an error
            segment of K + H steps; while some task has no episode of at least ``min_length`` steps, one more
            episode is collected for each such task, for at most ``max_extra_rounds`` rounds (the extra episodes
            stay in the buffer: every episode counts, long or short).
        max_extra_rounds: bound on those rounds.
    """
    space = family.action_space
    launches = [t for t in tasks for _ in range(episodes_per_task)]
    buffer = collect_episodes(
        RandomPolicy(space, seed=seed), len(launches), family=family, tasks=launches, num_envs=4, seed=seed
    ).buffer
    for extra in range(1, max_extra_rounds + 1):
        long_episodes = np.flatnonzero(buffer.episode_lengths >= min_length)
        measurable = {task_label(buffer.task(int(e)).as_dict()) for e in long_episodes}
        short = [t for t in tasks if task_label(t.as_dict()) not in measurable]
        if not short:
            break
        round_seed = seed + 100_003 * extra  # fresh actions and env seeds for each round
        buffer.extend(
            collect_episodes(
                RandomPolicy(space, seed=round_seed),
                len(short),
                family=family,
                tasks=short,
                num_envs=4,
                seed=round_seed,
            ).buffer
        )
    return buffer


def prediction_error(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    *,
    context_length: int = 10,
    horizon: int = 10,
    segments: int = 512,
    seed: int = 0,
) -> np.ndarray:
    """``[H]`` open-loop multi-step prediction error at horizons 1..H on ``buffer``'s episodes.

    The error is squared error in units of ``buffer``'s own per-dimension observation std (not the model's
    normaliser), so every model measured on the same buffer is measured in the same units, whatever data it was
    trained on.
    """
    return _segment_error(module, buffer, None, context_length, horizon, segments, seed, observation_scale(buffer))


def prediction_error_by_task(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    *,
    context_length: int = 10,
    horizon: int = 10,
    segments_per_task: int = 128,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``{task label: [H] error}``: :func:`prediction_error` on each task's episodes of ``buffer`` separately.

    The units are still the whole buffer's observation std, so tasks compare with each other and with the overall
    curve. Squared errors are heavy-tailed (one hard task can dominate a mean over tasks); the per-task curves and
    their median show how the error is spread. Tasks none of whose episodes is long enough for a segment
    (``context_length + horizon`` steps; e.g. a juggler task whose random-action episodes all drop the ball early)
    are left out of the dict rather than failing the whole measurement.
    """
    scale = observation_scale(buffer)
    groups: dict[str, list[int]] = defaultdict(list)
    lengths = buffer.episode_lengths
    for episode in range(buffer.num_episodes):
        if lengths[episode] >= context_length + horizon:
            groups[task_label(buffer.task(episode).as_dict())].append(episode)
    return {
        label: _segment_error(
            module, buffer, np.array(episodes), context_length, horizon, segments_per_task, seed, scale
        )
        for label, episodes in groups.items()
    }


@torch.no_grad()
def _segment_error(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    episodes: np.ndarray | None,
    context_length: int,
    horizon: int,
    segments: int,
    seed: int,
    scale: torch.Tensor,
) -> np.ndarray:
    sampler = SegmentSampler(buffer.episode_starts, context_length, horizon, episodes=episodes)
    index = sampler.sample_fixed(np.random.default_rng(seed), segments)
    batch = to_meta_batch(gather_segments(buffer, index))
    device = next(module.parameters()).device
    batch = type(batch)(*(_to(x, device) for x in batch))
    return module.dynamics.multi_step_error(batch, scale=scale.to(device)).cpu().numpy()


def observation_scale(buffer: EpisodeBuffer, min_std: float = 1e-6) -> torch.Tensor:
    """``[O]`` float32 std of each observation dimension over ``buffer`` (1 where constant, as normalisers do)."""
    std = buffer.statistics(min_std=min_std)["obs_std"]  # clamped to min_std; the normaliser's rule (1) instead:
    return torch.where(std <= min_std, torch.ones_like(std), std)


def _to(value: Any, device: torch.device) -> Any:
    if value is None:
        return None
    if isinstance(value, tuple):
        return type(value)(*(_to(v, device) for v in value))
    return value.to(device)

"""Iteration 0 from recorded episodes: ``loop.initial_buffer`` instead of collecting with the initial policy.

A run may start from episodes recorded elsewhere: ``mbmeta collect``, an :class:`~mbmeta.data.recorder.EpisodeRecorder`
in someone's own control loop on their robot, or any :meth:`EpisodeBuffer.save` file. They must fit the run: the
family's observation and action sizes and task parameter names, every task in the family's train split (the loop
meta-trains on train tasks only), and, if the file names a family, the run's. Their transitions count in the run's
budget exactly as collected ones do (``learning_curve.csv``, ``state.json``).
"""

from __future__ import annotations

from pathlib import Path

from mbmeta.control.collection import EpisodeStats
from mbmeta.data.buffer import BufferFormatError, EpisodeBuffer
from mbmeta.envs.family import TaskFamily

SOURCE_POLICY = "buffer"  # the learning curve's policy of an iteration 0 read from a file


def load_initial_buffer(path: str | Path, family: TaskFamily) -> EpisodeBuffer:
    """Read ``loop.initial_buffer`` and check that its episodes fit a run of ``family``.

    Returns:
        The buffer (its episodes become the run's first ones).

    Raises:
        ValueError: one line naming the file and what does not fit (missing, unreadable, empty, another family,
            other observation/action sizes or task names, a task outside the train split).
    """
    where = f"loop.initial_buffer {str(path)!r}"
    try:
        buffer = EpisodeBuffer.load(path)
    except FileNotFoundError as err:
        raise ValueError(f"{where}: no such file") from err
    except BufferFormatError as err:
        raise ValueError(f"{where}: not a readable episode buffer ({err})") from err
    if buffer.num_episodes == 0:
        raise ValueError(f"{where} holds no episodes")
    if buffer.family is not None and buffer.family != family.name:
        raise ValueError(f"{where} was recorded on family {buffer.family!r}, the run is on {family.name!r}")
    sizes = (buffer.obs_dim, buffer.action_dim)
    if sizes != (family.obs_dim, family.action_dim):
        raise ValueError(
            f"{where} has observations [{buffer.obs_dim}] and actions [{buffer.action_dim}]; family {family.name!r} "
            f"has [{family.obs_dim}] and [{family.action_dim}]"
        )
    if tuple(buffer.task_names) != tuple(family.parameter_names):
        raise ValueError(
            f"{where} has task parameters {list(buffer.task_names)}; family {family.name!r} has "
            f"{list(family.parameter_names)}"
        )
    for episode in range(buffer.num_episodes):
        task = buffer.task(episode)
        if not family.in_split(task, "train"):
            raise ValueError(
                f"{where}: episode {episode}'s task {dict(task)} is not in the train split of {family.name!r} "
                "(the loop meta-trains on train tasks only)"
            )
    if buffer.family is None:
        buffer.family = family.name
    return buffer


def episode_stats(buffer: EpisodeBuffer, family: TaskFamily) -> list[EpisodeStats]:
    """Per-episode summaries of a buffer's episodes, as collection reports them (for the iteration's metrics)."""
    stats = []
    for e in range(buffer.num_episodes):
        episode = buffer.episode(e)
        stats.append(
            EpisodeStats(
                episode=e,
                launch=e,
                env_index=0,
                task=dict(buffer.task(e)),
                episode_return=float(episode["reward"].sum()),
                length=len(episode["reward"]),
                terminated=bool(episode["terminated"][-1]),
                success=family.success(episode),
                measures=family.measures(episode),
            )
        )
    return stats

"""Closed-loop evaluation: the MPC agent with a trained model on a list of tasks, every method alike.

Every method is evaluated with the same tasks, environment seeds and planner settings, so that the numbers compare.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from gymnasium.vector import VectorEnv

from mbmeta.control.collection import EpisodeStats, collect_episodes
from mbmeta.control.factory import make_agent
from mbmeta.control.policy import Policy
from mbmeta.control.settings import AgentSettings
from mbmeta.envs.family import Choice, TaskFamily
from mbmeta.evaluation.metrics import realised_horizon_return
from mbmeta.evaluation.progress import episode_progress
from mbmeta.evaluation.task_design import TaskDesign, subsample_grid
from mbmeta.models.latent_range import LatentRange
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import Split, TaskParams


@dataclass(frozen=True)
class EpisodeRecord:
    """One evaluation episode.

    Attributes:
        method: the model's name (its adaptation method, or a label given by the caller).
        task_id: index of the task in the evaluated task list.
        task: the task parameters.
        seed: the environment seed of the episode.
        episode_return: sum of rewards.
        length: steps.
        terminated: ended in a terminal state (False: time limit).
        success: reached the family's goal (``TaskFamily.success``); None where the family defines none.
        measures: the family's numbers explaining the outcome (``TaskFamily.measures``), e.g. target bounces.
    """

    method: str
    task_id: int
    task: dict[str, float]
    seed: int
    episode_return: float
    length: int
    terminated: bool
    success: bool | None = None
    measures: dict[str, float] = field(default_factory=dict)


def evaluation_tasks(
    family: TaskFamily,
    split: Split = "test",
    count: int | None = None,
    seed: int = 0,
    design: TaskDesign = "balanced",
) -> list:
    """The tasks to evaluate on: every value combination of a discrete split, else ``count`` sampled tasks.

    Args:
        family: the task family.
        split: ``"test"`` (out of distribution) or ``"train"``.
        count: number of tasks to sample when the split has intervals, or to subsample a grid with ``design``;
            None keeps the whole grid (and samples 8 tasks from a continuous split).
        seed: seeds sampling (and the balanced design's draws).
        design: how a grid is subsampled: ``balanced`` (each parameter's values equally often, parameters
            uncorrelated) or ``even`` (evenly spaced rows of the lexicographic grid; ties parameters together,
            kept for the experiments that used it); see :mod:`mbmeta.evaluation.task_design`.

    Returns:
        A list of :class:`TaskParams`, in a fixed order (grid order for a grid).
    """
    regions = family.regions(split)
    if all(isinstance(region[name], Choice) for region in regions for name in family.parameter_names):
        grid: dict[tuple, TaskParams] = {}
        for region in regions:
            values = [region[name].values for name in family.parameter_names]
            for combo in itertools.product(*values):
                grid.setdefault(combo, TaskParams(tuple(zip(family.parameter_names, combo, strict=True))))
        tasks = list(grid.values())
        if count is not None:
            tasks = [tasks[i] for i in subsample_grid(list(grid), count, design, seed)]
        return tasks
    return family.sample(np.random.default_rng(seed), 8 if count is None else count, split)


class Evaluation(NamedTuple):
    """What :func:`evaluate_agent` returns.

    Attributes:
        records: one :class:`EpisodeRecord` per episode, sorted by task and seed.
        plan_stats: the agent's planning figures over all episodes (``plan/ms_per_call``, ... see
            :meth:`mbmeta.control.plan_stats.PlanStats.summary`).
    """

    records: list[EpisodeRecord]
    plan_stats: dict[str, float]


def evaluate_agent(
    module: MetaDynamicsModule,
    family: TaskFamily,
    tasks: Sequence[TaskParams],
    *,
    method: str | None = None,
    episodes_per_task: int = 1,
    agent: AgentSettings | None = None,
    num_envs: int = 4,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    latent_range: LatentRange | None = None,
    first_finished: int | None = None,
) -> Evaluation:
    """Closed-loop returns and planning statistics of the MPC agent with this model on each task.

    Every task gets ``episodes_per_task`` episodes (environment seeds ``seed``, ``seed + 1``, ...); all episodes run
    ``num_envs`` at a time through one agent, the planner batched over them. ``env_kwargs`` go to the family's
    ``make_env`` (e.g. ``{"max_episode_steps": 200}`` for shorter episodes). ``latent_range``: the range of the
    model's task code on its training data, required when ``agent.bound_latent`` (see
    :func:`mbmeta.runs.training_data.training_latent_range`).

    With ``first_finished`` N instead (CaDM's test estimator), each environment starts an episode on the next of
    ``tasks`` whenever its episode ends, until N episodes have finished: the records are those finished ones (with
    any that end on the same step as the N-th), the episodes under way are dropped, so early failures weigh more than
    in an episode per task. ``tasks`` must then hold at least ``N + num_envs - 1`` tasks (the most that can
    start) and ``episodes_per_task`` be 1.
    """
    agent = agent or AgentSettings()
    method = method or module.hparams.adaptation
    mpc = make_agent(module.dynamics, family, agent, seed=seed, latent_range=latent_range)
    episodes = first_finished or episodes_per_task * len(tasks)
    with episode_progress(f"evaluating {method}", episodes, log_lines=4) as on_episode:
        records, collected = _run_policy(
            mpc, family, tasks, method=method, episodes_per_task=episodes_per_task, num_envs=num_envs, seed=seed,
            env_kwargs=env_kwargs, pass_task=module.hparams.adaptation == "oracle", on_episode=on_episode,
            first_finished=first_finished,
        )  # fmt: skip
    plan_stats = {
        **mpc.plan_stats.summary("plan/"),
        "plan/realised_return_mean": realised_horizon_return(collected, agent),
    }
    return Evaluation(records, plan_stats)


def evaluate_returns(
    module: MetaDynamicsModule, family: TaskFamily, tasks: Sequence[TaskParams], **kwargs: Any
) -> list[EpisodeRecord]:
    """The episode records of :func:`evaluate_agent` (same arguments)."""
    return evaluate_agent(module, family, tasks, **kwargs).records


def evaluate_policy(
    policy: Policy,
    family: TaskFamily,
    tasks: Sequence[TaskParams],
    *,
    method: str,
    episodes_per_task: int = 1,
    num_envs: int = 4,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    envs: VectorEnv | None = None,
) -> list[EpisodeRecord]:
    """Episode records of any batched :class:`~mbmeta.control.policy.Policy` on each task, as :func:`evaluate_agent`.

    The same launches, environment seeds and records as :func:`evaluate_agent` (so a model-free baseline's results
    read like the MPC agent's): task ``j``'s ``r``-th episode has seed ``seed + r``.

    Args:
        policy: acts on ``obs [B, O]`` with ``[B, A]``.
        family: the task family (success and validation of the tasks).
        tasks: the tasks, each run ``episodes_per_task`` times.
        method: the label of the records.
        episodes_per_task: episodes per task.
        num_envs: environments stepped together when ``envs`` is None.
        seed: environment seed of the first episode of each task.
        env_kwargs: arguments of ``family.make_env`` when ``envs`` is None.
        envs: a vector env in ``NEXT_STEP`` autoreset mode to reuse (not closed here), or None to build one.

    Returns:
        One record per episode, sorted by task and seed.
    """
    records, _ = _run_policy(
        policy, family, tasks, method=method, episodes_per_task=episodes_per_task, num_envs=num_envs, seed=seed,
        env_kwargs=env_kwargs, envs=envs,
    )  # fmt: skip
    return records


def _run_policy(
    policy: Policy,
    family: TaskFamily,
    tasks: Sequence[TaskParams],
    *,
    method: str,
    episodes_per_task: int,
    num_envs: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    envs: VectorEnv | None = None,
    pass_task: bool = False,
    on_episode: Callable[[EpisodeStats], None] | None = None,
    first_finished: int | None = None,
) -> tuple[list[EpisodeRecord], list[EpisodeStats]]:
    """Every task ``episodes_per_task`` times, or the first ``first_finished`` to finish: records and episode stats.

    Records are sorted by task and seed; see :func:`evaluate_agent` for ``first_finished``.
    """
    if episodes_per_task < 1:
        raise ValueError(f"episodes_per_task must be >= 1, got {episodes_per_task}")
    launches = [(task_id, rep) for rep in range(episodes_per_task) for task_id in range(len(tasks))]
    until: dict[str, Any] = {}
    if first_finished is not None:
        most = first_finished + num_envs - 1  # B start; each of at most N - 1 finishes before the N-th restarts one
        if first_finished < 1 or episodes_per_task != 1 or len(tasks) < most:
            raise ValueError(
                f"first_finished needs N >= 1, episodes_per_task 1 and at least N + num_envs - 1 = {most} tasks "
                f"(got N {first_finished}, episodes_per_task {episodes_per_task}, {len(tasks)} tasks)"
            )
        until = {"min_transitions": 1, "under_way": "drop"}  # CaDM's test loop: stop once N episodes finished
    collection = collect_episodes(
        policy,
        first_finished or len(launches),
        envs=envs,
        family=family,
        tasks=[tasks[task_id] for task_id, _ in launches],
        num_envs=min(num_envs, len(launches)),
        seed=seed,
        env_kwargs=env_kwargs,
        pass_task=pass_task,
        on_episode=on_episode,
        **until,
    )
    records = []
    for stats in collection.episodes:
        task_id, rep = launches[stats.launch]
        records.append(
            EpisodeRecord(
                method=method,
                task_id=task_id,
                task=dict(stats.task),
                seed=seed + rep,
                episode_return=float(stats.episode_return),
                length=int(stats.length),
                terminated=bool(stats.terminated),
                success=stats.success,
                measures=dict(stats.measures),
            )
        )
    return sorted(records, key=lambda r: (r.task_id, r.seed)), collection.episodes

"""The transfer study: what fine-tuning a meta-trained model on a little data from a new task buys.

:func:`~mbmeta.training.finetune.finetune` is the reusable piece. :func:`transfer_study` runs the comparison
``mbmeta transfer`` reports: zero-shot adaptation, fine-tuned on 1/5/20 episodes, and the same architecture trained
from scratch on the same episodes, each evaluated closed-loop on the new task with the same planner and seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.control.settings import AgentSettings
from mbmeta.envs.family import TaskFamily
from mbmeta.evaluation.episodes import EpisodeRecord, evaluate_returns
from mbmeta.evaluation.prediction import prediction_error
from mbmeta.models.dynamics import FinetuneMode
from mbmeta.training.finetune import finetune, train_from_scratch
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import TaskParams


@dataclass(frozen=True)
class TransferRow:
    """One line of the transfer comparison.

    Attributes:
        method: ``zero-shot``, ``finetune`` or ``scratch``.
        episodes: new-task episodes used for training (0 for zero-shot).
        returns: closed-loop episode returns on the new task.
        lengths: their lengths in steps (for families that end an episode on failure, e.g. the juggler's balance
            time).
        successes: whether each reached the family's goal (``TaskFamily.success``); None entries where the family
            defines no success.
        error_h1: one-step prediction error on held-out new-task data (MSE in units of that data's obs std,
            the same units for every row).
        error_hmax: prediction error at the longest horizon measured.
    """

    method: str
    episodes: int
    returns: tuple[float, ...]
    error_h1: float
    error_hmax: float
    lengths: tuple[int, ...] = ()
    successes: tuple[bool | None, ...] = ()

    @property
    def mean(self) -> float:
        """Mean return."""
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        """Standard deviation of the return."""
        return float(np.std(self.returns))

    @property
    def mean_length(self) -> float:
        """Mean episode length (NaN without lengths)."""
        return float(np.mean(self.lengths)) if self.lengths else float("nan")

    @property
    def success_rate(self) -> float | None:
        """Fraction of successful episodes; None where the family defines no success."""
        if not self.successes or any(s is None for s in self.successes):
            return None
        return float(np.mean(self.successes))


def transfer_study(
    module: MetaDynamicsModule,
    family: TaskFamily,
    task: TaskParams,
    *,
    episode_counts: Sequence[int] = (1, 5, 20),
    mode: FinetuneMode = "all",
    epochs: int = 20,
    eval_episodes: int = 3,
    agent: AgentSettings | None = None,
    data: dict[str, Any] | None = None,
    trainer: dict[str, Any] | None = None,
    seed: int = 0,
    log=print,
) -> list[TransferRow]:
    """Zero-shot vs fine-tuned vs from-scratch on one new task, for each number of new-task episodes.

    The new task's episodes are collected once with random actions (the largest count; smaller counts use its
    first episodes), so every method sees the same data. Prediction error is measured on separate held-out
    random-action episodes of the task.
    """
    agent = agent or AgentSettings()
    if agent.bound_latent:
        raise ValueError("agent.bound_latent is not supported by transfer (a fine-tuned model has no training range)")
    task = family.validate(task)
    space = family.action_space
    counts = sorted(set(int(c) for c in episode_counts))
    if not counts or counts[0] < 1:
        raise ValueError(f"episode counts must be >= 1, got {list(episode_counts)}")
    log(f"collecting {counts[-1]} + 2 held-out random episodes on {task.as_dict()}")
    new_data = collect_episodes(
        RandomPolicy(space, seed=seed), counts[-1], family=family, tasks=[task], num_envs=4, seed=seed
    ).buffer
    held_out = collect_episodes(
        RandomPolicy(space, seed=seed + 1), 2, family=family, tasks=[task], num_envs=2, seed=seed + 10_000
    ).buffer
    context = agent.context_length

    def row(name: str, model: MetaDynamicsModule, episodes: int) -> TransferRow:
        records: list[EpisodeRecord] = evaluate_returns(
            model, family, [task], method=name, episodes_per_task=eval_episodes, agent=agent, seed=seed
        )
        error = prediction_error(model, held_out, context_length=context, seed=seed)
        result = TransferRow(
            name,
            episodes,
            tuple(r.episode_return for r in records),
            float(error[0]),
            float(error[-1]),
            lengths=tuple(int(r.length) for r in records),
            successes=tuple(r.success for r in records),
        )
        summary = (
            f"return {result.mean:.1f} ± {result.std:.1f}, length {result.mean_length:.1f}, "
            f"one-step error {error[0]:.3g}"
        )
        log(f"  {name:>9} ({episodes:>2} episodes): {summary}")
        return result

    rows = [row("zero-shot", module.eval(), 0)]
    for count in counts:
        subset = new_data.first(count)
        fitting = {"epochs": epochs, "data": data, "trainer": trainer, "seed": seed}
        rows.append(row("finetune", finetune(module, subset, mode=mode, **fitting), count))
        rows.append(row("scratch", train_from_scratch(module, subset, **fitting), count))
    return rows

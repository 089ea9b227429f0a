"""Transfer: fine-tune a meta-trained model on a little data from a new task, and measure what it buys.

:func:`finetune` is the reusable piece (a copy of the model, some weights frozen, a few epochs on the new task's
buffer, the pretrained normaliser kept). :func:`transfer_study` runs the comparison ``mbmeta transfer`` reports:
zero-shot adaptation, fine-tuned on 1/5/20 episodes, and the same architecture trained from scratch on the same
episodes, each evaluated closed-loop on the new task with the same planner and seeds.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs.family import TaskFamily, TaskParams
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.evaluation import EpisodeRecord, evaluate_returns, prediction_error
from mbmeta.training.loop import first_episodes, to_fitted_device
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.training.settings import AgentSettings

FinetuneMode = Literal["all", "frozen_encoder", "last_layer"]


def finetune(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    *,
    mode: FinetuneMode = "all",
    epochs: int = 20,
    lr: float | None = None,
    data: dict[str, Any] | None = None,
    trainer: dict[str, Any] | None = None,
    seed: int = 0,
) -> MetaDynamicsModule:
    """Fine-tune a copy of ``module`` on ``buffer`` (episodes of the new task); the original is left untouched.

    Args:
        module: the meta-trained model.
        buffer: the new task's episodes (at least one episode longer than ``context_length + target_length``).
        mode: ``all`` weights, ``frozen_encoder`` (adapter frozen) or ``last_layer`` (output layers only).
        epochs: passes of ``samples_per_epoch`` segments.
        lr: learning rate (default: the module's, divided by 3, a common choice for fine-tuning).
        data: ``MetaDataModule`` arguments (``context_length`` etc.); validation is off (the data are few).
        trainer: extra ``pl.Trainer`` arguments, e.g. ``{"accelerator": "gpu"}`` (default: one CPU device).
        seed: seeds segment sampling.

    Returns:
        The fine-tuned copy, in eval mode. Its normaliser is the pretrained one (few episodes are a poor basis for
        new statistics, and the weights were trained in the old scaling).
    """
    tuned = copy.deepcopy(module)
    tuned.configure_finetune(mode)
    tuned.hparams.lr = lr if lr is not None else module.hparams.lr / 3
    _fit(tuned, buffer, epochs, data, trainer, seed)
    return tuned


def train_from_scratch(
    like: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    *,
    epochs: int,
    data: dict[str, Any] | None = None,
    trainer: dict[str, Any] | None = None,
    seed: int = 0,
) -> MetaDynamicsModule:
    """A new model with ``like``'s hyperparameters, trained only on ``buffer`` (its normaliser fitted on it)."""
    scratch = MetaDynamicsModule(**{**like.hparams, "seed": seed})
    _fit(scratch, buffer, epochs, data, trainer, seed)
    return scratch


def _fit(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    epochs: int,
    data: dict[str, Any] | None,
    trainer: dict[str, Any] | None,
    seed: int,
) -> None:
    settings = {"samples_per_epoch": 4096, "batch_size": 128, **(data or {}), "val_fraction": 0.0, "seed": seed}
    datamodule = MetaDataModule.from_buffer(buffer, **settings)
    fitter = pl.Trainer(
        **{"accelerator": "cpu", "devices": 1, **(trainer or {})},
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    module.train()
    fitter.fit(module, datamodule)
    to_fitted_device(module, fitter)


@dataclass(frozen=True)
class TransferRow:
    """One line of the transfer comparison.

    Attributes:
        method: ``zero-shot``, ``finetune`` or ``scratch``.
        episodes: new-task episodes used for training (0 for zero-shot).
        returns: closed-loop episode returns on the new task.
        error_h1: one-step prediction error on held-out new-task data (MSE in units of that data's obs std,
            the same units for every row).
        error_hmax: prediction error at the longest horizon measured.
    """

    method: str
    episodes: int
    returns: tuple[float, ...]
    error_h1: float
    error_hmax: float

    @property
    def mean(self) -> float:
        """Mean return."""
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        """Standard deviation of the return."""
        return float(np.std(self.returns))


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
    task = family.validate(task)
    env = family.make_env()
    space = env.action_space
    env.close()
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
    context = agent.context_size

    def row(name: str, model: MetaDynamicsModule, episodes: int) -> TransferRow:
        records: list[EpisodeRecord] = evaluate_returns(
            model, family, [task], method=name, episodes_per_task=eval_episodes, agent=agent, seed=seed
        )
        error = prediction_error(model, held_out, context_length=context, seed=seed)
        result = TransferRow(
            name, episodes, tuple(r.episode_return for r in records), float(error[0]), float(error[-1])
        )
        summary = f"return {result.mean:.1f} ± {result.std:.1f}, one-step error {error[0]:.3g}"
        log(f"  {name:>9} ({episodes:>2} episodes): {summary}")
        return result

    rows = [row("zero-shot", module.eval(), 0)]
    for count in counts:
        subset = first_episodes(new_data, count)
        fitting = {"epochs": epochs, "data": data, "trainer": trainer, "seed": seed}
        rows.append(row("finetune", finetune(module, subset, mode=mode, **fitting), count))
        rows.append(row("scratch", train_from_scratch(module, subset, **fitting), count))
    return rows

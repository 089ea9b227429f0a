"""The periodic evaluation during training, as a stable-baselines3 callback (imports sb3: load it lazily)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


class PeriodicEvaluation(BaseCallback):
    """Calls ``evaluate(env_steps, train_episodes)`` before training and every ``every`` environment steps.

    ``env_steps`` is the model's ``num_timesteps`` (all training environments together), so with B training
    environments an evaluation falls on the first multiple of B at or after each multiple of ``every``. On a resumed
    run the next evaluation is the first multiple of ``every`` after the steps already done.

    Args:
        evaluate: runs the evaluation; returns False to stop training.
        every: environment steps between evaluations (>= 1).
        train_episodes: training episodes finished before this callback starts (a resumed run's count).
        evaluate_at_start: evaluate before the first training step (the untrained policy, step 0).
    """

    def __init__(
        self,
        evaluate: Callable[[int, int], bool | None],
        every: int,
        *,
        train_episodes: int = 0,
        evaluate_at_start: bool = True,
    ) -> None:
        super().__init__(verbose=0)
        if every < 1:
            raise ValueError(f"eval_every must be >= 1, got {every}")
        self.evaluate, self.every = evaluate, every
        self.train_episodes = train_episodes
        self.evaluate_at_start = evaluate_at_start
        self.next_evaluation = every

    def _on_training_start(self) -> None:
        steps = self.model.num_timesteps
        self.next_evaluation = (steps // self.every + 1) * self.every
        if self.evaluate_at_start:
            self.evaluate(steps, self.train_episodes)

    def _on_step(self) -> bool:
        dones = self.locals.get("dones")
        if dones is not None:
            self.train_episodes += int(np.sum(dones))
        if self.num_timesteps < self.next_evaluation:
            return True
        self.next_evaluation = (self.num_timesteps // self.every + 1) * self.every
        return self.evaluate(self.num_timesteps, self.train_episodes) is not False

"""Initial-data policies other than uniform random actions: a family's scripted controller with action noise.

Why: on some families random actions never reach the states a good policy lives in (the juggler drops the ball
within ~20 steps whatever it does), so a model fitted to them has never seen a balanced ball and an MPC agent
planning through it cannot learn to balance (docs/results.md, R3.2). Seeding the buffer with noisy runs of a
scripted controller covers those states. The controller never sees the task; the noise makes the episodes span
near-perfect control to losing the ball, so the model also sees the failures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from mbmeta.control.policy import Policy


class Controller(Protocol):
    """One environment's scripted controller (e.g. :class:`mbmeta.envs.juggler_controller.JugglerController`)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """``[A]`` action for one ``[O]`` observation."""
        ...

    def reset(self) -> None:
        """Forget the current episode."""
        ...


class NoisyControllerPolicy(Policy):
    """One scripted controller per environment plus Gaussian action noise, as a collection policy.

    Each episode draws its own noise level uniformly from ``[0, noise]`` (a fraction of each action dimension's
    half-range), so a batch of episodes mixes clean control with sloppy control; actions are clipped to the box.
    Overrides the :class:`~mbmeta.control.policy.Policy` hooks ``reset`` / ``reset_envs``, so per-environment
    controller state is reset whenever an environment starts a new episode. With ``noise=0`` it is the scripted
    controller alone (what ``mbmeta juggler-video`` films).

    Args:
        make_controller: builds a fresh controller for one environment.
        action_space: the single-environment ``Box`` action space (bounded).
        noise: largest noise standard deviation, as a fraction of the half-range (``0`` = the controller alone).
        seed: seeds the noise.

    Raises:
        ValueError: negative ``noise`` or an unbounded action space.
    """

    def __init__(
        self,
        make_controller: Callable[[], Controller],
        action_space: gym.spaces.Box,
        noise: float = 0.5,
        seed: int | None = 0,
    ) -> None:
        if not noise >= 0:
            raise ValueError(f"NoisyControllerPolicy: noise must be >= 0 (a fraction of the half-range), got {noise}")
        low, high = np.asarray(action_space.low, np.float64), np.asarray(action_space.high, np.float64)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError("NoisyControllerPolicy needs a bounded Box action space")
        self.make_controller, self.noise = make_controller, noise
        self.low, self.high, self.half_range = low, high, (high - low) / 2
        self.rng = np.random.default_rng(seed)
        self.controllers: list[Controller] = []
        self.levels = np.zeros(0)

    def reset(self, batch_size: int) -> None:
        """Fresh controllers and noise levels for ``batch_size`` environments."""
        while len(self.controllers) < batch_size:
            self.controllers.append(self.make_controller())
        del self.controllers[batch_size:]
        for controller in self.controllers:
            controller.reset()
        self.levels = self.rng.uniform(0.0, self.noise, size=batch_size)

    def reset_envs(self, mask: Tensor | np.ndarray) -> None:
        """Reset the controllers of the masked environments (``mask [B]`` bool) and draw their next noise level."""
        for i in np.flatnonzero(mask.cpu().numpy() if isinstance(mask, Tensor) else mask):
            self.controllers[i].reset()
            self.levels[i] = self.rng.uniform(0.0, self.noise)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """``[B, A]`` float32 actions for ``obs [B, O]``."""
        obs = np.asarray(obs)
        if len(self.controllers) != obs.shape[0]:
            self.reset(obs.shape[0])
        clean = np.stack([c.act(o) for c, o in zip(self.controllers, obs, strict=True)]).astype(np.float64)
        noisy = clean + self.rng.standard_normal(clean.shape) * self.levels[:, None] * self.half_range
        return np.clip(noisy, self.low, self.high).astype(np.float32)

    def act_tensor(self, obs: Tensor, task: Tensor | None = None) -> Tensor:
        """:meth:`act` on the collector's observations: ``[B, O]`` tensor -> ``[B, A]`` float32 CPU tensor."""
        return torch.from_numpy(self.act(obs.cpu().numpy()))

"""A trained stable-baselines3 model as the episode collector's batched :class:`~mbmeta.control.policy.Policy`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from mbmeta.control.policy import Policy


class SB3Policy(Policy):
    """Deterministic actions of an sb3 model (``model.predict(obs, deterministic=True)``) for B environments.

    Stateless (an MLP policy): none of the collector's hooks is needed. ``predict`` clips the actions to the
    action space.

    Args:
        model: an sb3 algorithm (``PPO``, ``SAC``, ...) or anything with ``predict(obs [B, O], deterministic=...)``.
        deterministic: the mean action (True, for evaluation) or a sample of the policy.
    """

    def __init__(self, model: Any, deterministic: bool = True) -> None:
        self.model = model
        self.deterministic = deterministic

    def act_tensor(self, obs: Tensor, task: Tensor | None = None) -> Tensor:
        """``[B, A]`` float32 actions for ``obs [B, O]``."""
        action, _ = self.model.predict(obs.cpu().numpy(), deterministic=self.deterministic)
        return torch.from_numpy(np.asarray(action, dtype=np.float32))

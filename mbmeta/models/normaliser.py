"""Input/output normalisation for dynamics models, fitted once from data statistics.

Every statistic is a registered buffer (including the ``fitted`` flag), so a model's ``state_dict`` — and hence a
Lightning checkpoint — carries its normaliser whole and ``load_from_checkpoint`` rebuilds it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mbmeta.types import Transition

REQUIRED_KEYS = (
    "obs_mean",
    "obs_std",
    "action_mean",
    "action_std",
    "delta_mean",
    "delta_std",
    "reward_mean",
    "reward_std",
)
"""Keys :meth:`Normaliser.fit` requires; ``task_mean`` / ``task_std`` ``[T]`` are optional."""


class Normaliser(nn.Module):
    """Standardises observations, actions, state changes, rewards and task parameters.

    Before :meth:`fit` every statistic is the identity (mean 0, std 1) and ``fitted`` is False.

    Args:
        obs_dim: O.
        action_dim: A.
        task_dim: T (0 when there are no task parameters).
        min_std: standard deviations below this are replaced by 1, so constant dimensions pass through unscaled
            instead of being blown up by a near-zero divisor.
    """

    def __init__(self, obs_dim: int, action_dim: int, task_dim: int = 0, min_std: float = 1e-6) -> None:
        super().__init__()
        self.obs_dim, self.action_dim, self.task_dim, self.min_std = obs_dim, action_dim, task_dim, min_std
        for name, size in (("obs", obs_dim), ("action", action_dim), ("delta", obs_dim), ("task", task_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))
        self.register_buffer("fitted", torch.tensor(False))

    def _shape_of(self, key: str) -> tuple[int, ...]:
        prefix = key.rsplit("_", 1)[0]
        return {
            "obs": (self.obs_dim,),
            "action": (self.action_dim,),
            "delta": (self.obs_dim,),
            "reward": (),
            "task": (self.task_dim,),
        }[prefix]

    @torch.no_grad()
    def fit(self, statistics: Mapping[str, Tensor]) -> None:
        """Load statistics and mark the normaliser fitted.

        Args:
            statistics: tensors ``obs_mean, obs_std [O]``, ``action_mean, action_std [A]``,
                ``delta_mean, delta_std [O]``, ``reward_mean, reward_std []``; optionally
                ``task_mean, task_std [T]`` (otherwise task parameters stay unnormalised).

        Raises:
            KeyError: a required key is missing.
            ValueError: a statistic has the wrong shape or is not finite.
        """
        missing = [k for k in REQUIRED_KEYS if k not in statistics]
        if missing:
            raise KeyError(f"Normaliser.fit: statistics lack {missing}; required keys are {list(REQUIRED_KEYS)}")
        keys = list(REQUIRED_KEYS) + [k for k in ("task_mean", "task_std") if k in statistics]
        for key in keys:
            value = torch.as_tensor(statistics[key], dtype=torch.float32)
            expected = self._shape_of(key)
            if tuple(value.shape) != expected:
                raise ValueError(f"Normaliser.fit: {key} has shape {tuple(value.shape)}, expected {expected}")
            if not torch.isfinite(value).all():
                raise ValueError(f"Normaliser.fit: {key} has non-finite values")
            if key.endswith("_std"):
                value = torch.where(value < self.min_std, torch.ones_like(value), value)
            getattr(self, key).copy_(value)
        self.fitted.fill_(True)

    def normalise_obs(self, obs: Tensor) -> Tensor:
        """``[..., O]`` raw -> normalised."""
        return (obs - self.obs_mean) / self.obs_std

    def denormalise_obs(self, obs: Tensor) -> Tensor:
        """``[..., O]`` normalised -> raw."""
        return obs * self.obs_std + self.obs_mean

    def normalise_action(self, action: Tensor) -> Tensor:
        """``[..., A]`` raw -> normalised."""
        return (action - self.action_mean) / self.action_std

    def normalise_delta(self, delta: Tensor) -> Tensor:
        """``[..., O]`` raw state change ``next_obs - obs`` -> normalised."""
        return (delta - self.delta_mean) / self.delta_std

    def denormalise_delta(self, delta: Tensor) -> Tensor:
        """``[..., O]`` normalised state change -> raw."""
        return delta * self.delta_std + self.delta_mean

    def normalise_reward(self, reward: Tensor) -> Tensor:
        """``[...]`` raw -> normalised."""
        return (reward - self.reward_mean) / self.reward_std

    def denormalise_reward(self, reward: Tensor) -> Tensor:
        """``[...]`` normalised -> raw."""
        return reward * self.reward_std + self.reward_mean

    def normalise_task(self, task: Tensor) -> Tensor:
        """``[..., T]`` raw -> normalised (identity unless task statistics were fitted)."""
        return (task - self.task_mean) / self.task_std


def transition_statistics(transitions: Transition, task: Tensor | None = None) -> dict[str, Tensor]:
    """Compute :meth:`Normaliser.fit` statistics (population std) from a pile of transitions.

    Args:
        transitions: fields ``[*S, ...]`` (any leading dims, e.g. ``[B, K]``).
        task: optional ``[*S', T]`` task parameters; adds ``task_mean`` / ``task_std``.

    Returns:
        Dict of float32 tensors keyed as :data:`REQUIRED_KEYS` (plus the task keys when given).
    """
    obs = transitions.obs.reshape(-1, transitions.obs.shape[-1]).float()
    action = transitions.action.reshape(-1, transitions.action.shape[-1]).float()
    delta = transitions.next_obs.reshape(-1, obs.shape[-1]).float() - obs
    reward = transitions.reward.reshape(-1).float()
    stats = {
        "obs_mean": obs.mean(0),
        "obs_std": obs.std(0, correction=0),
        "action_mean": action.mean(0),
        "action_std": action.std(0, correction=0),
        "delta_mean": delta.mean(0),
        "delta_std": delta.std(0, correction=0),
        "reward_mean": reward.mean(),
        "reward_std": reward.std(correction=0),
    }
    if task is not None:
        flat = task.reshape(-1, task.shape[-1]).float()
        stats["task_mean"], stats["task_std"] = flat.mean(0), flat.std(0, correction=0)
    return stats

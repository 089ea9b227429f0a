"""The range a model's task code ``z`` takes on its training data, and clamping ``z`` into it.

A task-conditioned model (``context``, ``recurrent``, ``oracle``) maps a context (or the true task) to a code ``z``
that its networks were trained on only inside the training tasks' range. On a task far outside it (a ball twice as
bouncy as any seen) ``z`` lands where the networks never saw it and their predictions can go wrong in ways the plain
ensemble's do not. Clamping ``z``, dimension by dimension, into the range it took on the training data keeps the
model on codes it was fitted on: the planner then treats the new task as the nearest training-like one.

Measured by :func:`mbmeta.control.latent_range.measure_latent_range`; usage::

    bounds = measure_latent_range(model, buffer, context_length=10)     # once, after fitting
    agent = MPCAgent(model, planner, ..., latent_range=bounds)           # every adapt() clamps z into it
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class LatentRange:
    """Per-dimension bounds of the task code ``z``.

    Attributes:
        low: ``[Z]`` smallest value of each dimension of ``z`` on the training data.
        high: ``[Z]`` largest value (``high >= low``).
    """

    low: Tensor
    high: Tensor

    def __post_init__(self) -> None:
        if self.low.dim() != 1 or self.low.shape != self.high.shape:
            raise ValueError(
                f"LatentRange: low and high must both be [Z], got {tuple(self.low.shape)} and {tuple(self.high.shape)}"
            )
        if not bool(torch.isfinite(self.low).all() and torch.isfinite(self.high).all()):
            raise ValueError("LatentRange: low and high must be finite")
        if bool((self.low > self.high).any()):
            raise ValueError("LatentRange: low must be <= high in every dimension")

    @property
    def dim(self) -> int:
        """Z, the size of the code."""
        return self.low.shape[0]

    def clamp(self, z: Tensor) -> Tensor:
        """``z`` clamped into the range: ``[..., Z] -> [..., Z]`` (bounds moved to ``z``'s device and dtype)."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"LatentRange: z must be [..., Z={self.dim}], got {tuple(z.shape)}")
        return torch.clamp(z, self.low.to(z), self.high.to(z))

    def to(self, device: torch.device | str) -> LatentRange:
        """The same range on ``device``."""
        return LatentRange(self.low.to(device), self.high.to(device))

    def as_dict(self) -> dict[str, list[float]]:
        """JSON-ready ``{"low": [...], "high": [...]}``."""
        return {"low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LatentRange:
        """The range of :meth:`as_dict`'s form.

        Raises:
            ValueError: a missing key or a non-numeric entry.
        """
        try:
            low, high = (torch.as_tensor(values[k], dtype=torch.float32) for k in ("low", "high"))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"LatentRange needs {{'low': [...], 'high': [...]}} of numbers, got {values!r}") from err
        return cls(low, high)

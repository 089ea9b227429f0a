"""Gaussian output head with softly bounded log-variance, and the Gaussian negative log-likelihood.

The bounds follow PETS / CaDM: ``max_logvar`` and ``min_logvar`` are learned per output dimension (initialised to
0.5 and -10), the raw log-variance is squashed smoothly between them with softplus, and a small penalty on
``max_logvar - min_logvar`` keeps the bounds tight so the network cannot buy likelihood with runaway variances.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GaussianHead(nn.Module):
    """Maps raw log-variances into ``(min_logvar, max_logvar)`` with a smooth, gradient-preserving clamp.

    Args:
        dim: number of output dimensions (O).
        max_logvar: initial upper bound.
        min_logvar: initial lower bound.
        learn_bounds: whether the bounds are trained (PETS style) or fixed.

    Attributes:
        max_logvar: ``[O]``.
        min_logvar: ``[O]``.
    """

    def __init__(self, dim: int, max_logvar: float = 0.5, min_logvar: float = -10.0, learn_bounds: bool = True) -> None:
        super().__init__()
        if not min_logvar < max_logvar:
            raise ValueError(f"GaussianHead needs min_logvar < max_logvar, got {min_logvar} >= {max_logvar}")
        for name, value in (("max_logvar", max_logvar), ("min_logvar", min_logvar)):
            init = torch.full((dim,), float(value))
            # Fixed bounds are buffers, so fine-tuning modes that toggle requires_grad never make them trainable.
            if learn_bounds:
                setattr(self, name, nn.Parameter(init))
            else:
                self.register_buffer(name, init)

    def forward(self, raw_logvar: Tensor) -> Tensor:
        """Softly bound a raw log-variance.

        Args:
            raw_logvar: ``[..., O]`` unbounded network output.

        Returns:
            ``[..., O]`` log-variance in ``[min_logvar, max_logvar + ε]`` where ``ε = softplus(d) - d`` for
            ``d = max_logvar - min_logvar`` (about 3e-5 for the default bounds): the second softplus lifts the upper
            end by that much.
        """
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw_logvar)
        return self.min_logvar + F.softplus(logvar - self.min_logvar)

    def bound_penalty(self) -> Tensor:
        """``sum(max_logvar) - sum(min_logvar)``: add a small multiple to the loss to keep the bounds tight."""
        return self.max_logvar.sum() - self.min_logvar.sum()


def gaussian_nll(mean: Tensor, logvar: Tensor, target: Tensor) -> Tensor:
    """Elementwise Gaussian negative log-likelihood, without the constant ``0.5 log 2π``.

    Args:
        mean: ``[..., O]``.
        logvar: ``[..., O]``.
        target: ``[..., O]`` (broadcastable).

    Returns:
        ``[..., O]`` ``0.5 * ((target - mean)^2 / var + logvar)``.
    """
    return 0.5 * ((target - mean).square() * torch.exp(-logvar) + logvar)

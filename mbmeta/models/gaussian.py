"""Gaussian output head with softly bounded log-variance, and the Gaussian negative log-likelihood.

The bounds follow PETS / CaDM: ``max_logvar`` and ``min_logvar`` are learned per output dimension (initialised to
0.5 and -10), the raw log-variance is squashed smoothly between them with softplus, and a small penalty on
``max_logvar - min_logvar`` keeps the bounds tight so the network cannot buy likelihood with runaway variances.
"""

from __future__ import annotations

from typing import NamedTuple

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

    def folded(self, scale: Tensor) -> FoldedVariance:
        """The head arranged for planning: variances in units ``scale`` from a flipped raw output.

        See :class:`FoldedVariance`.

        Args:
            scale: ``[O]`` the output unit (e.g. the normaliser's state-change std): variances come out multiplied
                by ``scale²``.
        """
        return FoldedVariance(
            upper=self.max_logvar,
            span=self.max_logvar - self.min_logvar,
            offset=self.min_logvar + 2 * scale.log(),
        )

    def bound_penalty(self) -> Tensor:
        """``sum(max_logvar) - sum(min_logvar)``: add a small multiple to the loss to keep the bounds tight."""
        return self.max_logvar.sum() - self.min_logvar.sum()


class FoldedVariance(NamedTuple):
    """A :class:`GaussianHead` rearranged so that a planning step costs as few passes as possible.

    The network's last layer is folded to output ``flipped = upper - raw`` directly (weights negated, bias
    ``upper - b``: see :meth:`mbmeta.models.ensemble.EnsembleMLP.freeze`), and the output unit goes into ``offset``:
    ``var = exp(min + softplus(span - softplus(flipped))) * scale²`` is then five passes (two softplus, a subtraction,
    an addition and the exponential, the last three in place) instead of the head's six plus exponential, square and
    product. The same function as ``GaussianHead.forward(raw).exp() * scale²`` up to float rounding (tested).

    Attributes:
        upper: ``[O]`` ``max_logvar``, the shift folded into the last layer.
        span: ``[O]`` ``max_logvar - min_logvar``.
        offset: ``[O]`` ``min_logvar + 2 log scale``.
    """

    upper: Tensor
    span: Tensor
    offset: Tensor

    def variance(self, flipped: Tensor) -> Tensor:
        """Variance ``[..., O]`` in ``scale²`` units (in the head's dtype) from ``flipped = max_logvar - raw``.

        Args:
            flipped: ``[..., O]`` in any float dtype (bf16 under autocast).
        """
        # Contiguous first: softplus over a strided slice (the last layer's log-variance columns) runs ~7x slower.
        t = F.softplus(flipped.to(self.span.dtype).contiguous())
        if torch.is_grad_enabled() and (t.requires_grad or self.span.requires_grad):
            t = self.span - t  # out= does not record gradients
        else:
            t = torch.sub(self.span, t, out=t)
        return F.softplus(t).add_(self.offset).exp_()


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

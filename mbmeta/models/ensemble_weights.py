"""An ensemble layer's weights in the forms :class:`~mbmeta.models.ensemble.EnsembleMLP` evaluates.

- shared ``[E, in, out]`` or per group of rows ``[E, B, in, out]``, applied by :func:`grouped_linear`;
- :class:`LowRankUpdate`: per-group weights kept as the shared ones minus a low-rank term (what the gradient adapter's
  inner steps produce), applied without building the per-group copies;
- :class:`LayerTrace`: what a forward pass records so that a gradient step gives such a low-rank update;
- :class:`FrozenWeights`: a network's weights resolved once (conditioning and a normaliser folded in) for the
  planner's many no-grad calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor


def grouped_linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """One ensemble layer over B groups of rows, with shared or per-group weights and biases.

    Args:
        x: ``[E, B, R, in]``.
        weight: ``[E, in, out]`` (shared by the groups) or ``[E, B, in, out]`` (one per group).
        bias: ``[E, 1, out]`` (shared) or ``[E, B, 1, out]`` (one per group, e.g. with a conditioning term folded in).

    Returns:
        ``[E, B, R, out]``.
    """
    e, b, r, _ = x.shape
    out = weight.shape[-1]
    if weight.dim() == 3:
        # Groups share the member's weights: fold them into the row dimension for one [E]-batched matmul.
        if bias.dim() == 4:  # per-group bias: one row of bias per row of x (baddbmm copies it into the result anyway)
            bias = bias[:, 0] if b == 1 else bias.expand(e, b, r, out).reshape(e, b * r, out)
        return torch.baddbmm(bias, x.reshape(e, b * r, -1), weight).view(e, b, r, out)
    if bias.dim() == 3:
        bias = bias.unsqueeze(1).expand(e, b, 1, out)
    return torch.baddbmm(bias.reshape(e * b, 1, out), x.reshape(e * b, r, -1), weight.reshape(e * b, -1, out)).view(
        e, b, r, out
    )


class LowRankUpdate(NamedTuple):
    """Per-group weights ``base - inputs^T @ grads`` kept in factored form.

    What SGD on a group's S context rows does to a linear layer: the weight gradient is a sum of one outer product
    (layer input x gradient of the loss w.r.t. the pre-activation) per row, so after the steps the group's weights
    differ from the shared ones by a matrix of rank <= S. Applying the factors costs ``S (in + out)`` per row instead
    of building ``[E, B, in, out]`` copies (``in x out`` per group), which is what makes meta-training the gradient
    adapter on hundreds of segments per batch affordable.

    Attributes:
        base: ``[E, in, out]`` the shared weights.
        inputs: ``[E, B, S, in]`` the layer's inputs on the context rows (S = inner steps x K).
        grads: ``[E, B, S, out]`` step size x d loss / d pre-activation on those rows.
    """

    base: Tensor
    inputs: Tensor
    grads: Tensor

    def materialise(self) -> Tensor:
        """The per-group weights in full: ``[E, B, in, out]``."""
        return self.base.unsqueeze(1) - self.inputs.transpose(-1, -2) @ self.grads

    def detach(self) -> LowRankUpdate:
        """The same weights cut from the autograd graph."""
        return LowRankUpdate(self.base.detach(), self.inputs.detach(), self.grads.detach())

    def apply(self, x: Tensor, bias: Tensor) -> Tensor:
        """``x @ W_b + bias`` for every group b without building ``W_b``.

        Args:
            x: ``[E, B, R, in]``.
            bias: ``[E, 1, out]`` or ``[E, B, 1, out]``.

        Returns:
            ``[E, B, R, out]``.
        """
        e, b, r, _ = x.shape
        out = grouped_linear(x, self.base, bias)
        s = self.inputs.shape[2]
        overlap = x.reshape(e * b, r, -1) @ self.inputs.reshape(e * b, s, -1).transpose(-1, -2)  # [E·B, R, S]
        flat = torch.baddbmm(out.reshape(e * b, r, -1), overlap, self.grads.reshape(e * b, s, -1), alpha=-1)
        return flat.view(e, b, r, -1)


Weight = Tensor | LowRankUpdate
"""A layer's weight in :meth:`EnsembleMLP.grouped_forward`: shared ``[E, in, out]``, per group ``[E, B, in, out]``, or
:class:`LowRankUpdate`."""


class LayerTrace:
    """Asks :meth:`EnsembleMLP.grouped_forward` to record what a gradient step on chosen layers needs.

    For each chosen layer i it stores the layer's input (``inputs[i]``, ``[E, B, R, in]``) and adds a zero "probe"
    tensor to its pre-activation (``probes[i]``, ``[E, B, R, out]``, requires grad): ``torch.autograd.grad(loss,
    probes[i])`` is then d loss / d pre-activation row by row, which with the input gives every group's weight
    gradient in factored form (see :class:`LowRankUpdate`), without per-group weight copies or ``vmap``.

    Args:
        layers: indices of the layers to trace.
    """

    def __init__(self, layers: Iterable[int]) -> None:
        self.layers = frozenset(layers)
        self.inputs: dict[int, Tensor] = {}
        self.probes: dict[int, Tensor] = {}


class FrozenWeights:
    """A network's weights resolved once for many evaluations (planning): what :meth:`EnsembleMLP.freeze` returns.

    Every layer's weight and bias as a plain tensor, with conditioning and affine maps already folded in (see
    :meth:`EnsembleMLP.freeze`), so that each :meth:`EnsembleMLP.grouped_forward` call is the layers' matmuls and
    activations and nothing else. Copies in another dtype (bf16 autocast) are made once and kept.

    Args:
        weights: per layer ``[E, in, out]`` (shared by the groups) or ``[E, B, in, out]`` (one per group).
        biases: per layer ``[E, 1, out]`` (shared) or ``[E, B, 1, out]`` (one per group).
    """

    def __init__(self, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> None:
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"FrozenWeights needs one bias per weight, got {len(weights)} and {len(biases)}")
        per_group = [t.shape[1] for t in (*weights, *biases) if t.dim() == 4]
        if len(set(per_group)) > 1:
            raise ValueError(f"FrozenWeights: per-group tensors disagree on the number of groups: {sorted(per_group)}")
        self.groups: int | None = per_group[0] if per_group else None
        """B of the per-group tensors (the rows must come in that many groups), or None when nothing is per group."""
        # A per-group bias of one group is a shared one: no per-row expansion at every call.
        self.weights = tuple(weights)
        self.biases = tuple(b[:, 0] if b.dim() == 4 and b.shape[1] == 1 else b for b in biases)
        self._casts: dict[torch.dtype, FrozenWeights] = {}
        self.row_biases: dict[tuple[int, int, int, int], Tensor] = {}
        """Per-group biases expanded to rows ``[E, n, out]``, kept by (layer, first row, end row, rows per group):
        built at the first call, reused by the planner's thousands of calls on rows of the same shape."""

    @property
    def shared(self) -> bool:
        """True when every weight is shared by the groups (``[E, in, out]``; biases may be per group)."""
        return all(w.dim() == 3 for w in self.weights)

    @property
    def in_features(self) -> int:
        """The size of the input rows the first layer takes."""
        return self.weights[0].shape[-2]

    def to(self, dtype: torch.dtype) -> FrozenWeights:
        """The same weights in ``dtype`` (itself when they already are; otherwise a copy, made once and kept)."""
        if dtype == self.weights[0].dtype:
            return self
        if dtype not in self._casts:
            cast = FrozenWeights([w.to(dtype) for w in self.weights], [b.to(dtype) for b in self.biases])
            cast.groups = self.groups
            self._casts[dtype] = cast
        return self._casts[dtype]

    def requires_grad(self) -> bool:
        """Whether any tensor is part of an autograd graph (then the autograd-safe path runs)."""
        return any(t.requires_grad for t in (*self.weights, *self.biases))

"""Vectorised ensembles: stacked member weights and one batched matmul per layer.

Two layouts are supported:

- plain: ``x [E, R, in]`` with the module's own weights ``[E, in, out]``;
- grouped: ``x [E, B, R, in]`` (B environments) with either the shared weights ``[E, in, out]`` or per-environment
  weights ``[E, B, in, out]`` (what the gradient adapter produces), plus an optional per-environment conditioning
  vector ``cond [B, Z]`` that is treated as extra input features. The conditioning enters as a per-environment bias of
  the first layer (``cond @ W_z``, computed once per environment), so the ``R`` rows never carry a copy of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "relu": F.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
}
"""Activation names accepted by :class:`EnsembleMLP` (``silu`` is the swish of PETS / CaDM)."""


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    """Look up an activation function by name.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


class EnsembleLinear(nn.Module):
    """E independent linear layers evaluated with one ``torch.baddbmm``.

    Args:
        in_features: input size.
        out_features: output size.
        ensemble_size: E.
        generator: source of the initial weights (truncated normal, std ``1 / (2 sqrt(in))`` as in PETS; zero
            bias). None uses torch's default generator.

    Attributes:
        weight: ``[E, in, out]``.
        bias: ``[E, 1, out]``.
    """

    def __init__(
        self, in_features: int, out_features: int, ensemble_size: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if min(in_features, out_features, ensemble_size) < 1:
            raise ValueError(
                f"EnsembleLinear needs positive sizes, got in_features={in_features}, out_features={out_features}, "
                f"ensemble_size={ensemble_size}"
            )
        self.in_features, self.out_features, self.ensemble_size = in_features, out_features, ensemble_size
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, out_features))
        std = 1.0 / (2.0 * math.sqrt(in_features))
        nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        """Apply member e's layer to ``x[e]``.

        Args:
            x: ``[E, R, in]``.

        Returns:
            ``[E, R, out]``.
        """
        if x.dim() != 3 or x.shape[0] != self.ensemble_size or x.shape[-1] != self.in_features:
            raise ValueError(
                f"EnsembleLinear expects x [E={self.ensemble_size}, R, in={self.in_features}], got {tuple(x.shape)}"
            )
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:  # noqa: D102
        return f"in_features={self.in_features}, out_features={self.out_features}, ensemble_size={self.ensemble_size}"


def grouped_linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """One ensemble layer over B groups of rows, with shared or per-group weights.

    Args:
        x: ``[E, B, R, in]``.
        weight: ``[E, in, out]`` (shared by the groups) or ``[E, B, in, out]`` (one per group).
        bias: ``[E, 1, out]`` or ``[E, B, 1, out]`` matching ``weight``.

    Returns:
        ``[E, B, R, out]``.
    """
    e, b, r, _ = x.shape
    out = weight.shape[-1]
    if weight.dim() == 3:
        # Groups share the member's weights: fold them into the row dimension for one [E]-batched matmul.
        return torch.baddbmm(bias, x.reshape(e, b * r, -1), weight).view(e, b, r, out)
    return torch.baddbmm(bias.reshape(e * b, 1, out), x.reshape(e * b, r, -1), weight.reshape(e * b, -1, out)).view(
        e, b, r, out
    )


class EnsembleMLP(nn.Module):
    """An ensemble of E MLPs with stacked weights.

    Args:
        in_features: input size (including any conditioning features passed as ``cond``).
        out_features: output size.
        hidden_sizes: widths of the hidden layers (empty: a single linear layer).
        ensemble_size: E.
        activation: one of :data:`ACTIVATIONS`.
        generator: source of the initial weights (None: torch's default generator).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (200, 200, 200, 200),
        ensemble_size: int = 5,
        activation: str = "silu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.activation_name = activation
        self.activation = activation_fn(activation)
        sizes = [in_features, *hidden_sizes, out_features]
        self.layers = nn.ModuleList(
            EnsembleLinear(i, o, ensemble_size, generator=generator) for i, o in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.in_features, self.out_features, self.ensemble_size = in_features, out_features, ensemble_size

    def forward(self, x: Tensor) -> Tensor:
        """Member e maps ``x[e]``.

        Args:
            x: ``[E, R, in]``.

        Returns:
            ``[E, R, out]``.
        """
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x

    def params(self) -> dict[str, Tensor]:
        """The weights as a name -> tensor dict (the keys :meth:`grouped_forward` accepts)."""
        return dict(self.named_parameters())

    def grouped_forward(
        self, x: Tensor, params: Mapping[str, Tensor] | None = None, cond: Tensor | None = None
    ) -> Tensor:
        """Evaluate on B groups of rows, optionally with per-group weights and a per-group conditioning vector.

        Args:
            x: ``[E, B, R, in - Z]``.
            params: None (own weights) or a dict with some or all of the keys of :meth:`params` holding shared
                ``[E, ...]`` or per-group ``[E, B, ...]`` tensors (decided layer by layer); missing keys use the
                module's own weights.
            cond: ``[B, Z]`` extra input features common to all rows of a group, or None (Z = 0).

        Returns:
            ``[E, B, R, out]``.
        """
        p = self.params() if params is None else {**self.params(), **params}
        z = 0 if cond is None else cond.shape[-1]
        if x.dim() != 4 or x.shape[-1] + z != self.in_features:
            raise ValueError(
                f"EnsembleMLP.grouped_forward expects x [E, B, R, {self.in_features - z}] (in_features "
                f"{self.in_features} minus cond size {z}), got {tuple(x.shape)}"
            )
        n = len(self.layers)
        for i in range(n):
            weight, bias = p[f"layers.{i}.weight"], p[f"layers.{i}.bias"]
            if i == 0 and cond is not None:
                w_x, w_z = weight[..., : x.shape[-1], :], weight[..., x.shape[-1] :, :]
                # cond @ W_z once per (member, group): [E, B, out], broadcast over the group's rows below.
                extra = torch.einsum("bz,ezo->ebo" if weight.dim() == 3 else "bz,ebzo->ebo", cond, w_z)
                x = grouped_linear(x, w_x, bias) + extra.unsqueeze(-2)
            else:
                x = grouped_linear(x, weight, bias)
            if i < n - 1:
                x = self.activation(x)
        return x

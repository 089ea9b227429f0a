"""Learned reward model ``r(s, a, s', z)``.

Design choice: a separate small ensemble (default 2×200, E members like the dynamics) rather than an extra output of
the dynamics trunk, so the reward sees the next state explicitly — many locomotion rewards are functions of ``s'``
(e.g. forward velocity). The next state enters as the normalised state change ``Δ = s' - s`` (the same information
as ``s'`` given ``s``, and already at hand in normalised form when the dynamics predicts it). In training ``Δ`` is the
true change (teacher forcing); at planning time it is the dynamics' predicted mean. The conditioning vector ``z`` of
the adapter enters like in the dynamics net (a per-environment first-layer bias); the gradient adapter adapts the
reward net's weights together with the dynamics'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from mbmeta.models.ensemble import EnsembleMLP
from mbmeta.models.ensemble_weights import FrozenWeights, LayerTrace, Weight
from mbmeta.models.layer_weights import NetWeights


class RewardNet(EnsembleMLP):
    """Ensemble predicting the normalised reward from normalised ``(s, a, Δ)`` and an optional context ``z``.

    Args:
        obs_dim: O.
        action_dim: A.
        latent_dim: Z (0 without conditioning).
        hidden_sizes: hidden widths.
        ensemble_size: E.
        activation: activation name (see :data:`mbmeta.models.ensemble.ACTIVATIONS`).
        generator: source of the initial weights.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        latent_dim: int = 0,
        hidden_sizes: Sequence[int] = (200, 200),
        ensemble_size: int = 5,
        activation: str = "silu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(2 * obs_dim + action_dim + latent_dim, 1, hidden_sizes, ensemble_size, activation, generator)

    def predict(
        self,
        obs_action: Tensor,
        delta: Tensor,
        params: NetWeights[Weight] | Mapping[str, Weight] | FrozenWeights | None = None,
        cond: Tensor | None = None,
        trace: LayerTrace | None = None,
    ) -> Tensor:
        """Predict the normalised reward (raw, with frozen weights that fold the normaliser in).

        Args:
            obs_action: ``[E, B, R, O + A]`` normalised state and action.
            delta: ``[E, B, R, O]`` normalised state change.
            params: optional weights of some layers (shared ``[E, ...]``, per environment ``[E, B, ...]`` or
                low-rank; see :meth:`EnsembleMLP.grouped_forward`), or frozen weights (:meth:`EnsembleMLP.freeze`).
            cond: ``[B, Z]``, ``[E, B, Z]`` or None.
            trace: see :class:`~mbmeta.models.ensemble_weights.LayerTrace`.

        Returns:
            ``[E, B, R]`` normalised reward.
        """
        return self.grouped_forward(torch.cat([obs_action, delta], dim=-1), params, cond, trace).squeeze(-1)

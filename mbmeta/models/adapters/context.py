"""CaDM-style context encoder: a per-transition MLP over ``(s, a, Δs)``, averaged over the valid context slots."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mbmeta.models.adapters.base import Adaptation, Adapter, NormalisedSegment, masked_mean, segment_features
from mbmeta.models.ensemble import EnsembleMLP


class ContextAdapter(Adapter):
    """Encodes each context transition and takes the masked mean as the latent ``z``.

    The mean makes ``z`` independent of the order and number of transitions, so short windows at the start of an
    episode (padded slots masked out) and an empty window (``z = 0``, the "no information" context) need no special
    casing. One adaptation costs one encoder pass over the ``B × K`` transitions and no gradient step.

    Args:
        obs_dim: O.
        action_dim: A.
        latent_dim: Z (CaDM: 10).
        hidden_sizes: encoder widths (CaDM: 256-128-64).
        activation: activation name.
        generator: source of the initial weights.
    """

    has_encoder = True

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        latent_dim: int = 10,
        hidden_sizes: Sequence[int] = (256, 128, 64),
        activation: str = "silu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"ContextAdapter needs latent_dim >= 1, got {latent_dim}")
        self.latent_dim = latent_dim
        # A one-member ensemble: same layer code and seeded init as the dynamics nets.
        self.encoder = EnsembleMLP(2 * obs_dim + action_dim, latent_dim, hidden_sizes, 1, activation, generator)

    def forward(self, model, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None) -> Adaptation:  # noqa: D102
        x = segment_features(context)
        b, k, d = x.shape
        h = self.encoder(x.reshape(1, b * k, d)).view(b, k, self.latent_dim)
        return Adaptation(z=masked_mean(h, mask), params=None)

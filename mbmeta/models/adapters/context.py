"""CaDM-style context encoder: a per-transition MLP over ``(s, a, Δs)``, averaged over the valid context slots.

One encoder shared by the ensemble (CaDM), or one per member (``per_member``): then each member is a whole
context-conditioned model with its own ``z``, and the members disagree where their encoders do, which is where the
context is unlike the training data (the planner's particles then see that uncertainty).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mbmeta.models.adapters.base import (
    AdaptableModel,
    Adaptation,
    Adapter,
    NormalisedSegment,
    masked_mean,
    segment_features,
)
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
        ensemble_size: E, the number of encoders when ``per_member`` (ignored otherwise).
        per_member: one encoder per ensemble member, so ``z`` is ``[E, B, Z]``; otherwise one shared encoder and
            ``z`` is ``[B, Z]``.
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
        ensemble_size: int = 1,
        per_member: bool = False,
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"ContextAdapter needs latent_dim >= 1, got {latent_dim}")
        if per_member and ensemble_size < 1:
            raise ValueError(f"ContextAdapter(per_member=True) needs ensemble_size >= 1, got {ensemble_size}")
        self.latent_dim, self.per_member = latent_dim, per_member
        # Same layer code and seeded init as the dynamics nets; one member unless there is one encoder per member.
        encoders = ensemble_size if per_member else 1
        self.encoder = EnsembleMLP(2 * obs_dim + action_dim, latent_dim, hidden_sizes, encoders, activation, generator)

    def forward(
        self, model: AdaptableModel, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None
    ) -> Adaptation:
        """Adapt to each environment's context (see :meth:`Adapter.forward`)."""
        x = segment_features(context)
        b, k, d = x.shape
        e = self.encoder.ensemble_size
        h = self.encoder(x.reshape(1, b * k, d).expand(e, -1, -1))  # [E, B·K, Z]: every encoder sees every slot
        if not self.per_member:
            return Adaptation(z=masked_mean(h.view(b, k, self.latent_dim), mask), params=None)
        members_mask = None if mask is None else mask.repeat(e, 1)  # [E·B, K], member-major like h
        z = masked_mean(h.reshape(e * b, k, self.latent_dim), members_mask).view(e, b, self.latent_dim)
        return Adaptation(z=z, params=None)

"""ReBAL-style recurrent adapter: a GRU over the context history whose final state gives ``z``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mbmeta.models.adapters.base import AdaptableModel, Adaptation, Adapter, NormalisedSegment, segment_features


class RecurrentAdapter(Adapter):
    """Runs a GRU cell over ``(s, a, Δs)`` oldest first; ``z = W h_K + b``.

    Masked (padded) slots leave the hidden state unchanged, so a left-padded window gives exactly the state of the
    unpadded one, and an empty window gives ``z = b`` (a learned default context).

    Args:
        obs_dim: O.
        action_dim: A.
        latent_dim: Z.
        hidden_size: GRU state size.
        generator: source of the initial weights (uniform ``±1/sqrt(hidden)`` as torch's GRU default).
    """

    has_encoder = True

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        latent_dim: int = 10,
        hidden_size: int = 128,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if latent_dim < 1 or hidden_size < 1:
            raise ValueError(f"RecurrentAdapter needs latent_dim, hidden_size >= 1, got {latent_dim}, {hidden_size}")
        self.latent_dim, self.hidden_size = latent_dim, hidden_size
        self.cell = nn.GRUCell(2 * obs_dim + action_dim, hidden_size)
        self.out = nn.Linear(hidden_size, latent_dim)
        bound = 1.0 / math.sqrt(hidden_size)
        with torch.no_grad():
            for p in self.parameters():
                nn.init.uniform_(p, -bound, bound, generator=generator)

    def forward(
        self, model: AdaptableModel, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None
    ) -> Adaptation:
        """Adapt to each environment's context (see :meth:`Adapter.forward`)."""
        x = segment_features(context)
        h = x.new_zeros(x.shape[0], self.hidden_size)
        # A loop over the K time steps (not over members or environments): recurrence is inherently sequential.
        for k in range(x.shape[1]):
            h_next = self.cell(x[:, k], h)
            h = h_next if mask is None else torch.where(mask[:, k, None], h_next, h)
        return Adaptation(z=self.out(h), params=None)

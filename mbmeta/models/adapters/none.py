"""No adaptation: the plain ensemble (the PETS baseline)."""

from __future__ import annotations

from torch import Tensor

from mbmeta.models.adapters.base import AdaptableModel, Adaptation, Adapter, NormalisedSegment


class NoAdapter(Adapter):
    """Ignores the context; the model predicts with its shared weights and no conditioning."""

    latent_dim = 0

    def forward(
        self, model: AdaptableModel, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None
    ) -> Adaptation:
        """Adapt to each environment's context (see :meth:`Adapter.forward`)."""
        return Adaptation(z=None, params=None)

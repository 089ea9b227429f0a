"""No adaptation: the plain ensemble (the PETS baseline)."""

from __future__ import annotations

from torch import Tensor

from mbmeta.models.adapters.base import Adaptation, Adapter, NormalisedSegment


class NoAdapter(Adapter):
    """Ignores the context; the model predicts with its shared weights and no conditioning."""

    latent_dim = 0

    def forward(self, model, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None) -> Adaptation:  # noqa: D102
        return Adaptation(z=None, params=None)

"""Oracle adapter: conditions on the true task parameters (the upper bound of what a context can tell)."""

from __future__ import annotations

from torch import Tensor

from mbmeta.models.adapters.base import AdaptableModel, Adaptation, Adapter, NormalisedSegment


class OracleAdapter(Adapter):
    """``z`` is the normalised true task vector ``[B, T]``; the context is ignored.

    Args:
        task_dim: T (must be >= 1).
    """

    def __init__(self, task_dim: int) -> None:
        super().__init__()
        if task_dim < 1:
            raise ValueError(f"OracleAdapter needs task_dim >= 1 (the number of task parameters), got {task_dim}")
        self.latent_dim = task_dim

    def forward(
        self, model: AdaptableModel, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None
    ) -> Adaptation:
        """Adapt to each environment's context (see :meth:`Adapter.forward`)."""
        b = context.obs.shape[0]
        if task is None:
            raise ValueError("the oracle adapter needs the true task parameters: pass task [B, T] to adapt()")
        if task.dim() != 2 or task.shape != (b, self.latent_dim):
            raise ValueError(f"oracle adapter: task must be [B={b}, T={self.latent_dim}], got {tuple(task.shape)}")
        return Adaptation(z=model.normalise_task(task.to(context.obs.dtype)), params=None)

"""Adapters, one per meta-learning method, chosen by name with :func:`build_adapter`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from mbmeta.models.adapters.base import Adaptation, Adapter, NormalisedSegment, masked_mean
from mbmeta.models.adapters.context import ContextAdapter
from mbmeta.models.adapters.gradient import GradientAdapter
from mbmeta.models.adapters.none import NoAdapter
from mbmeta.models.adapters.oracle import OracleAdapter
from mbmeta.models.adapters.recurrent import RecurrentAdapter

AdaptationName = Literal["none", "context", "gradient", "recurrent", "oracle"]
ADAPTATION_NAMES: tuple[str, ...] = ("none", "context", "gradient", "recurrent", "oracle")


def build_adapter(
    name: str,
    obs_dim: int,
    action_dim: int,
    task_dim: int = 0,
    latent_dim: int = 10,
    context_hidden: Sequence[int] = (256, 128, 64),
    gru_hidden: int = 128,
    inner_steps: int = 1,
    inner_lr: float = 0.01,
    learn_inner_lr: bool = False,
    first_order: bool = False,
    inner_grad_clip: float | None = None,
    activation: str = "silu",
    generator: torch.Generator | None = None,
    ensemble_size: int = 1,
    context_per_member: bool = False,
) -> Adapter:
    """Build the adapter of a method by name.

    Args:
        name: one of ``none`` (PETS), ``context`` (CaDM), ``gradient`` (GrBAL), ``recurrent`` (ReBAL), ``oracle``.
        obs_dim: O.
        action_dim: A.
        task_dim: T (the oracle's latent size).
        latent_dim: Z for ``context`` and ``recurrent``.
        context_hidden: encoder widths for ``context``.
        gru_hidden: GRU state size for ``recurrent``.
        inner_steps: SGD steps for ``gradient``.
        inner_lr: SGD step size for ``gradient``.
        learn_inner_lr: learn the step size for ``gradient``.
        first_order: first-order MAML for ``gradient``.
        inner_grad_clip: per-environment L2 bound on ``gradient``'s inner gradient (None: unclipped).
        activation: encoder activation for ``context``.
        generator: source of initial weights.
        ensemble_size: E (the number of encoders of ``context`` when ``context_per_member``).
        context_per_member: ``context`` with one encoder per ensemble member (``z`` ``[E, B, Z]``).

    Raises:
        ValueError: unknown name.
    """
    if name == "none":
        return NoAdapter()
    if name == "context":
        return ContextAdapter(
            obs_dim, action_dim, latent_dim, context_hidden, activation, generator, ensemble_size, context_per_member
        )
    if name == "gradient":
        return GradientAdapter(inner_steps, inner_lr, learn_inner_lr, first_order, inner_grad_clip)
    if name == "recurrent":
        return RecurrentAdapter(obs_dim, action_dim, latent_dim, gru_hidden, generator)
    if name == "oracle":
        return OracleAdapter(task_dim)
    raise ValueError(f"adaptation must be one of {list(ADAPTATION_NAMES)}, got {name!r}")


__all__ = [
    "ADAPTATION_NAMES",
    "Adaptation",
    "AdaptationName",
    "Adapter",
    "ContextAdapter",
    "GradientAdapter",
    "NoAdapter",
    "NormalisedSegment",
    "OracleAdapter",
    "RecurrentAdapter",
    "build_adapter",
    "masked_mean",
]

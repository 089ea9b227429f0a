"""What every adapter shares: the normalised context it reads, the model it adapts, the adaptation it returns.

Adapters see the model only through :class:`AdaptableModel`, a small declared interface, so the adapters package
depends on no model class (the model depends on the adapters, not the other way round).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import NamedTuple, Protocol

import torch
from torch import Tensor, nn

from mbmeta.models.ensemble_weights import LayerTrace, LowRankUpdate, Weight
from mbmeta.models.layer_weights import NetWeights, as_net_weights

AdaptableWeights = Mapping[str, NetWeights[Tensor]]
"""A model's adaptable weights per network (``{"dynamics": ..., "reward": ...}``), shared ``[E, ...]`` tensors."""


class NormalisedSegment(NamedTuple):
    """Transitions in normalised units (see :class:`mbmeta.models.normaliser.Normaliser`).

    Attributes:
        obs: ``[B, K, O]``.
        action: ``[B, K, A]``.
        delta: ``[B, K, O]`` normalised ``next_obs - obs``.
        reward: ``[B, K]``.
    """

    obs: Tensor
    action: Tensor
    delta: Tensor
    reward: Tensor


class Adaptation(NamedTuple):
    """The result of adapting to B environments.

    Attributes:
        z: ``[B, Z]`` conditioning vector for the dynamics and reward nets (``[E, B, Z]`` when each member has its
            own), or None (Z = 0).
        params: per-environment weights of some layers per network (``{"dynamics": NetWeights, "reward": ...}``,
            each weight ``[E, B, ...]`` or a :class:`LowRankUpdate`) replacing the shared ones, or None to use the
            model's own weights.
    """

    z: Tensor | None
    params: Mapping[str, NetWeights[Weight]] | None

    def detach(self) -> Adaptation:
        """The same adaptation cut from the autograd graph."""
        z = None if self.z is None else self.z.detach()
        return Adaptation(z=z, params=self._map_params(lambda w: w.detach()))

    def materialise(self) -> Adaptation:
        """The same adaptation with every :class:`LowRankUpdate` built into full ``[E, B, in, out]`` weights.

        Worth it when the adapted model will evaluate many rows per environment (planning: thousands of candidate
        rows per call, B = the few environments), where each row then costs one plain matmul.
        """
        return Adaptation(
            z=self.z, params=self._map_params(lambda w: w.materialise() if isinstance(w, LowRankUpdate) else w)
        )

    def _map_params(self, fn) -> dict[str, NetWeights[Weight]] | None:
        if self.params is None:
            return None
        return {net: as_net_weights(weights).map(fn) for net, weights in self.params.items()}


class AdaptableModel(Protocol):
    """What an adapter may ask of the model it adapts, and all it may ask.

    :class:`~mbmeta.models.dynamics.MetaDynamicsModel` implements it. The model's class, networks and parameter names
    stay out of reach: the weights come as :class:`~mbmeta.models.layer_weights.NetWeights` (by layer position).
    """

    def normalise_task(self, task: Tensor) -> Tensor:
        """True task parameters ``[B, T]`` in the model's normalised units ``[B, T]``."""
        ...

    def adaptable_params(self) -> AdaptableWeights:
        """The weights an adapter may replace per environment, per network and layer (shared ``[E, ...]``)."""
        ...

    def inner_loss(
        self,
        params: Mapping[str, NetWeights[Weight]] | None,
        context: NormalisedSegment,
        mask: Tensor,
        traces: Mapping[str, LayerTrace] | None = None,
    ) -> Tensor:
        """The context loss ``[]`` under the given weights, summed over environments and members.

        Args:
            params: weights replacing some of :meth:`adaptable_params` (shared, per environment or low-rank), or
                None for the model's own.
            context: normalised fields ``[B, K, ...]``.
            mask: ``[B, K]`` bool, True on valid slots.
            traces: per network, a :class:`~mbmeta.models.ensemble_weights.LayerTrace` recording the chosen layers'
                inputs and pre-activation probes.
        """
        ...


class Adapter(nn.Module, ABC):
    """Turns a context into an :class:`Adaptation`. Subclasses set ``latent_dim`` (Z; 0 when they produce no z).

    ``has_encoder`` tells fine-tuning whether the adapter owns an encoder that ``frozen_encoder`` should freeze.
    """

    latent_dim: int = 0
    has_encoder: bool = False

    def bind(self, params: AdaptableWeights) -> None:  # noqa: B027 - optional hook, no-op by default
        """Called once by the model after its networks exist, with its adaptable weights (shared ``[E, ...]``)."""

    @abstractmethod
    def forward(
        self, model: AdaptableModel, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None
    ) -> Adaptation:
        """Adapt to each environment's context.

        Args:
            model: the model being adapted, seen only through :class:`AdaptableModel`.
            context: normalised fields ``[B, K, ...]``, oldest first.
            mask: ``[B, K]`` bool, True where the slot holds a real transition; None means all valid.
            task: ``[B, T]`` true task parameters (only the oracle reads them).

        Returns:
            The adaptation for the B environments.
        """


def masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over the K dimension counting only valid slots; rows with no valid slot give zeros.

    Args:
        values: ``[B, K, D]``.
        mask: ``[B, K]`` bool or None (all valid).

    Returns:
        ``[B, D]``.
    """
    b, k, d = values.shape
    if k == 0:
        return values.new_zeros(b, d)
    if mask is None:
        return values.mean(1)
    weights = mask.to(values.dtype).unsqueeze(-1)
    # where() rather than multiply: a NaN/inf in a padded slot must not leak into the mean.
    total = torch.where(weights > 0, values, torch.zeros_like(values)).sum(1)
    return total / weights.sum(1).clamp(min=1.0)


def segment_features(context: NormalisedSegment) -> Tensor:
    """Per-transition encoder input ``(s, a, Δs)``: ``[B, K, 2O + A]``."""
    return torch.cat([context.obs, context.action, context.delta], dim=-1)

"""GrBAL / MAML-style gradient adapter: a few SGD steps on the context, one set of weights per environment."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mbmeta.models.adapters.base import AdaptableModel, AdaptableWeights, Adaptation, Adapter, NormalisedSegment
from mbmeta.models.ensemble_weights import LayerTrace, LowRankUpdate, Weight
from mbmeta.models.layer_weights import LayerWeights, NetWeights


def _step_size_key(net: str, layer: int, kind: str) -> str:
    # The learned step sizes' own names (ParameterDict keys may not contain dots); kept as they were so that
    # checkpoints written before still load.
    return f"{net}__layers_{layer}_{kind}"


class GradientAdapter(Adapter):
    """Takes ``inner_steps`` SGD steps per environment on the context loss, starting from the shared weights.

    Each environment b minimises its own context loss (the model's ``inner_loss``, see
    :class:`~mbmeta.models.adapters.base.AdaptableModel`; for :class:`~mbmeta.models.dynamics.MetaDynamicsModel`
    the mean-squared error of the normalised state change and reward over the environment's valid context slots,
    summed over members). The per-environment
    gradients come from one batched pass over all B contexts and one ``torch.autograd.grad``: for a linear layer,
    environment b's weight gradient is ``H_b^T G_b`` with ``H_b [K, in]`` the layer's inputs on b's context rows and
    ``G_b [K, out]`` the loss gradient w.r.t. its pre-activations there
    (:class:`~mbmeta.models.ensemble_weights.LayerTrace` records both). So the adapted weights are kept as
    ``W - lr H^T G`` in factored form (:class:`~mbmeta.models.ensemble_weights.LowRankUpdate`; rank <= steps x K) and
    the biases as ``[E, B, 1, out]``: no ``[E, B, in, out]`` copies while training, where B is hundreds of segments.
    :class:`AdaptedModel` builds the full
    per-environment weights once for planning, where B is a few environments and the rows are many.

    Training backpropagates through the inner steps (second-order MAML) unless ``first_order`` is set, in which
    case the inner gradients are treated as constants (FOMAML). An environment with no valid context slot gets a
    zero inner gradient and so keeps the unadapted weights.

    ``adapt`` also works under ``torch.no_grad()`` (planning; the inner gradients are taken in an ``enable_grad``
    block and the result carries no graph) and inside Lightning's ``inference_mode`` validation loop (inference
    tensors are copied out first).

    Args:
        inner_steps: number of SGD steps (0: no adaptation).
        inner_lr: SGD step size (GrBAL: 1e-3 with unnormalised MSE; ours acts on normalised units).
        learn_inner_lr: learn one step size per adapted weight tensor with the outer loss (Meta-SGD at tensor
            granularity), each initialised to ``inner_lr``.
        first_order: drop second-order terms (cheaper, and usable when the outer loss should not see the inner
            steps' curvature).
        inner_grad_clip: rescale each inner gradient so that its L2 norm over all adapted tensors, per environment
            and member, is at most this (None: no clipping). A context far outside the training data can give a
            huge inner gradient whose step takes the weights where they were never meta-trained; clipping bounds
            the step. It is part of the adapted function, so it applies in training and planning alike.
    """

    def __init__(
        self,
        inner_steps: int = 1,
        inner_lr: float = 0.01,
        learn_inner_lr: bool = False,
        first_order: bool = False,
        inner_grad_clip: float | None = None,
    ) -> None:
        super().__init__()
        if inner_steps < 0:
            raise ValueError(f"GradientAdapter needs inner_steps >= 0, got {inner_steps}")
        if not inner_lr > 0:
            raise ValueError(f"GradientAdapter needs inner_lr > 0, got {inner_lr}")
        if inner_grad_clip is not None and not inner_grad_clip > 0:
            raise ValueError(f"GradientAdapter needs inner_grad_clip > 0 or None, got {inner_grad_clip}")
        self.inner_steps, self.first_order, self.learn_inner_lr = inner_steps, first_order, learn_inner_lr
        self.inner_grad_clip = inner_grad_clip
        self.register_buffer("log_inner_lr", torch.tensor(math.log(inner_lr)))
        self.log_lrs = nn.ParameterDict()

    def bind(self, params: AdaptableWeights) -> None:
        """Create the learned per-tensor step sizes (when ``learn_inner_lr``) for the model's adaptable weights."""
        if self.learn_inner_lr:
            # In the order of the model's parameters (layer by layer, weight before bias), as before.
            for net, weights in params.items():
                for i, pair in weights.layers.items():
                    for kind, tensor in zip(LayerWeights._fields, pair, strict=True):
                        if tensor is not None:
                            self.log_lrs[_step_size_key(net, i, kind)] = nn.Parameter(self.log_inner_lr.clone())

    def step_sizes(self, params: AdaptableWeights) -> dict[str, NetWeights[Tensor]]:
        """The inner step size ``[]`` of every adaptable tensor, laid out like ``params``."""
        fixed = self.log_inner_lr.exp()

        def size(net: str, i: int, kind: str, tensor: Tensor | None) -> Tensor | None:
            if tensor is None:
                return None
            return self.log_lrs[_step_size_key(net, i, kind)].exp() if self.learn_inner_lr else fixed

        return {
            net: NetWeights(
                {
                    i: LayerWeights(size(net, i, "weight", w), size(net, i, "bias", b))
                    for i, (w, b) in weights.layers.items()
                }
            )
            for net, weights in params.items()
        }

    def forward(
        self, model: AdaptableModel, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None
    ) -> Adaptation:
        """Adapt to each environment's context (see :meth:`Adapter.forward`)."""
        b, k = context.obs.shape[:2]
        if self.inner_steps == 0 or k == 0:
            return Adaptation(z=None, params=None)
        if mask is None:
            mask = torch.ones(b, k, dtype=torch.bool, device=context.obs.device)
        # inference_mode(False) also switches grad mode on; restore the caller's (off under no_grad / inference).
        grad_enabled = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
        # Second-order: the inner gradients stay in the outer graph. Otherwise they are constants.
        keep_graph = grad_enabled and not self.first_order
        with torch.inference_mode(False), torch.set_grad_enabled(grad_enabled):
            # Inference-mode tensors (e.g. Lightning's validation loop) cannot enter autograd: copy them out.
            context = NormalisedSegment(*(t.clone() if t.is_inference() else t for t in context))
            mask = mask.clone() if mask.is_inference() else mask
            shared = model.adaptable_params()
            lrs = self.step_sizes(shared)
            layers = {net: list(weights.layers) for net, weights in shared.items()}
            # Per net and layer: the traced inputs H and the lr-scaled pre-activation gradients of every step.
            inputs: dict[str, dict[int, list[Tensor]]] = {net: {i: [] for i in idx} for net, idx in layers.items()}
            grads: dict[str, dict[int, list[Tensor]]] = {net: {i: [] for i in idx} for net, idx in layers.items()}
            params: Mapping[str, NetWeights[Weight]] = shared
            for _ in range(self.inner_steps):
                traces = {net: LayerTrace(idx) for net, idx in layers.items()}
                with torch.enable_grad():  # the inner gradient is needed even when the caller plans under no_grad
                    loss = model.inner_loss(params, context, mask, traces)
                    probes = [traces[net].probes[i] for net, idx in layers.items() for i in idx]
                    step = iter(torch.autograd.grad(loss, probes, create_graph=keep_graph))
                step_grads = {net: {i: next(step) for i in idx} for net, idx in layers.items()}
                if self.inner_grad_clip is not None:
                    step_grads = self._clipped(shared, traces, step_grads, self.inner_grad_clip, keep_graph)
                for net, idx in layers.items():
                    for i in idx:
                        h, g = traces[net].inputs[i], step_grads[net][i]
                        inputs[net][i].append(h if keep_graph else h.detach())
                        grads[net][i].append(g)
                params = self._updated(shared, lrs, inputs, grads)
        return Adaptation(z=None, params=params)

    @staticmethod
    def _clipped(
        shared: AdaptableWeights,
        traces: dict[str, LayerTrace],
        grads: dict[str, dict[int, Tensor]],
        max_norm: float,
        keep_graph: bool,
    ) -> dict[str, dict[int, Tensor]]:
        """Scale the pre-activation gradients ``G [E, B, K, out]``: each (member, environment) update norm <= max.

        The weight gradient ``H^T G`` has squared Frobenius norm ``sum((H H^T) * (G G^T))`` (``[K, K]`` Gram
        matrices, no ``[in, out]`` product built) and the bias gradient is ``sum_k G_k``; both are linear in G, so
        scaling G scales the whole update. Under second order the scale stays in the graph (the outer gradient
        sees the clipping).
        """
        squared = 0.0
        for net, by_layer in grads.items():
            for i, g in by_layer.items():
                own = shared[net].layer(i)
                if own.weight is not None:
                    h = traces[net].inputs[i]
                    squared = squared + ((h @ h.transpose(-1, -2)) * (g @ g.transpose(-1, -2))).sum((-1, -2))
                if own.bias is not None:
                    squared = squared + g.sum(-2).square().sum(-1)
        # clamp_min keeps the square root's gradient finite where the gradient is exactly zero (no valid context).
        norm = squared.clamp_min(1e-24).sqrt()  # [E, B]
        scale = (max_norm / norm).clamp(max=1.0)[..., None, None]
        if not keep_graph:  # first order: the clipped gradient is a constant, like the gradient itself
            scale = scale.detach()
        return {net: {i: g * scale for i, g in by_layer.items()} for net, by_layer in grads.items()}

    @staticmethod
    def _updated(
        shared: AdaptableWeights,
        lrs: Mapping[str, NetWeights[Tensor]],
        inputs: dict[str, dict[int, list[Tensor]]],
        grads: dict[str, dict[int, list[Tensor]]],
    ) -> dict[str, NetWeights[Weight]]:
        """The weights after the steps so far: ``W - lr_W sum_s H_s^T G_s`` and ``bias - lr_b sum_s,k G_s``."""
        params: dict[str, NetWeights[Weight]] = {}
        for net, by_layer in grads.items():
            updated: dict[int, LayerWeights] = {}
            for i, steps in by_layer.items():
                own, lr = shared[net].layer(i), lrs[net].layer(i)
                g = torch.cat(steps, dim=2)  # [E, B, S, out]
                weight = bias = None
                if own.weight is not None:
                    h = torch.cat(inputs[net][i], dim=2)  # [E, B, S, in]
                    weight = LowRankUpdate(own.weight, h, lr.weight * g)
                if own.bias is not None:
                    bias = own.bias.unsqueeze(1) - lr.bias * g.sum(2, keepdim=True)  # [E, B, 1, out]
                updated[i] = LayerWeights(weight, bias)
            params[net] = NetWeights(updated)
        return params

"""GrBAL / MAML-style gradient adapter: a few SGD steps on the context, one set of weights per environment."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import grad, vmap

from mbmeta.models.adapters.base import Adaptation, Adapter, NormalisedSegment

Params = dict[str, dict[str, Tensor]]


def _key(net: str, name: str) -> str:
    # ParameterDict keys may not contain dots.
    return f"{net}__{name.replace('.', '_')}"


def _map_params(fn: Callable[..., Tensor], *trees: Params) -> Params:
    """Apply ``fn`` leafwise to nested ``{net: {name: tensor}}`` dicts of identical structure."""
    return {net: {name: fn(*(t[net][name] for t in trees)) for name in trees[0][net]} for net in trees[0]}


class GradientAdapter(Adapter):
    """Takes ``inner_steps`` SGD steps per environment on the context loss, starting from the shared weights.

    The per-environment gradients come from ``torch.func``: ``vmap`` over the B environments of ``grad`` of the
    model's inner loss (:meth:`MetaDynamicsModel.inner_loss`: mean-squared error of the normalised state change
    and reward over the valid context slots, summed over members). The result is a full set of weights per member
    and environment, ``[E, B, ...]``, used by one grouped batched matmul per layer when predicting.

    Training backpropagates through the inner steps (second-order MAML) unless ``first_order`` is set, in which
    case the inner gradients are treated as constants (FOMAML). An environment with no valid context slot gets a
    zero inner gradient and so keeps the unadapted weights.

    ``torch.func.grad`` ignores an outer ``torch.no_grad()`` and inference-mode inputs are copied out, so ``adapt``
    works under ``torch.no_grad()`` (planning) and inside Lightning's ``inference_mode`` validation loop, and the
    returned weights carry no outer graph there.

    Args:
        inner_steps: number of SGD steps (0: no adaptation).
        inner_lr: SGD step size (GrBAL: 1e-3 with unnormalised MSE; ours acts on normalised units).
        learn_inner_lr: learn one step size per adapted weight tensor with the outer loss (Meta-SGD at tensor
            granularity), each initialised to ``inner_lr``.
        first_order: drop second-order terms (cheaper, and usable when the outer loss should not see the inner
            steps' curvature).
    """

    def __init__(
        self, inner_steps: int = 1, inner_lr: float = 0.01, learn_inner_lr: bool = False, first_order: bool = False
    ) -> None:
        super().__init__()
        if inner_steps < 0:
            raise ValueError(f"GradientAdapter needs inner_steps >= 0, got {inner_steps}")
        if not inner_lr > 0:
            raise ValueError(f"GradientAdapter needs inner_lr > 0, got {inner_lr}")
        self.inner_steps, self.first_order, self.learn_inner_lr = inner_steps, first_order, learn_inner_lr
        self.register_buffer("log_inner_lr", torch.tensor(math.log(inner_lr)))
        self.log_lrs = nn.ParameterDict()

    def bind(self, params: Params) -> None:
        """Create the learned per-tensor step sizes (when ``learn_inner_lr``) for the model's adaptable weights."""
        if self.learn_inner_lr:
            for net, named in params.items():
                for name in named:
                    self.log_lrs[_key(net, name)] = nn.Parameter(self.log_inner_lr.clone())

    def step_sizes(self, params: Params) -> dict[str, dict[str, Tensor]]:
        """The inner step size of every adaptable tensor (``[]`` each)."""
        fixed = self.log_inner_lr.exp()
        return {
            net: {name: self.log_lrs[_key(net, name)].exp() if self.learn_inner_lr else fixed for name in named}
            for net, named in params.items()
        }

    def forward(self, model, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None) -> Adaptation:  # noqa: D102
        b, k = context.obs.shape[:2]
        if self.inner_steps == 0 or k == 0:
            return Adaptation(z=None, params=None)
        if mask is None:
            mask = torch.ones(b, k, dtype=torch.bool, device=context.obs.device)
        # inference_mode(False) also switches grad mode on; restore the caller's (off under no_grad / inference).
        grad_enabled = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
        with torch.inference_mode(False), torch.set_grad_enabled(grad_enabled):
            # Inference-mode tensors (e.g. Lightning's validation loop) cannot enter autograd: copy them out.
            context = NormalisedSegment(*(t.clone() if t.is_inference() else t for t in context))
            mask = mask.clone() if mask.is_inference() else mask

            def env_loss(params: Params, obs: Tensor, action: Tensor, delta: Tensor, reward: Tensor, m: Tensor):
                one = NormalisedSegment(obs[None], action[None], delta[None], reward[None])
                return model.inner_loss(params, one, m[None])

            params = model.adaptable_params()
            lrs = self.step_sizes(params)
            per_env = False
            for _ in range(self.inner_steps):
                in_dims = (1 if per_env else None, 0, 0, 0, 0, 0)
                grads = vmap(grad(env_loss), in_dims=in_dims, out_dims=1)(params, *context, mask)
                if self.first_order:
                    grads = _map_params(Tensor.detach, grads)
                if per_env:
                    params = _map_params(lambda p, g, lr: p - lr * g, params, grads, lrs)
                else:
                    params = _map_params(lambda p, g, lr: p.unsqueeze(1) - lr * g, params, grads, lrs)
                per_env = True
        return Adaptation(z=None, params=params)

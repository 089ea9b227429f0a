"""The gradient adapter's factored update equals plain per-environment MAML, computed the obvious way.

The reference below takes each environment on its own: its context loss as a function of a full copy of the
adaptable weights, ``torch.autograd.grad`` of it (``create_graph`` for second order), and SGD steps that produce
``[E, in, out]`` weights per environment. The adapter must give the same predictions, and the same outer gradients
through them, from its low-rank form (see :class:`mbmeta.models.ensemble_weights.LowRankUpdate`).
"""

import pytest
import torch
from synthetic_family import make_batch
from test_adapters import GAINS, small_model

from mbmeta.models.adapters import Adaptation
from mbmeta.models.ensemble_weights import LowRankUpdate


def member_norms(grads) -> torch.Tensor:
    """``[E]`` L2 norm over all tensors of each member's gradient (every tensor's leading dim is the member)."""
    squared = torch.stack([g.flatten(1).square().sum(1) for g in grads]).sum(0)
    return squared.clamp_min(1e-24).sqrt()  # clamp: a finite gradient where the gradient is exactly zero


def reference_adaptation(model, context, mask, create_graph: bool) -> Adaptation:
    """Per-environment SGD on full weight copies (a Python loop over environments; slow but plainly right)."""
    shared = model.adaptable_params()
    lrs = model.adapter.step_sizes(shared)
    per_env = []
    for b in range(context.obs.shape[0]):
        one = type(context)(*(f[b : b + 1] for f in context))
        params = shared
        for _ in range(model.adapter.inner_steps):
            flat = [p for named in params.values() for p in named.values()]
            loss = model.inner_loss(params, one, mask[b : b + 1])
            grads = torch.autograd.grad(loss, flat, create_graph=create_graph)
            clip = model.adapter.inner_grad_clip
            if clip is not None:
                scale = (clip / member_norms(grads)).clamp(max=1.0)
                grads = [g * scale.view(-1, *([1] * (g.dim() - 1))) for g in grads]
            g = iter(grads)
            params = {net: {n: p - lrs[net][n] * next(g) for n, p in named.items()} for net, named in params.items()}
        per_env.append(params)
    stacked = {
        net: {n: torch.stack([env[net][n] for env in per_env], dim=1) for n in named} for net, named in shared.items()
    }
    return Adaptation(z=None, params=stacked)


def first_step_norms(model, context, mask) -> torch.Tensor:
    """``[E, B]`` L2 norm of each environment's unclipped first inner gradient, per member."""
    shared = model.adaptable_params()
    flat = [p for named in shared.values() for p in named.values()]
    norms = []
    for b in range(context.obs.shape[0]):
        one = type(context)(*(f[b : b + 1] for f in context))
        loss = model.inner_loss(shared, one, mask[b : b + 1])
        grads = torch.autograd.grad(loss, flat, allow_unused=True, retain_graph=True)
        norms.append(member_norms([g for g in grads if g is not None]))
    return torch.stack(norms, dim=1)


def predict(model, adaptation, target):
    e = model.ensemble_size
    x = torch.cat([target.obs, target.action], dim=-1).unsqueeze(0).expand(e, -1, -1, -1)
    delta = target.delta.unsqueeze(0).expand(e, -1, -1, -1)
    mean, logvar, reward = model.predict_normalised(x, adaptation, delta_for_reward=delta)
    return mean, logvar, reward


@pytest.mark.parametrize(
    "options",
    [
        dict(inner_steps=1),
        dict(inner_steps=2, learn_inner_lr=True),
        dict(inner_steps=2, adapt_last_layers=1),
        dict(inner_steps=1, first_order=True, learn_inner_lr=True),
        dict(inner_steps=2, inner_grad_clip=1.7),
        dict(inner_steps=1, inner_grad_clip=1.7, adapt_last_layers=2, first_order=True),
    ],
    ids=["one-step", "two-steps-learned-lr", "last-layer", "first-order", "clipped", "clipped-first-order"],
)
def test_factored_update_matches_per_environment_maml(options):
    torch.manual_seed(0)
    model = small_model("gradient", inner_lr=0.05, learn_reward=True, **options).double()
    batch = make_batch(GAINS, 5, 6, 3, torch.Generator().manual_seed(11))
    batch = type(batch)(*(f.double() if torch.is_tensor(f) and f.is_floating_point() else f for f in batch))
    mask = torch.ones(5, 6, dtype=torch.bool)
    mask[1, :4] = False  # a partly padded context
    mask[3] = False  # an environment with no valid slot keeps the shared weights
    context = model.normalise_segment(batch.context)
    context = type(context)(*(torch.where(mask.view(5, 6, *([1] * (f.dim() - 2))), f, 0) for f in context))
    target = model.normalise_segment(batch.target)

    if model.adapter.inner_grad_clip is not None:
        # the bound must bind for some (member, environment) pairs and not for others, or the test shows little
        clip, model.adapter.inner_grad_clip = model.adapter.inner_grad_clip, None
        norms = first_step_norms(model, context, mask)
        model.adapter.inner_grad_clip = clip
        assert (norms > clip).any() and (norms[:, [0, 1, 2, 4]] < clip).any(), norms

    fast = model.adapt_normalised(context, mask, None)
    assert any(isinstance(w, LowRankUpdate) for w in fast.params["dynamics"].values())
    slow = reference_adaptation(model, context, mask, create_graph=not model.adapter.first_order)
    for net, named in slow.params.items():
        for name, weights in named.items():
            torch.testing.assert_close(fast.materialise().params[net][name], weights, rtol=1e-9, atol=1e-11)

    # Predictions through the factored weights equal those through the full copies, and so do the outer gradients.
    outs = {}
    for label, adaptation in (("fast", fast), ("slow", slow)):
        model.zero_grad()
        mean, logvar, reward = predict(model, adaptation, target)
        (mean.square().sum() + logvar.sum() + reward.square().sum()).backward()
        outs[label] = (mean.detach(), reward.detach(), [p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(outs["fast"][0], outs["slow"][0], rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(outs["fast"][1], outs["slow"][1], rtol=1e-9, atol=1e-11)
    for g_fast, g_slow in zip(outs["fast"][2], outs["slow"][2], strict=True):
        torch.testing.assert_close(g_fast, g_slow, rtol=1e-8, atol=1e-10)
    # the environment without context kept the shared weights
    w = model.dynamics_net.layers[-1].weight
    torch.testing.assert_close(
        fast.materialise().params["dynamics"][f"layers.{len(model.dynamics_net.layers) - 1}.weight"][:, 3], w
    )


def test_low_rank_apply_equals_the_materialised_weights():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 7, 5, generator=g, dtype=torch.float64)
    update = LowRankUpdate(
        base,
        torch.randn(3, 4, 6, 7, generator=g, dtype=torch.float64),
        torch.randn(3, 4, 6, 5, generator=g, dtype=torch.float64),
    )
    x = torch.randn(3, 4, 9, 7, generator=g, dtype=torch.float64)
    bias = torch.randn(3, 4, 1, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(update.apply(x, bias), x @ update.materialise() + bias)


def test_chunked_forward_with_low_rank_weights_equals_one_pass():
    from mbmeta.models.ensemble import EnsembleMLP

    g = torch.Generator().manual_seed(1)
    mlp = EnsembleMLP(6, 4, (16, 16), ensemble_size=3, generator=g, chunk_rows=None).double()
    params = {
        f"layers.{i}.weight": LowRankUpdate(
            layer.weight,
            torch.randn(3, 2, 5, layer.in_features, generator=g, dtype=torch.float64),
            torch.randn(3, 2, 5, layer.out_features, generator=g, dtype=torch.float64) * 0.01,
        )
        for i, layer in enumerate(mlp.layers)
    }
    x = torch.randn(3, 2, 300, 6, generator=g, dtype=torch.float64)
    one_pass = mlp.grouped_forward(x, params)
    mlp.chunk_rows = 128  # 64 rows per group per chunk
    torch.testing.assert_close(mlp.grouped_forward(x, params), one_pass, rtol=1e-12, atol=1e-12)
    full = {name: update.materialise() for name, update in params.items()}
    torch.testing.assert_close(mlp.grouped_forward(x, full), one_pass, rtol=1e-10, atol=1e-10)


def test_clipping_bounds_the_step_on_a_context_far_outside_the_data():
    """One clipped step moves each (member, environment)'s weights by at most inner_lr x clip in L2 norm."""
    torch.manual_seed(0)
    model = small_model("gradient", inner_lr=0.05, learn_reward=True, inner_steps=1).double()
    batch = make_batch(GAINS, 4, 6, 3, torch.Generator().manual_seed(5))
    batch = type(batch)(*(f.double() if torch.is_tensor(f) and f.is_floating_point() else f for f in batch))
    context = model.normalise_segment(batch.context)
    context = type(context)(*(f * 30 for f in context))  # states and changes 30x anything in the (toy) data
    mask = torch.ones(4, 6, dtype=torch.bool)
    shared = model.adaptable_params()

    def step_norms() -> torch.Tensor:
        """``[E, B]`` L2 norm of adapted minus shared weights over every adapted tensor."""
        adapted = model.adapt_normalised(context, mask, None).materialise().params
        squared = 0.0
        for net, named in shared.items():
            for name, w in named.items():
                diff = adapted[net][name] - w.unsqueeze(1)  # [E, B, ...]
                squared = squared + diff.flatten(2).square().sum(2)
        return squared.sqrt()

    unclipped = step_norms()
    model.adapter.inner_grad_clip = 1.0
    clipped = step_norms()
    assert (unclipped > 10 * 0.05).all()  # the raw step is long on this context ...
    assert (clipped <= 0.05 * 1.0 * (1 + 1e-9)).all()  # ... and the clipped one is at most lr x clip
    torch.testing.assert_close(clipped, torch.full_like(clipped, 0.05))  # here every pair is clipped

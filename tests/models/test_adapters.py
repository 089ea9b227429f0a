import pytest
import torch
from synthetic_family import ACTION_DIM, OBS_DIM, TASK_DIM, make_batch

from mbmeta.models import MetaDynamicsModel, transition_statistics
from mbmeta.models.adapters import ADAPTATION_NAMES, Adaptation, build_adapter
from mbmeta.types import Transition

GAINS = torch.tensor([0.5, 1.0, 1.5])


def small_model(adaptation: str, **kwargs) -> MetaDynamicsModel:
    defaults = dict(ensemble_size=3, hidden_sizes=(32, 32), reward_hidden=(16,), latent_dim=4, context_hidden=(16,))
    model = MetaDynamicsModel(
        OBS_DIM, ACTION_DIM, TASK_DIM, adaptation=adaptation, gru_hidden=16, **{**defaults, **kwargs}
    )
    g = torch.Generator().manual_seed(123)
    batch = make_batch(GAINS, 64, 8, 4, g)
    model.normaliser.fit(transition_statistics(batch.context, batch.task))
    return model


def left_pad(context: Transition, pad: int, fill: float) -> Transition:
    """Prepend `pad` garbage slots (value `fill`) to every field."""
    fields = []
    for f in context:
        shape = (f.shape[0], pad, *f.shape[2:])
        garbage = torch.zeros(shape, dtype=torch.bool) if f.dtype == torch.bool else torch.full(shape, fill)
        fields.append(torch.cat([garbage, f], dim=1))
    return Transition(*fields)


@pytest.mark.parametrize("adaptation", ["context", "recurrent", "gradient"])
@pytest.mark.parametrize("fill", [1e6, float("nan")])
def test_padding_does_not_change_adaptation(adaptation, fill):
    model = small_model(adaptation)
    batch = make_batch(GAINS, 5, 6, 2, torch.Generator().manual_seed(0))
    padded = left_pad(batch.context, 4, fill)
    mask = torch.ones(5, 10, dtype=torch.bool)
    mask[:, :4] = False
    a = model.adapt(batch.context, task=batch.task).adaptation
    b = model.adapt(padded, mask=mask, task=batch.task).adaptation
    if adaptation == "gradient":
        for net in a.params:
            for name in a.params[net]:
                torch.testing.assert_close(a.params[net][name], b.params[net][name], atol=1e-6, rtol=1e-5)
    else:
        assert torch.isfinite(b.z).all()
        torch.testing.assert_close(a.z, b.z, atol=1e-6, rtol=1e-5)


def test_empty_context_falls_back_to_defaults():
    batch = make_batch(GAINS, 4, 6, 2, torch.Generator().manual_seed(1))
    none_valid = torch.zeros(4, 6, dtype=torch.bool)
    context = small_model("context")
    assert torch.equal(context.adapt(batch.context, mask=none_valid).adaptation.z, torch.zeros(4, 4))
    recurrent = small_model("recurrent")
    z = recurrent.adapt(batch.context, mask=none_valid).adaptation.z
    torch.testing.assert_close(z, recurrent.adapter.out.bias.expand(4, -1))  # the learned default context
    gradient = small_model("gradient", inner_lr=0.1)
    params = gradient.adapt(batch.context, mask=none_valid).adaptation.params
    for name, p in gradient.dynamics_net.params().items():
        torch.testing.assert_close(params["dynamics"][name], p.unsqueeze(1).expand_as(params["dynamics"][name]))


@pytest.mark.parametrize("adaptation", ADAPTATION_NAMES)
def test_zero_length_context_is_allowed(adaptation):
    model = small_model(adaptation)
    batch = make_batch(GAINS, 3, 0, 2, torch.Generator().manual_seed(2))
    adapted = model.adapt(batch.context, task=batch.task)
    pred = adapted(batch.target.obs.expand(3, -1, -1, -1), batch.target.action.expand(3, -1, -1, -1))
    assert torch.isfinite(pred.mean).all()


def test_partially_valid_mask_changes_z_per_row():
    model = small_model("context")
    batch = make_batch(GAINS, 2, 6, 2, torch.Generator().manual_seed(3))
    mask = torch.tensor([[True] * 6, [False] * 3 + [True] * 3])
    z_full = model.adapt(batch.context).adaptation.z
    z_masked = model.adapt(batch.context, mask=mask).adaptation.z
    torch.testing.assert_close(z_full[0], z_masked[0])
    assert not torch.allclose(z_full[1], z_masked[1])


def context_mse(model, adapted, context):
    e = model.ensemble_size
    pred = adapted(context.obs.expand(e, -1, -1, -1), context.action.expand(e, -1, -1, -1))
    return ((pred.mean - context.next_obs) / model.normaliser.delta_std).square().mean((0, 2, 3))  # [B]


def test_gradient_inner_step_reduces_context_loss():
    model = small_model("gradient", inner_lr=0.02, learn_reward=False)
    batch = make_batch(GAINS, 6, 16, 2, torch.Generator().manual_seed(4))
    with torch.no_grad():
        before = context_mse(
            model, model.adapt(batch.context, mask=torch.zeros(6, 16, dtype=torch.bool)), batch.context
        )
        after = context_mse(model, model.adapt(batch.context), batch.context)
    assert (after < before).all(), (before, after)
    # more steps reduce it further
    model.adapter.inner_steps = 3
    with torch.no_grad():
        after3 = context_mse(model, model.adapt(batch.context), batch.context)
    assert (after3 < after).all()


def test_gradient_second_order_differs_from_first_order_and_both_train():
    batch = make_batch(GAINS, 8, 8, 4, torch.Generator().manual_seed(5))
    grads = {}
    for first_order in (False, True):
        model = small_model("gradient", first_order=first_order, inner_lr=0.1, learn_inner_lr=True)
        total, _ = model.loss(batch)
        total.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        # the learned step sizes receive gradient in both variants (they scale the step taken)
        assert model.adapter.log_lrs["dynamics__layers_0_weight"].grad.abs() > 0
        grads[first_order] = model.dynamics_net.layers[0].weight.grad.clone()
    assert not torch.allclose(grads[False], grads[True])


def test_gradient_adapt_works_under_no_grad_and_inference_mode():
    model = small_model("gradient", inner_lr=0.1)
    batch = make_batch(GAINS, 3, 8, 2, torch.Generator().manual_seed(6))
    ref = model.adapt(batch.context).adaptation.params["dynamics"]["layers.0.weight"].detach()
    with torch.no_grad():
        p = model.adapt(batch.context).adaptation.params["dynamics"]["layers.0.weight"]
    assert p.grad_fn is None
    torch.testing.assert_close(p, ref)
    with torch.inference_mode():
        p = model.adapt(batch.context).adaptation.params["dynamics"]["layers.0.weight"]
    torch.testing.assert_close(p, ref)


def test_context_adaptation_is_one_encoder_pass_without_gradients():
    model = small_model("context")
    calls = []
    model.adapter.encoder.register_forward_hook(lambda *args: calls.append(1))
    batch = make_batch(GAINS, 4, 8, 3, torch.Generator().manual_seed(7))
    with torch.no_grad():
        adapted = model.adapt(batch.context)
        for _ in range(3):
            adapted(batch.target.obs.expand(3, -1, -1, -1), batch.target.action.expand(3, -1, -1, -1))
    assert len(calls) == 1
    assert adapted.adaptation.params is None and adapted.adaptation.z.grad_fn is None


def test_oracle_uses_normalised_task_and_requires_it():
    model = small_model("oracle")
    model.normaliser.task_mean.fill_(1.0)
    model.normaliser.task_std.fill_(0.5)
    batch = make_batch(GAINS, 3, 4, 2, torch.Generator().manual_seed(8))
    z = model.adapt(batch.context, task=batch.task).adaptation.z
    torch.testing.assert_close(z, (batch.task - 1.0) / 0.5)
    with pytest.raises(ValueError, match="needs the true task"):
        model.adapt(batch.context)
    with pytest.raises(ValueError, match=r"task must be \[B=3, T=1\]"):
        model.adapt(batch.context, task=torch.zeros(3, 2))


def test_build_adapter_rejects_unknown_name_and_bad_sizes():
    with pytest.raises(ValueError, match="adaptation must be one of"):
        build_adapter("maml", 2, 1)
    with pytest.raises(ValueError, match="task_dim >= 1"):
        build_adapter("oracle", 2, 1, task_dim=0)
    with pytest.raises(ValueError, match="inner_lr > 0"):
        build_adapter("gradient", 2, 1, inner_lr=0.0)
    with pytest.raises(ValueError, match="inner_grad_clip > 0 or None, got -1"):
        build_adapter("gradient", 2, 1, inner_grad_clip=-1.0)


def test_no_adapter_returns_empty_adaptation():
    model = small_model("none")
    batch = make_batch(GAINS, 2, 4, 2, torch.Generator().manual_seed(9))
    assert model.adapt(batch.context).adaptation == Adaptation(None, None)


def test_gradient_adapt_last_layers_only_copies_those_layers():
    model = small_model("gradient", inner_lr=0.02, adapt_last_layers=1, learn_reward=True)
    batch = make_batch(GAINS, 6, 16, 2, torch.Generator().manual_seed(10))
    params = model.adapt(batch.context).adaptation.params
    assert set(params["dynamics"]) == {"layers.2.weight", "layers.2.bias"}
    assert set(params["reward"]) == {"layers.1.weight", "layers.1.bias"}
    assert params["dynamics"]["layers.2.weight"].shape == (3, 6, 32, 2 * OBS_DIM)
    unadapted = torch.zeros(6, 16, dtype=torch.bool)
    with torch.no_grad():
        before = context_mse(model, model.adapt(batch.context, mask=unadapted), batch.context)
        after = context_mse(model, model.adapt(batch.context), batch.context)
    assert (after < before).all()
    total, _ = model.loss(batch)
    total.backward()
    assert model.dynamics_net.layers[0].weight.grad.abs().sum() > 0  # shared layers still meta-train

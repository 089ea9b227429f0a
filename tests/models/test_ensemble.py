import pytest
import torch
import torch.nn.functional as F

from mbmeta.models.ensemble import EnsembleLinear, EnsembleMLP
from mbmeta.models.ensemble_weights import grouped_linear


def member_loop(mlp: EnsembleMLP, x: torch.Tensor, e: int) -> torch.Tensor:
    """Reference: member e's MLP as a plain Python loop over layers, one member at a time."""
    h = x
    for i, layer in enumerate(mlp.layers):
        h = h @ layer.weight[e] + layer.bias[e, 0]
        if i < len(mlp.layers) - 1:
            h = F.silu(h)
    return h


def test_ensemble_linear_shapes_and_members_independent():
    g = torch.Generator().manual_seed(0)
    layer = EnsembleLinear(3, 4, ensemble_size=5, generator=g)
    assert layer.weight.shape == (5, 3, 4) and layer.bias.shape == (5, 1, 4)
    x = torch.randn(5, 7, 3, generator=g)
    y = layer(x)
    assert y.shape == (5, 7, 4)
    for e in range(5):
        torch.testing.assert_close(y[e], x[e] @ layer.weight[e] + layer.bias[e], atol=1e-6, rtol=0)


def test_ensemble_mlp_equals_loop_over_members():
    g = torch.Generator().manual_seed(1)
    mlp = EnsembleMLP(6, 3, hidden_sizes=(200, 200, 200, 200), ensemble_size=5, generator=g)
    with torch.no_grad():  # non-zero biases so they are checked too
        for layer in mlp.layers:
            layer.bias.normal_(generator=g)
    x = torch.randn(5, 33, 6, generator=g)
    y = mlp(x)
    assert y.shape == (5, 33, 3)
    for e in range(5):
        torch.testing.assert_close(y[e], member_loop(mlp, x[e], e), atol=1e-6, rtol=1e-6)


def test_init_is_seeded_by_generator():
    a = EnsembleMLP(4, 2, (8,), 3, generator=torch.Generator().manual_seed(5))
    b = EnsembleMLP(4, 2, (8,), 3, generator=torch.Generator().manual_seed(5))
    c = EnsembleMLP(4, 2, (8,), 3, generator=torch.Generator().manual_seed(6))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)
    # members differ from each other
    assert not torch.equal(a.layers[0].weight[0], a.layers[0].weight[1])


def test_grouped_forward_shared_params_equals_plain_forward():
    g = torch.Generator().manual_seed(2)
    mlp = EnsembleMLP(5, 2, (16, 16), 3, generator=g)
    x = torch.randn(3, 4, 6, 5, generator=g)  # [E, B, R, in]
    torch.testing.assert_close(mlp.grouped_forward(x), mlp(x.reshape(3, 24, 5)).view(3, 4, 6, 2), atol=1e-6, rtol=0)


def test_grouped_forward_per_env_params_equals_loop_over_envs():
    g = torch.Generator().manual_seed(3)
    mlp = EnsembleMLP(5, 2, (16, 16), 3, generator=g)
    b = 4
    params = {
        k: v.unsqueeze(1) + 0.1 * torch.randn(v.shape[0], b, *v.shape[1:], generator=g) for k, v in mlp.params().items()
    }
    x = torch.randn(3, b, 6, 5, generator=g)
    y = mlp.grouped_forward(x, params)
    for j in range(b):
        env_params = {k: v[:, j] for k, v in params.items()}
        torch.testing.assert_close(y[:, j], mlp.grouped_forward(x[:, j : j + 1], env_params)[:, 0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("per_env", [False, True])
def test_cond_bias_equals_concatenated_input(per_env):
    g = torch.Generator().manual_seed(4)
    mlp = EnsembleMLP(5 + 3, 2, (16,), 2, generator=g)
    b = 4
    params = None
    if per_env:
        params = {k: v.unsqueeze(1).expand(v.shape[0], b, *v.shape[1:]).clone() for k, v in mlp.params().items()}
    x = torch.randn(2, b, 6, 5, generator=g)
    cond = torch.randn(b, 3, generator=g)
    full = torch.cat([x, cond[None, :, None, :].expand(2, b, 6, 3)], dim=-1)
    torch.testing.assert_close(
        mlp.grouped_forward(x, params, cond), mlp.grouped_forward(full, params), atol=1e-6, rtol=0
    )


def test_grouped_linear_shapes():
    x = torch.randn(2, 3, 5, 4)
    assert grouped_linear(x, torch.randn(2, 4, 7), torch.randn(2, 1, 7)).shape == (2, 3, 5, 7)
    assert grouped_linear(x, torch.randn(2, 3, 4, 7), torch.randn(2, 3, 1, 7)).shape == (2, 3, 5, 7)


def test_bad_inputs_raise_clear_errors():
    mlp = EnsembleMLP(4, 2, (8,), 3)
    with pytest.raises(ValueError, match=r"E=3"):
        mlp(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="in=4"):
        mlp(torch.randn(3, 5, 5))
    with pytest.raises(ValueError, match="activation must be one of"):
        EnsembleMLP(4, 2, activation="swishy")
    with pytest.raises(ValueError, match="grouped_forward"):
        mlp.grouped_forward(torch.randn(3, 5, 4))

"""The no-grad ensemble path (kernel chosen by rows per member) and frozen weights, pinned to the training path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mbmeta.models.ensemble import (
    ACTIVATIONS,
    INPLACE_ACTIVATIONS,
    EnsembleMLP,
    member_matmul_rows,
)
from mbmeta.models.ensemble_weights import FrozenWeights, LowRankUpdate
from mbmeta.models.layer_weights import LayerWeights, NetWeights

E, K, Z, OUT = 5, 24, 10, 36


@pytest.fixture(autouse=True)
def one_thread():
    # Bit-identity holds per thread count: with several threads MKL partitions a matmul by its size.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def mlp(in_features=K + Z, activation="silu", seed=0, **kwargs) -> EnsembleMLP:
    g = torch.Generator().manual_seed(seed)
    net = EnsembleMLP(in_features, OUT, (200, 200, 200), ensemble_size=E, activation=activation, generator=g, **kwargs)
    with torch.no_grad():  # non-zero biases, so a misplaced bias or cond term would show
        for layer in net.layers:
            layer.bias.normal_(generator=g)
    return net


def training_path(net: EnsembleMLP, fn):
    """The autograd path (what fitting runs), detached for comparison."""
    with torch.enable_grad():
        return fn().detach()


@pytest.mark.parametrize("member_rows", [0, 1, None])
@pytest.mark.parametrize(
    "groups, rows", [(1, 40), (1, 130), (1, 200), (1, 2000), (1, 5001), (10, 200), (3, 1025), (7, 513), (256, 10)]
)
def test_no_grad_path_equals_the_training_path(member_rows, groups, rows):
    # 0: always one batched matmul; 1: always one matmul per member; None: the default rule (one thread here).
    net = mlp(member_matmul_rows=member_rows)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(E, groups, rows, K, generator=g)
    cond = torch.randn(groups, Z, generator=g)
    reference = training_path(net, lambda: net.grouped_forward(x, None, cond))
    with torch.no_grad():
        fast = net.grouped_forward(x, None, cond)
    per_member = groups * rows >= (member_matmul_rows(1) if member_rows is None else member_rows) > 0
    if per_member:  # each member activated on its own: the activation's scalar tail falls on other elements
        torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)
    else:  # the batched kernel: the same operations as the training path
        assert torch.equal(fast, reference)


@pytest.mark.parametrize("member_rows", [0, 1])
def test_plain_forward_no_grad_path_is_bit_identical(member_rows):
    net = mlp(in_features=K, member_matmul_rows=member_rows)
    x = torch.randn(E, 700, K, generator=torch.Generator().manual_seed(2))
    reference = training_path(net, lambda: net(x))
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference, rtol=1e-5, atol=1e-6)
        if member_rows == 0:
            assert torch.equal(net(x), reference)


def test_rows_expanded_over_the_members_need_no_copy_and_give_the_same_result():
    net = mlp(in_features=K, member_matmul_rows=1)
    x = torch.randn(1, 2, 300, K, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(net.grouped_forward(x.expand(E, -1, -1, -1)), net.grouped_forward(x.repeat(E, 1, 1, 1)))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_in_place_activations_compute_the_same_bits(name):
    x = torch.randn(1000, 33, generator=torch.Generator().manual_seed(4))
    assert torch.equal(INPLACE_ACTIVATIONS[name](x.clone()), ACTIVATIONS[name](x))


@pytest.mark.parametrize("activation", ["silu", "gelu", "tanh"])
def test_every_activation_takes_the_no_grad_path(activation):
    net = mlp(in_features=K, activation=activation, member_matmul_rows=1)
    x = torch.randn(E, 2, 150, K, generator=torch.Generator().manual_seed(5))
    reference = training_path(net, lambda: net.grouped_forward(x))
    with torch.no_grad():
        torch.testing.assert_close(net.grouped_forward(x), reference, rtol=1e-5, atol=1e-6)


def folded_reference(net, x, params, cond, affine):
    """``f(x * a + b) * c + d`` computed the long way, through the training path."""
    a, b, c, d = affine
    return training_path(net, lambda: net.grouped_forward(x * a + b, params, cond) * c + d)


def affine_maps(g):
    return (
        torch.rand(K, generator=g) + 0.5,
        torch.randn(K, generator=g),
        torch.rand(OUT, generator=g) + 0.5,
        torch.randn(OUT, generator=g),
    )


@pytest.mark.parametrize("weights", ["shared", "per_group", "low_rank"])
@pytest.mark.parametrize("member_cond", [False, True])
def test_frozen_weights_fold_cond_params_and_affine_maps(weights, member_cond):
    net = mlp()
    g = torch.Generator().manual_seed(6)
    groups = 3
    x = torch.randn(E, groups, 300, K, generator=g)
    cond = torch.randn(*((E,) if member_cond else ()), groups, Z, generator=g)
    params = None
    if weights == "per_group":
        params = NetWeights(
            {
                1: LayerWeights(
                    net.layers[1].weight.detach().unsqueeze(1) + 0.01 * torch.randn(E, groups, 200, 200, generator=g),
                    net.layers[1].bias.detach().unsqueeze(1) + 0.1 * torch.randn(E, groups, 1, 200, generator=g),
                )
            }
        )
    elif weights == "low_rank":
        base = net.layers[2].weight.detach()
        update = LowRankUpdate(base, torch.randn(E, groups, 4, 200, generator=g), torch.randn(E, groups, 4, 200) * 1e-2)
        params = NetWeights({2: LayerWeights(update, None)})
    affine = affine_maps(g)
    reference = folded_reference(net, x, params, cond, affine)
    a, b, c, d = affine
    with torch.no_grad():
        frozen = net.freeze(params, cond, input_scale=a, input_shift=b, output_scale=c, output_shift=d)
        assert isinstance(frozen, FrozenWeights) and frozen.shared == (weights == "shared")
        out = net.grouped_forward(x, frozen)
    # The folds change the summation order: equal to float rounding, not bit for bit.
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)


def test_frozen_weights_keep_gradients_when_built_with_them():
    net = mlp()
    g = torch.Generator().manual_seed(7)
    x, cond = torch.randn(E, 2, 50, K, generator=g), torch.randn(2, Z, generator=g)
    frozen = net.freeze(None, cond, input_scale=torch.full((K,), 2.0))
    net.grouped_forward(x, frozen).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_frozen_weights_under_autocast_are_cast_once_and_kept():
    net = mlp()
    g = torch.Generator().manual_seed(8)
    x, cond = torch.randn(E, 1, 300, K, generator=g), torch.randn(1, Z, generator=g)
    with torch.no_grad():
        frozen = net.freeze(None, cond)
        full = net.grouped_forward(x, frozen)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reduced = net.grouped_forward(x, frozen)
            cast = frozen.to(torch.bfloat16)
            net.grouped_forward(x, frozen)
            assert frozen.to(torch.bfloat16) is cast, "one cast per dtype, kept"
            assert net.grouped_forward(x, None, cond).dtype == torch.bfloat16  # the unfrozen path honours autocast too
    assert reduced.dtype == torch.bfloat16 and frozen.to(torch.float32) is frozen
    torch.testing.assert_close(reduced.float(), full, rtol=0.05, atol=0.05)


def test_frozen_weights_refuse_cond_and_wrong_rows():
    net = mlp()
    frozen = net.freeze(None, torch.zeros(2, Z))
    with pytest.raises(ValueError, match="hold the conditioning already"):
        net.grouped_forward(torch.zeros(E, 2, 3, K), frozen, torch.zeros(2, Z))
    with pytest.raises(ValueError, match=r"expects x \[E=5, B, R, 24\]"):
        net.grouped_forward(torch.zeros(E, 2, 3, K + Z), frozen)


def test_the_default_kernel_rule_follows_the_thread_count():
    assert member_matmul_rows() == member_matmul_rows(1) == 512  # one thread in this test module
    assert member_matmul_rows(2) == member_matmul_rows(8) == 128


def test_bad_member_matmul_rows():
    with pytest.raises(ValueError, match="member_matmul_rows"):
        EnsembleMLP(4, 2, (8,), 3, member_matmul_rows=-1)


def test_plain_reference_member_loop_agrees():
    # The member matmul path against a plain per-member reference (x @ W + b, SiLU), as the benchmark's floor.
    net = mlp(in_features=K, member_matmul_rows=1)
    x = torch.randn(E, 500, K, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        out = net(x)
        for m in range(E):
            h = x[m]
            for i, layer in enumerate(net.layers):
                h = h @ layer.weight[m] + layer.bias[m, 0]
                h = F.silu(h) if i < len(net.layers) - 1 else h
            torch.testing.assert_close(out[m], h, rtol=1e-6, atol=1e-6)


def test_frozen_per_group_biases_are_expanded_once_and_the_groups_checked():
    net = mlp(member_matmul_rows=1)
    g = torch.Generator().manual_seed(10)
    x, cond = torch.randn(E, 4, 300, K, generator=g), torch.randn(4, Z, generator=g)
    with torch.no_grad():
        frozen = net.freeze(None, cond)
        first = net.grouped_forward(x, frozen)
        kept = dict(frozen.row_biases)
        second = net.grouped_forward(x, frozen)
        assert kept and all(frozen.row_biases[k] is v for k, v in kept.items()), "built at the first call, reused"
        torch.testing.assert_close(first, net.grouped_forward(x, None, cond), rtol=1e-6, atol=1e-6)
    assert torch.equal(first, second)
    with pytest.raises(ValueError, match="per group for B=4 groups"):
        net.grouped_forward(x[:, :3], frozen)

"""Chunked ensemble evaluation: any chunk size gives bit-identical results to one pass (with one torch thread)."""

from __future__ import annotations

import pytest
import torch

from mbmeta.models.ensemble import DEFAULT_CHUNK_ROWS, ROW_QUANTUM, EnsembleMLP, chunk_spans


@pytest.fixture(autouse=True)
def one_thread():
    # Bit-identity holds per thread count: with several threads MKL partitions a matmul by its size.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def mlp(in_features=24 + 10, seed=0, **kwargs) -> EnsembleMLP:
    g = torch.Generator().manual_seed(seed)
    net = EnsembleMLP(in_features, 36, (200, 200, 200), ensemble_size=5, generator=g, **kwargs)
    with torch.no_grad():  # non-zero biases, so a misplaced bias or cond term would show
        for layer in net.layers:
            layer.bias.normal_(generator=g)
    return net


def evaluate(net: EnsembleMLP, chunk: int | None, fn):
    net.chunk_rows = chunk
    with torch.no_grad():
        return fn()


@pytest.mark.parametrize("total, chunk", [(1000, 128), (1025, 512), (130, 64), (4096, 512), (700, 100), (128, 64)])
def test_chunk_spans_cover_rows_in_quantum_multiples(total, chunk):
    spans = chunk_spans(total, chunk)
    assert spans is not None
    assert spans[0].start == 0 and spans[-1].stop == total
    assert all(a.stop == b.start for a, b in zip(spans[:-1], spans[1:], strict=True))
    assert all((s.stop - s.start) % ROW_QUANTUM == 0 for s in spans[:-1])
    assert spans[-1].stop - spans[-1].start >= ROW_QUANTUM  # no tiny tail matmul
    assert all(s.stop - s.start <= max(chunk, ROW_QUANTUM) + ROW_QUANTUM for s in spans)


@pytest.mark.parametrize("total, chunk", [(10, 512), (512, 512), (1000, None), (1000, 0), (100, 64), (65, 64)])
def test_chunk_spans_none_when_one_pass(total, chunk):
    # (100, 64): a second chunk of 36 rows would be under one quantum, so the rows stay together.
    assert chunk_spans(total, chunk) is None


@pytest.mark.parametrize("rows", [3, 200, 1025, 2000])
@pytest.mark.parametrize("chunk", [64, 200, 512])
def test_plain_forward_chunked_equals_one_pass_exactly(rows, chunk):
    net = mlp()
    x = torch.randn(5, rows, 34, generator=torch.Generator().manual_seed(1))
    assert torch.equal(evaluate(net, chunk, lambda: net(x)), evaluate(net, None, lambda: net(x)))


@pytest.mark.parametrize("groups, rows", [(1, 2000), (10, 200), (3, 1025), (256, 10), (7, 513)])
@pytest.mark.parametrize("per_group", [False, True])
def test_grouped_forward_chunked_equals_one_pass_exactly(groups, rows, per_group):
    net = mlp()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, groups, rows, 24, generator=g)
    cond = torch.randn(groups, 10, generator=g)
    params = None
    if per_group:  # the gradient adapter's layout: per-environment copies [E, B, ...] of every weight
        params = {
            k: v.unsqueeze(1) + 0.01 * torch.randn(5, groups, *v.shape[1:], generator=g)
            for k, v in net.params().items()
        }
    reference = evaluate(net, None, lambda: net.grouped_forward(x, params, cond))
    for chunk in (64, 300, 512):
        assert torch.equal(evaluate(net, chunk, lambda: net.grouped_forward(x, params, cond)), reference), chunk


def test_chunked_training_gives_the_same_gradients():
    net = mlp(in_features=24)
    x = torch.randn(5, 1000, 24, generator=torch.Generator().manual_seed(3))
    grads = []
    for chunk in (None, 128):
        net.zero_grad()
        net.chunk_rows = chunk
        net(x).square().mean().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads, strict=True):  # summed per chunk, so equal up to summation order
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_default_and_bad_chunk_rows():
    assert mlp().chunk_rows == DEFAULT_CHUNK_ROWS
    with pytest.raises(ValueError, match="chunk_rows"):
        EnsembleMLP(4, 2, (8,), 3, chunk_rows=-1)

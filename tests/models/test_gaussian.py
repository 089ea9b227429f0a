import math

import torch

from mbmeta.models.gaussian import GaussianHead, gaussian_nll


def test_logvar_stays_within_bounds_for_extreme_inputs():
    head = GaussianHead(3, max_logvar=0.5, min_logvar=-10.0)
    raw = torch.tensor([[-1e4, -50.0, -10.0], [0.0, 0.5, 3.0], [50.0, 1e4, -9.9]])
    logvar = head(raw)
    assert torch.isfinite(logvar).all()
    # upper end overshoots by softplus(d) - d = log1p(exp(-d)) for d = max - min (~2.8e-5 here)
    slack = torch.nn.functional.softplus(head.max_logvar - head.min_logvar) - (head.max_logvar - head.min_logvar)
    assert (logvar <= head.max_logvar + slack + 1e-6).all() and (logvar >= head.min_logvar).all()
    assert slack.max() < 1e-4
    # in the middle of the range the bound is nearly the identity
    assert abs(head(torch.full((1, 3), -4.0))[0, 0].item() + 4.0) < 0.02


def test_bounds_are_learned_parameters_with_gradient():
    head = GaussianHead(2)
    logvar = head(torch.tensor([[5.0, -20.0]]))
    (logvar.sum() + 0.01 * head.bound_penalty()).backward()
    assert head.max_logvar.grad is not None and head.max_logvar.grad.abs().sum() > 0
    assert head.min_logvar.grad is not None and head.min_logvar.grad.abs().sum() > 0


def test_fixed_bounds_are_buffers():
    head = GaussianHead(2, learn_bounds=False)
    assert list(head.parameters()) == []
    assert "max_logvar" in head.state_dict()


def test_nll_matches_normal_log_prob():
    g = torch.Generator().manual_seed(0)
    mean, logvar, target = (torch.randn(4, 3, generator=g) for _ in range(3))
    expected = -torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(target) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(gaussian_nll(mean, logvar, target), expected, atol=1e-5, rtol=1e-5)

from __future__ import annotations

import pytest
import torch

from mbmeta.planners import coloured_noise


def lag_one_correlation(x: torch.Tensor) -> float:
    return float((x[:, 1:] * x[:, :-1]).mean() / x.var())


@pytest.mark.parametrize("horizon", [1, 2, 7, 30])
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
def test_unit_variance_and_zero_mean_at_every_step(horizon, beta):
    x = coloured_noise((20000,), horizon, 2, beta, torch.Generator().manual_seed(0), torch.zeros(()))
    assert x.shape == (20000, horizon, 2)
    assert torch.allclose(x.var(dim=0), torch.ones(horizon, 2), atol=0.05)
    assert x.mean().abs() < 0.02


def test_colour_sets_smoothness():
    g = torch.Generator().manual_seed(0)
    white = coloured_noise((5000,), 30, 1, 0.0, g, torch.zeros(()))[..., 0]
    brown = coloured_noise((5000,), 30, 1, 2.0, g, torch.zeros(()))[..., 0]
    assert abs(lag_one_correlation(white)) < 0.05
    assert lag_one_correlation(brown) > 0.8


def test_deterministic_and_on_the_dtype_of_like():
    a = coloured_noise((3, 4), 10, 2, 2.0, torch.Generator().manual_seed(1), torch.zeros((), dtype=torch.float64))
    b = coloured_noise((3, 4), 10, 2, 2.0, torch.Generator().manual_seed(1), torch.zeros((), dtype=torch.float64))
    assert a.dtype == torch.float64 and torch.equal(a, b)


def test_negative_beta_raises():
    with pytest.raises(ValueError, match="beta must be >= 0"):
        coloured_noise((1,), 5, 1, -0.5, torch.Generator(), torch.zeros(()))

"""A 2-D linear system with quadratic cost and its exact optimum: the planners' test problem."""

from __future__ import annotations

import pytest
import torch


class LinearQuadratic:
    """x' = A x + B u, cost = sum_t x_{t+1}' Q x_{t+1} + u_t' R u_t; the objective is -cost (batched, torch).

    ``starts`` [B, 2] gives one start state per environment. ``optimum()`` solves the unconstrained problem as a
    least-squares problem over the whole horizon (bounds are chosen loose enough not to bind).
    """

    A = torch.tensor([[1.0, 0.1], [-0.1, 0.95]], dtype=torch.float64)
    B = torch.tensor([[0.1, 0.0], [0.05, 0.1]], dtype=torch.float64)
    q = 1.0
    r = 0.5

    def __init__(self, starts: torch.Tensor, horizon: int) -> None:
        self.starts = starts.to(torch.float64)
        self.horizon = horizon
        self.calls: list[torch.Tensor] = []  # population returns of each call, to check improvement

    def cost(self, actions: torch.Tensor) -> torch.Tensor:
        """actions [B, N, H, 2] -> cost [B, N] (float64)."""
        u = actions.to(torch.float64)
        x = self.starts[:, None, :].expand(u.shape[0], u.shape[1], 2)
        total = torch.zeros(u.shape[:2], dtype=torch.float64)
        for t in range(u.shape[2]):
            x = x @ self.A.T + u[:, :, t] @ self.B.T
            total = total + self.q * (x**2).sum(-1) + self.r * (u[:, :, t] ** 2).sum(-1)
        return total

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        returns = (-self.cost(actions)).to(actions.dtype)
        self.calls.append(returns.detach().clone())
        return returns

    def optimum(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Optimal actions [B, H, 2] and their cost [B]."""
        h = self.horizon
        # x_{t+1} = A^{t+1} x0 + sum_{s<=t} A^{t-s} B u_s  ->  X = G x0 + F U
        powers = [torch.linalg.matrix_power(self.A, k) for k in range(h + 1)]
        G = torch.cat([powers[t + 1] for t in range(h)], dim=0)  # [2H, 2]
        F = torch.zeros(2 * h, 2 * h, dtype=torch.float64)
        for t in range(h):
            for s in range(t + 1):
                F[2 * t : 2 * t + 2, 2 * s : 2 * s + 2] = powers[t - s] @ self.B
        lhs = self.q * F.T @ F + self.r * torch.eye(2 * h, dtype=torch.float64)
        rhs = -self.q * F.T @ (G @ self.starts.T)  # [2H, B]
        u = torch.linalg.solve(lhs, rhs).T.reshape(-1, h, 2)
        return u, self.cost(u[:, None])[:, 0]


@pytest.fixture
def make_problem():
    def make(batch: int = 1, horizon: int = 8) -> LinearQuadratic:
        angles = torch.linspace(0.3, 5.0, batch, dtype=torch.float64)
        starts = 1.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
        return LinearQuadratic(starts, horizon)

    return make

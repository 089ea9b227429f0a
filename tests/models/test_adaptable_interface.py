"""Adapters see the model only through the declared `AdaptableModel` interface.

A stand-in that implements just that interface (no `MetaDynamicsModel`) is adapted correctly; the adapters package
imports no model class; and the learned step sizes keep their state-dict names, so older checkpoints still load.
"""

import ast
from pathlib import Path

import torch
from test_adapters import small_model

import mbmeta.models.adapters as adapters_package
from mbmeta.models.adapters import GradientAdapter, NormalisedSegment, OracleAdapter
from mbmeta.models.ensemble import EnsembleMLP


class LinearStandIn:
    """A one-layer linear "model" Δ = [s, a] @ W + b, E = 2 members: nothing but the adapter interface."""

    def __init__(self, obs_dim: int, action_dim: int) -> None:
        self.net = EnsembleMLP(obs_dim + action_dim, obs_dim, (), 2, generator=torch.Generator().manual_seed(0))

    def normalise_task(self, task):
        return 2.0 * task - 1.0

    def adaptable_params(self):
        return {"dynamics": self.net.params()}

    def inner_loss(self, params, context, mask, traces=None):
        x = torch.cat([context.obs, context.action], dim=-1).expand(2, -1, -1, -1)
        pred = self.net.grouped_forward(
            x, None if params is None else params["dynamics"], None, (traces or {}).get("dynamics")
        )
        per_slot = (pred - context.delta).square().mean(-1)  # [E, B, K]
        weights = mask.to(per_slot.dtype)
        return ((per_slot * weights).sum((0, 2)) / weights.sum(-1).clamp(min=1.0)).sum()


def segment(b: int, k: int, seed: int) -> NormalisedSegment:
    g = torch.Generator().manual_seed(seed)
    return NormalisedSegment(
        torch.randn(b, k, 3, generator=g), torch.randn(b, k, 1, generator=g), torch.randn(b, k, 3, generator=g),
        torch.randn(b, k, generator=g),
    )  # fmt: skip


def test_gradient_adapter_steps_any_model_with_the_interface():
    model, adapter = LinearStandIn(3, 1), GradientAdapter(inner_steps=1, inner_lr=0.1)
    context, mask = segment(4, 5, seed=0), torch.ones(4, 5, dtype=torch.bool)
    mask[2, :3] = False
    adapted = adapter(model, context, mask, None).materialise().params["dynamics"].layer(0)
    own = model.net.layers[0]
    for b in range(4):  # reference: plain SGD on environment b's own loss
        one = NormalisedSegment(*(f[b : b + 1] for f in context))
        grad_w, grad_b = torch.autograd.grad(model.inner_loss(None, one, mask[b : b + 1]), [own.weight, own.bias])
        torch.testing.assert_close(adapted.weight[:, b], own.weight - 0.1 * grad_w)
        torch.testing.assert_close(adapted.bias[:, b], own.bias - 0.1 * grad_b)


def test_oracle_adapter_asks_the_model_to_normalise_the_task():
    task = torch.tensor([[0.5], [2.0]])
    z = OracleAdapter(task_dim=1)(LinearStandIn(3, 1), segment(2, 0, seed=1), None, task).z
    torch.testing.assert_close(z, 2.0 * task - 1.0)


def test_the_adapters_package_imports_no_model_class():
    package = Path(adapters_package.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                assert not any(n.startswith(("mbmeta.models.dynamics", "mbmeta.models.checkpoint")) for n in names), (
                    f"{path.name} imports {node.module}"
                )
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("mbmeta.models.dynamics") for a in node.names), path.name


def test_learned_step_sizes_keep_their_checkpoint_names():
    model = small_model("gradient", learn_inner_lr=True, adapt_last_layers=2)  # dynamics 3 layers, reward 2
    names = [name for name in model.state_dict() if name.startswith("adapter.")]
    assert names == ["adapter.log_inner_lr"] + [
        f"adapter.log_lrs.{net}__layers_{i}_{kind}"
        for net, layers in (("dynamics", (1, 2)), ("reward", (0, 1)))
        for i in layers
        for kind in ("weight", "bias")
    ]

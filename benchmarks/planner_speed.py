"""Planner speed at HalfCheetah size: ms per planning step, model rows/s, and the ratio to the model's own floor.

The model is a real :class:`~mbmeta.models.dynamics.MetaDynamicsModel` (CaDM context adapter, ensemble of E=5,
4×200 SiLU; untrained weights, fitted normaliser: speed does not depend on training) adapted to B environments;
rewards come from the ``halfcheetah_mass`` family's exact torch reward (the family's observation has 18 entries:
Gymnasium's 17 plus the x velocity it rewards). Settings:

- ``pets``: CEM N=500, H=30, 5 iterations, 50 elites, P=20 particles TS-∞, B=1: 10k model rows per call,
  1.5M per planning step (PETS / CaDM scale).
- ``loop-B1`` / ``loop-B10``: CEM N=200, H=30, 5 iterations, 20 elites, expectation propagation (P=1, every
  member predicts every candidate), B=1 and B=10 environments in one call.

``floor`` is the time of the bare batched forward passes of the same rows in the same process (``H × iterations``
calls of the adapted model on tensors of the same shapes, nothing else): what a planning step cannot beat with this
model. ``ratio`` = planning step / floor, the cost of everything around the model (sampling, rewards, elites).
Planning steps and floors alternate (after one warm-up each); ``ms/step`` and ``floor ms`` are the fastest of
``--repeats`` runs (on a shared machine the least disturbed estimate), ``median ms`` the median planning step.

Usage: ``python benchmarks/planner_speed.py [--settings pets loop-B1 loop-B10] [--repeats 3] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

import mbmeta.envs
from mbmeta.control import RolloutObjective
from mbmeta.models.dynamics import MetaDynamicsModel
from mbmeta.models.normaliser import transition_statistics
from mbmeta.planners import CEMPlanner
from mbmeta.types import Transition


@dataclass(frozen=True)
class Setting:
    name: str
    population: int
    elites: int
    iterations: int
    horizon: int
    propagation: str
    particles: int
    batch: int


SETTINGS = {
    "pets": Setting("pets", 500, 50, 5, 30, "tsinf", 20, 1),
    "loop-B1": Setting("loop-B1", 200, 20, 5, 30, "expectation", 1, 1),
    "loop-B10": Setting("loop-B10", 200, 20, 5, 30, "expectation", 1, 10),
}
ENSEMBLE = 5
CONTEXT = 10


def build_model(obs_dim: int, action_dim: int) -> MetaDynamicsModel:
    model = MetaDynamicsModel(
        obs_dim,
        action_dim,
        adaptation="context",
        ensemble_size=ENSEMBLE,
        hidden_sizes=(200, 200, 200, 200),
        activation="silu",
        learn_reward=False,  # planning uses the family's exact reward
        seed=0,
    ).eval()
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(1000, obs_dim, generator=g)
    sample = Transition(
        obs,
        torch.rand(1000, action_dim, generator=g) * 2 - 1,
        obs + 0.1 * torch.randn(1000, obs_dim, generator=g),
        torch.randn(1000, generator=g),
        torch.zeros(1000, dtype=torch.bool),
    )
    model.normaliser.fit(transition_statistics(sample))
    return model


def context(batch: int, obs_dim: int, action_dim: int) -> Transition:
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(batch, CONTEXT, obs_dim, generator=g)
    return Transition(
        obs,
        torch.rand(batch, CONTEXT, action_dim, generator=g) * 2 - 1,
        obs + 0.1,
        torch.zeros(batch, CONTEXT),
        torch.zeros(batch, CONTEXT, dtype=torch.bool),
    )


def interleaved_times(first, second, repeats: int) -> tuple[list[float], list[float]]:
    """Alternate runs of two functions (after one warm-up each), so load drift hits both alike."""
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return times


def run(setting: Setting, model: MetaDynamicsModel, reward_fn, obs_dim: int, action_dim: int, repeats: int) -> dict:
    b, n, h, p = setting.batch, setting.population, setting.horizon, setting.particles
    with torch.no_grad():
        adapted = model.adapt(context(b, obs_dim, action_dim))
    start_obs = torch.randn(b, obs_dim, generator=torch.Generator().manual_seed(2))
    planner = CEMPlanner(
        -torch.ones(action_dim),
        torch.ones(action_dim),
        population=n,
        elites=setting.elites,
        iterations=setting.iterations,
    )
    init = torch.zeros(b, h, action_dim)
    generator = torch.Generator().manual_seed(3)

    def plan() -> None:
        objective = RolloutObjective(
            adapted,
            start_obs,
            reward_fn,
            propagation=setting.propagation,
            particles=p,
            generator=generator,
        )
        planner.plan(objective, init, generator=generator)

    # The same tensor shapes the objective feeds the model, called H × iterations times and nothing else.
    if setting.propagation == "tsinf":
        shape = (ENSEMBLE, b, n, p // ENSEMBLE)
        rows_per_call = b * n * p
    else:
        shape = (ENSEMBLE, b, n)
        rows_per_call = ENSEMBLE * b * n
    x = torch.randn(*shape, obs_dim)
    a = torch.rand(*shape, action_dim) * 2 - 1
    calls = h * setting.iterations

    def floor() -> None:
        with torch.no_grad():
            for _ in range(calls):
                adapted(x, a)

    plan_times, floor_times = interleaved_times(plan, floor, repeats)
    # On a shared machine the fastest run is the least disturbed estimate; the median is printed beside it.
    plan_s, floor_s = min(plan_times), min(floor_times)
    rows = rows_per_call * calls
    return {
        "setting": setting.name,
        "B": b,
        "model rows/step": rows,
        "ms/step": 1e3 * plan_s,
        "median ms": 1e3 * statistics.median(plan_times),
        "ms/step/env": 1e3 * plan_s / b,
        "rows/s": rows / plan_s,
        "floor ms": 1e3 * floor_s,
        "ratio": plan_s / floor_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    family = mbmeta.envs.get_family("halfcheetah_mass")
    env = family.make_env()
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    model = build_model(obs_dim, action_dim)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; O={obs_dim}, A={action_dim}, E={ENSEMBLE}")
    header = ["setting", "B", "model rows/step", "ms/step", "median ms", "ms/step/env", "rows/s", "floor ms", "ratio"]
    print(" | ".join(f"{h:>15}" for h in header), flush=True)
    for name in args.settings:
        result = run(SETTINGS[name], model, family.reward, obs_dim, action_dim, args.repeats)
        cells = []
        for key in header:
            value = result[key]
            cells.append(f"{value:>15.4g}" if isinstance(value, float) else f"{value:>15}")
        print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    main()

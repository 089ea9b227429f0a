"""Planner speed at HalfCheetah size, and the pendulum closed-loop checks of the speed options.

Three sections (``--sections speed bf16 icem``; all by default):

``speed``: ms per planning step, model rows/s and the ratio to the floor, at HalfCheetah dimensions (the
``halfcheetah_mass`` family's observation of 18 entries — Gymnasium's 17 plus the x velocity it rewards — and 6
actions). The model is a real :class:`~mbmeta.models.dynamics.MetaDynamicsModel` (CaDM context adapter, ensemble of
E=5, 4×200 SiLU, Gaussian outputs, learned reward head; untrained weights and a fitted normaliser: speed does not depend
on training) adapted to B environments; plans score with the family's exact reward, so the objective skips the reward
head. Settings:

- ``pets``: CEM N=500, H=30, 5 iterations, 50 elites, P=20 particles TS-∞, B=1: 1.5M model rows per step;
- ``loop-B1`` / ``loop-B10``: CEM N=200, H=30, 5 iterations, 20 elites, expectation (P=1, every member predicts
  every candidate), B=1 and B=10 environments in one call (150k model rows per step and environment).

Timed per setting, interleaved (one warm-up each, then ``--repeats`` rounds of every variant in turn):

- ``plan``: one planning step (``CEMPlanner.plan`` over a ``RolloutObjective``), fp32;
- ``floor``: the bare stacked-weight ensemble MLP — one ``baddbmm`` + SiLU per layer on plain tensors of the shapes
  the objective feeds the model (``[E, rows per member, O+A]``), ``H × iterations`` times and nothing else;
- ``floor-chunked``: the same bare MLP evaluated in 512-row chunks, as :class:`~mbmeta.models.ensemble.EnsembleMLP`
  does (the fastest fp32 the bare MLP achieves here; see ``model_speed.py``);
- ``model``: our adapted model's own calls (normalise, context bias, ensemble, Gaussian head, denormalise) on those
  shapes, without (as the objective calls it) and with the reward head;
- ``plan-bf16`` / ``floor-bf16``: the planning step with ``precision="bf16"`` and the bare MLP under bf16 autocast.

Times are CPU seconds of this process (``time.process_time``; the minimum over repeats): on a shared machine
wall-clock time also counts the time other processes hold the core, CPU time does not. The median wall-clock time of
the planning step is printed beside. ``ratio`` = plan / floor: the cost of everything around the model.

``bf16``: closed-loop return on the real MuJoCo pendulum with a small learned model (E=5, 3×200, fitted here in
~20 s to the exact pendulum dynamics), planning in fp32 vs bf16, several start states (seeds) batched in one agent.

``icem``: closed-loop return of CEM vs iCEM on the real pendulum with the exact dynamics as the model, and the model
rows each spends per step (``PlanResult.rows``).

Usage: ``python benchmarks/planner_speed.py [--sections speed bf16 icem] [--settings pets loop-B1 loop-B10]
[--repeats 3] [--threads 1] [--seeds 6]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

import mbmeta.envs
from mbmeta.control import MPCAgent, RolloutObjective
from mbmeta.envs.pendulum import FAMILY as PENDULUM
from mbmeta.envs.pendulum import pendulum_dynamics
from mbmeta.models.dynamics import MetaDynamicsModel
from mbmeta.models.normaliser import transition_statistics
from mbmeta.planners import CEMPlanner, ICEMPlanner
from mbmeta.types import MetaBatch, Prediction, Transition


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
HIDDEN = (200, 200, 200, 200)
CONTEXT = 10
CHUNK = 512


# ----------------------------------------------------------------------------------------------------- timing
def interleaved(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, tuple[float, float]]:
    """``{name: (min CPU s, median wall s)}``; variants alternate so load drift hits all alike."""
    for fn in fns.values():
        fn()
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    wall: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c, w = time.process_time(), time.perf_counter()
            fn()
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    return {k: (min(cpu[k]), statistics.median(wall[k])) for k in fns}


# ------------------------------------------------------------------------------------------------------ speed
def build_model(obs_dim: int, action_dim: int) -> MetaDynamicsModel:
    model = MetaDynamicsModel(
        obs_dim, action_dim, adaptation="context", ensemble_size=ENSEMBLE, hidden_sizes=HIDDEN, seed=0
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


def bare_mlp(in_features: int, out_features: int) -> Callable[[torch.Tensor, int | None], torch.Tensor]:
    """The floor: stacked [E, in, out] weights, one baddbmm + SiLU per layer, plain tensors, no module."""
    g = torch.Generator().manual_seed(4)
    sizes = [in_features, *HIDDEN, out_features]
    layers = [
        (torch.randn(ENSEMBLE, i, o, generator=g) / i**0.5, 0.1 * torch.randn(ENSEMBLE, 1, o, generator=g))
        for i, o in zip(sizes[:-1], sizes[1:], strict=True)
    ]

    def layers_on(x: torch.Tensor) -> torch.Tensor:
        for i, (w, b) in enumerate(layers):
            x = torch.baddbmm(b, x, w)
            if i < len(layers) - 1:
                x = F.silu(x)
        return x

    def forward(x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        if not chunk or x.shape[1] <= chunk:
            return layers_on(x)
        return torch.cat([layers_on(x[:, s : s + chunk]) for s in range(0, x.shape[1], chunk)], dim=1)

    return forward


def speed_setting(setting: Setting, model: MetaDynamicsModel, reward_fn, obs_dim: int, action_dim: int, repeats: int):
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

    def plan(precision: str) -> Callable[[], None]:
        def run() -> None:
            generator = torch.Generator().manual_seed(3)
            objective = RolloutObjective(
                adapted,
                start_obs,
                reward_fn,
                propagation=setting.propagation,
                particles=p,
                generator=generator,
                precision=precision,
            )
            planner.plan(objective, init, generator=generator)

        return run

    # The tensor shapes the objective feeds the model, called H × iterations times.
    shape = (ENSEMBLE, b, n, p // ENSEMBLE) if setting.propagation == "tsinf" else (ENSEMBLE, b, n)
    per_member = int(np.prod(shape[1:]))
    calls = h * setting.iterations
    g = torch.Generator().manual_seed(5)
    x_obs = torch.randn(*shape, obs_dim, generator=g)
    x_act = torch.rand(*shape, action_dim, generator=g) * 2 - 1
    floor_net = bare_mlp(obs_dim + action_dim, 2 * obs_dim)
    x_flat = torch.randn(ENSEMBLE, per_member, obs_dim + action_dim, generator=g)

    def repeat(fn: Callable[[], object], autocast: bool = False) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                for _ in range(calls):
                    fn()

        return run

    fns = {
        "plan": plan("fp32"),
        "floor": repeat(lambda: floor_net(x_flat)),
        "floor-chunked": repeat(lambda: floor_net(x_flat, CHUNK)),
        "model": repeat(lambda: adapted(x_obs, x_act, with_reward=False)),
        "model+reward": repeat(lambda: adapted(x_obs, x_act)),
        "plan-bf16": plan("bf16"),
        "floor-bf16": repeat(lambda: floor_net(x_flat), autocast=True),
    }
    times = interleaved(fns, repeats)
    rows = ENSEMBLE * per_member * calls
    return {"setting": setting.name, "B": b, "rows": rows, **{k: v for k, v in times.items()}}


def speed_section(args: argparse.Namespace) -> None:
    family = mbmeta.envs.get_family("halfcheetah_mass")
    env = family.make_env()
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    model = build_model(obs_dim, action_dim)
    print(f"\n== speed: O={obs_dim}, A={action_dim}, E={ENSEMBLE}, 4x200 SiLU; CPU ms (min of {args.repeats})")
    header = (
        f"{'setting':>9} {'B':>3} {'rows/step':>10} {'plan ms':>9} {'wall ms':>9} {'rows/s':>9} {'floor ms':>9} "
        f"{'ratio':>6} {'ratio/chunked':>13} {'model/floor':>11} {'+reward head':>12}"
    )
    print(header, flush=True)
    results = {}
    for name in args.settings:
        r = speed_setting(SETTINGS[name], model, family.reward, obs_dim, action_dim, args.repeats)
        results[name] = r
        plan, floor = r["plan"][0], r["floor"][0]
        print(
            f"{name:>9} {r['B']:>3} {r['rows']:>10} {1e3 * plan:>9.1f} {1e3 * r['plan'][1]:>9.1f} "
            f"{r['rows'] / plan:>9.3g} {1e3 * floor:>9.1f} {plan / floor:>6.3f} {plan / r['floor-chunked'][0]:>13.3f} "
            f"{r['model'][0] / floor:>11.3f} {r['model+reward'][0] / floor:>12.3f}",
            flush=True,
        )
    print("\n   bf16 autocast (plan-bf16 vs the fp32 floor and the bf16 floor):")
    print(
        f"{'setting':>9} {'plan-bf16 ms':>13} {'floor-bf16 ms':>14} {'fp32 floor / plan-bf16':>23} {'ratio bf16':>11}"
    )
    for name, r in results.items():
        p16, f16 = r["plan-bf16"][0], r["floor-bf16"][0]
        print(f"{name:>9} {1e3 * p16:>13.1f} {1e3 * f16:>14.1f} {r['floor'][0] / p16:>21.2f} {p16 / f16:>11.3f}")
    if "loop-B1" in results and "loop-B10" in results:
        one, ten = results["loop-B1"], results["loop-B10"]
        for key in ("plan", "plan-bf16"):
            per_env = ten[key][0] / 10
            print(
                f"\n   {key}: 10 environments in one call {1e3 * per_env:.1f} ms per environment vs "
                f"{1e3 * one[key][0]:.1f} ms for one environment per call: {one[key][0] / per_env:.2f}x cheaper",
            )


# ------------------------------------------------------------------------------------------------- pendulum
class ExactPendulum:
    """The pendulum's exact step as an adapted model: one member, zero variance."""

    ensemble_size = 1

    def __call__(self, obs: torch.Tensor, action: torch.Tensor) -> Prediction:
        mean = pendulum_dynamics(obs, action, 1.0, 1.0)
        return Prediction(mean, torch.zeros_like(mean), None)


class ExactPendulumModel:
    def adapt(self, context, mask=None, task=None) -> ExactPendulum:
        return ExactPendulum()


class RowCounter:
    """Wraps a planner and adds up ``PlanResult.rows`` over every call (per environment)."""

    def __init__(self, planner) -> None:
        self.planner, self.rows, self.calls = planner, 0, 0
        self.low, self.high, self.uses_carry = planner.low, planner.high, planner.uses_carry

    def plan_with_carry(self, objective, init, *, generator=None, carry=None):
        result, carry = self.planner.plan_with_carry(objective, init, generator=generator, carry=carry)
        self.rows += result.rows
        self.calls += 1
        return result, carry


def closed_loop(agent: MPCAgent, seeds: list[int], agent_seed: int = 0) -> np.ndarray:
    """One 200-step episode of the real pendulum per seed, all planned in one batched agent; returns ``[seeds]``."""
    envs = [gym.make(PENDULUM.env_id) for _ in seeds]
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)])
    agent.reset(batch_size=len(seeds), seed=agent_seed)
    total = np.zeros(len(seeds))
    for _ in range(PENDULUM.episode_steps):
        action = agent.act(obs)
        steps = [env.step(a) for env, a in zip(envs, action, strict=True)]
        next_obs = np.stack([s[0] for s in steps])
        reward = np.array([s[1] for s in steps], dtype=np.float32)
        total += reward
        agent.observe(obs, action, next_obs, reward)
        obs = next_obs
    for env in envs:
        env.close()
    return total


def fit_pendulum_model(steps: int) -> MetaDynamicsModel:
    """A small PETS-style model (no adaptation, E=5, 3×200) fitted to exact pendulum transitions."""
    g = torch.Generator().manual_seed(0)
    n = 20_000
    theta = (torch.rand(n, generator=g) * 2 - 1) * torch.pi
    theta_dot = (torch.rand(n, generator=g) * 2 - 1) * 8
    obs = torch.stack([theta.cos(), theta.sin(), theta_dot], dim=-1)
    action = (torch.rand(n, 1, generator=g) * 2 - 1) * 2
    next_obs = pendulum_dynamics(obs, action, 1.0, 1.0)
    data = Transition(obs, action, next_obs, torch.zeros(n), torch.zeros(n, dtype=torch.bool))
    model = MetaDynamicsModel(
        3, 1, adaptation="none", ensemble_size=ENSEMBLE, hidden_sizes=(200, 200, 200), learn_reward=False, seed=0
    )
    model.normaliser.fit(transition_statistics(data))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch, m = 32, 16
    for _ in range(steps):
        index = torch.randint(0, n, (batch, 1 + m), generator=g)
        part = lambda idx: Transition(*(f[idx] for f in data))  # noqa: E731
        loss, _ = model.loss(MetaBatch(part(index[:, :1]), part(index[:, 1:]), torch.zeros(batch, 0)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    return model


def bf16_section(args: argparse.Namespace) -> None:
    seeds = list(range(args.seeds))
    start = time.perf_counter()
    model = fit_pendulum_model(args.fit_steps)
    print(
        f"\n== bf16 on the pendulum: E=5 3x200 model fitted in {time.perf_counter() - start:.0f} s; CEM N=60, "
        f"8 elites, 3 iterations, H=15, expectation; {len(seeds)} start states batched, 2 planner seeds"
    )
    print(f"{'precision':>9} {'planner seed':>12} {'mean return':>12} {'plan CPU s/step':>16}  per-start returns")
    returns = {}
    for agent_seed in (0, 1):
        for precision in ("fp32", "bf16"):
            agent = MPCAgent(
                model,
                CEMPlanner([-2.0], [2.0], population=60, elites=8, iterations=3),
                PENDULUM.reward,
                horizon=15,
                context_size=1,
                propagation="expectation",
                precision=precision,
                seed=agent_seed,
            )
            c = time.process_time()
            r = returns[precision, agent_seed] = closed_loop(agent, seeds, agent_seed)
            per_step = (time.process_time() - c) / PENDULUM.episode_steps
            print(f"{precision:>9} {agent_seed:>12} {r.mean():>12.1f} {per_step:>16.3f}  {np.round(r, 1).tolist()}")

    def paired(a: np.ndarray, b: np.ndarray) -> str:
        d = a - b
        return f"{d.mean():+.1f} ± {d.std(ddof=1) / len(d) ** 0.5:.1f}"

    bf16 = np.concatenate([returns["bf16", k] for k in (0, 1)])
    fp32 = np.concatenate([returns["fp32", k] for k in (0, 1)])
    print(f"   bf16 - fp32 (same start and planner seed), mean ± s.e.: {paired(bf16, fp32)}")
    print(f"   noise reference, fp32 planner seed 1 - seed 0:        {paired(returns['fp32', 1], returns['fp32', 0])}")


def icem_section(args: argparse.Namespace) -> None:
    seeds = list(range(args.seeds))
    print(f"\n== iCEM vs CEM on the pendulum, exact dynamics as the model, H=30, {len(seeds)} seeds batched")
    print(
        f"{'planner':>34} {'mean return':>12} {'std err':>8} {'minus CEM (paired)':>19} {'rows/step':>10} "
        f"{'rows vs CEM':>12}"
    )
    planners = {
        "CEM N=200 e=20 it=5": CEMPlanner([-2.0], [2.0], population=200, elites=20, iterations=5),
        "iCEM N=100 e=10 it=3 (decay 1.25)": ICEMPlanner(
            [-2.0], [2.0], population=100, elites=10, iterations=3, decay=1.25
        ),
        "iCEM N=60 e=10 it=3 (decay 1.25)": ICEMPlanner(
            [-2.0], [2.0], population=60, elites=10, iterations=3, decay=1.25
        ),
    }
    cem_rows, cem_returns = None, None
    for name, planner in planners.items():
        counter = RowCounter(planner)
        agent = MPCAgent(ExactPendulumModel(), counter, PENDULUM.reward, horizon=30, context_size=1)
        returns = closed_loop(agent, seeds)
        rows = counter.rows / counter.calls
        if cem_rows is None:
            cem_rows, cem_returns = rows, returns
        diff = returns - cem_returns  # same start states: the paired difference removes their spread
        paired = f"{diff.mean():+.1f} ± {diff.std(ddof=1) / len(diff) ** 0.5:.1f}" if name.startswith("i") else "-"
        se = returns.std(ddof=1) / len(returns) ** 0.5
        print(f"{name:>34} {returns.mean():>12.1f} {se:>8.1f} {paired:>19} {rows:>10.0f} {rows / cem_rows:>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["speed", "bf16", "icem"], choices=["speed", "bf16", "icem"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seeds", type=int, default=8, help="pendulum start states (batched environments)")
    parser.add_argument("--fit-steps", type=int, default=1500, help="Adam steps fitting the bf16 section's model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "speed" in args.sections:
        speed_section(args)
    if "bf16" in args.sections:
        bf16_section(args)
    if "icem" in args.sections:
        icem_section(args)


if __name__ == "__main__":
    main()

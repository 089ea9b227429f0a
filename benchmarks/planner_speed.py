"""Planner speed against a plain reference floor (PETS scale and the latency regime), ten environments in one call,
and the closed-loop pendulum checks of the speed options.

Sections (``--sections``; all by default):

``speed``: one agent step at HalfCheetah dimensions (O = 18: the ``halfcheetah_mass`` family's observation, A = 6)
with a real :class:`~mbmeta.models.dynamics.MetaDynamicsModel` (CaDM context adapter, E = 5 ensemble of 4×200 SiLU,
Gaussian outputs, learned reward head; untrained weights and a fitted normaliser: speed does not depend on
training), planning with the family's exact reward (so the reward head is skipped). Settings (``--settings``):

- ``pets``: CEM N=500, 50 elites, 5 iterations, H=30, P=20 TS-∞, B=1: 1.5 M model rows per step, 2000 rows per
  member and call;
- ``latency``: CEM N=200, 20 elites, 5 iterations, H=30, P=1 TS-1, B=1: 30 000 model rows per step, 40 per member
  and call (the regime real control loops run in).

Variants, timed round by round in turn (one untimed warm-up each):

- ``agent``: one :class:`~mbmeta.control.MPCAgent` step (``act_tensor``: adapt on a K=10 window, build the
  objective, plan, shift the warm start), fp32; ``agent-bf16``: the same with ``precision="bf16"``;
- ``plan``: the planner alone (``CEMPlanner.plan`` over a ``RolloutObjective`` on a fixed adapted model);
- ``model``: the adapted model's own calls on the shapes the objective feeds it, H×I times (no reward head);
- ``floor``: the plain reference anyone can reproduce without mbmeta — the same weights as E separate tensors per
  layer, for each call and member ``torch.addmm(b, x, W)`` (``x @ W + b``) and an in-place SiLU, on the rows per
  member of one objective call, the same H×I sequential calls and nothing else; ``floor-bf16``: the same in bf16
  (weights and rows cast once);
- ``one-batch``: the same reference evaluating the rows of all H×I calls in one call per member (``latency``).

``tenenv``: the ``latency`` planner for B=10 environments in one agent call (``B10``) vs one B=1 agent called ten
times (``B1x10``), for each propagation mode that takes P=1 (``ts1``, ``expectation``); the ratio is the cost per
environment of ten calls over one call.

Ratios are taken within each round (every variant of a round sees the same load) and reported as the median and
[min-max] over rounds. ``--schedule blocked`` instead runs each variant's rounds back to back (as a control loop
calls its agent); its ratios pair the variants' k-th rounds. The clock is wall time with several torch threads (CPU
time would add up the threads) and CPU time of this process with one (it leaves out the time other processes hold
the core).

``--compare DIR`` runs the ``speed`` and ``tenenv`` sections on the code of another checkout (e.g.
``git worktree add --detach /tmp/before <commit>``) and on this one, alternating one subprocess per version per round
(so that both see the same load), and prints both versions' ratios; with ``closed-loop`` it also runs the pendulum
episodes once per version and pairs their returns.

``closed-loop``: closed-loop return on the real MuJoCo pendulum with a small learned model (E=5, 3×200, fitted here
to the exact pendulum dynamics), 8 start states batched in one agent, 2 planner seeds, for each propagation mode
(``expectation`` and ``ts1``, P=1) and precision (fp32, bf16).

``--profile``: one agent step per ``--settings`` under ``torch.profiler`` (after a warm-up step), the ops by self CPU
time: what is the model's arithmetic (``baddbmm``/``addmm``, ``silu_``) and what is not.

``icem``: closed-loop return of CEM vs iCEM on the real pendulum with the exact dynamics as the model, and the model
rows each spends per step (``PlanResult.rows``).

Usage: ``python benchmarks/planner_speed.py [--sections speed tenenv closed-loop icem] [--settings pets latency]
[--rounds 5] [--threads 2] [--compare /tmp/before] [--profile]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def calls(self) -> int:
        return self.horizon * self.iterations

    def rows_per_member(self, batch: int) -> int:
        """Rows each member computes per objective call."""
        if self.propagation == "expectation":
            return batch * self.population
        return -(-batch * self.population * self.particles // ENSEMBLE)


SETTINGS = {
    "pets": Setting("pets", 500, 50, 5, 30, "tsinf", 20),
    "latency": Setting("latency", 200, 20, 5, 30, "ts1", 1),
}
TENENV_MODES = ("ts1", "expectation")
ENSEMBLE = 5
HIDDEN = (200, 200, 200, 200)
CONTEXT = 10
ONE_BATCH_MAX_ROWS = 60_000  # per member: above this the one-batch reference is not run (memory)


# ----------------------------------------------------------------------------------------------------- timing
SCHEDULES = ("interleaved", "blocked")


def timed(
    fns: dict[str, Callable[[], object]], rounds: int, schedule: str = "interleaved"
) -> dict[str, dict[str, list[float]]]:
    """``{name: {"wall": [s per round], "cpu": [...]}}``.

    ``interleaved``: one untimed warm-up each, then the variants alternate round by round, so that load drift hits
    all alike. ``blocked``: each variant's warm-up and rounds back to back, as a control loop calls its agent (with
    several threads, what ran just before changes the timing: see docs/performance.md, session 14).
    """
    times = {k: {"wall": [], "cpu": []} for k in fns}

    def run(name: str) -> None:
        c, w = time.process_time(), time.perf_counter()
        fns[name]()
        times[name]["cpu"].append(time.process_time() - c)
        times[name]["wall"].append(time.perf_counter() - w)

    if schedule == "blocked":
        for name, fn in fns.items():
            fn()
            for _ in range(rounds):
                run(name)
        return times
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name in fns:
            run(name)
    return times


# ----------------------------------------------------------------------------------------------------- models
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


def context(batch: int, obs_dim: int, action_dim: int, seed: int = 1) -> Transition:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, CONTEXT, obs_dim, generator=g)
    return Transition(
        obs,
        torch.rand(batch, CONTEXT, action_dim, generator=g) * 2 - 1,
        obs + 0.1,
        torch.zeros(batch, CONTEXT),
        torch.zeros(batch, CONTEXT, dtype=torch.bool),
    )


class Reference:
    """The plain reference ensemble: the model's dynamics weights as E separate tensors per layer, evaluated member
    by member as ``torch.addmm(b, x, W)`` (``x @ W + b``) with an in-place SiLU — nothing of mbmeta's code.

    The first layer keeps the rows of the O + A inputs (the adapter's z enters the model as a per-environment bias:
    no per-row work).
    """

    def __init__(self, model: MetaDynamicsModel, dtype: torch.dtype = torch.float32) -> None:
        inputs = model.obs_dim + model.action_dim
        layers = model.dynamics_net.layers
        self.members = [
            [
                (
                    (layer.weight[e, :inputs] if i == 0 else layer.weight[e]).detach().to(dtype).contiguous(),
                    layer.bias[e, 0].detach().to(dtype).clone(),
                )
                for i, layer in enumerate(layers)
            ]
            for e in range(ENSEMBLE)
        ]
        self.in_features, self.dtype = inputs, dtype

    def rows(self, count: int, seed: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return [torch.randn(count, self.in_features, generator=g).to(self.dtype) for _ in range(ENSEMBLE)]

    def __call__(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = []
        for x, layers in zip(xs, self.members, strict=True):
            h = x
            for i, (w, b) in enumerate(layers):
                h = torch.addmm(b, h, w)
                if i < len(layers) - 1:
                    F.silu(h, inplace=True)
            outs.append(h)
        return outs


def make_agent(
    model: MetaDynamicsModel, family, setting: Setting, batch: int, propagation: str, precision: str = "fp32"
) -> MPCAgent:
    """An agent with a full context window of random transitions for ``batch`` environments."""
    space = family.action_space
    planner = CEMPlanner(
        space.low, space.high, population=setting.population, elites=setting.elites, iterations=setting.iterations
    )
    agent = MPCAgent(
        model,
        planner,
        family.reward,
        horizon=setting.horizon,
        context_length=CONTEXT,
        propagation=propagation,
        particles=setting.particles,
        precision=precision,
        seed=0,
    )
    agent.reset(batch_size=batch)
    window = context(batch, model.obs_dim, model.action_dim)
    for k in range(CONTEXT):
        step = Transition(*(f[:, k] for f in window))
        agent.observe_tensor(step, torch.ones(batch, dtype=torch.bool))
    return agent


# ------------------------------------------------------------------------------------------------------ speed
def speed_setting(
    setting: Setting, model: MetaDynamicsModel, family, rounds: int, variants: list[str], schedule: str
) -> dict:
    obs_dim, action_dim = model.obs_dim, model.action_dim
    per_member, calls = setting.rows_per_member(1), setting.calls
    start_obs = torch.randn(1, obs_dim, generator=torch.Generator().manual_seed(2))
    fns: dict[str, Callable[[], object]] = {}
    with torch.no_grad():
        adapted = model.adapt(context(1, obs_dim, action_dim))
    if "agent" in variants:
        agent = make_agent(model, family, setting, 1, setting.propagation)
        fns["agent"] = lambda: agent.act_tensor(start_obs)
    if "agent-bf16" in variants:
        agent16 = make_agent(model, family, setting, 1, setting.propagation, "bf16")
        fns["agent-bf16"] = lambda: agent16.act_tensor(start_obs)
    if "plan" in variants:
        space = family.action_space
        planner = CEMPlanner(
            space.low, space.high, population=setting.population, elites=setting.elites, iterations=setting.iterations
        )
        init = torch.zeros(1, setting.horizon, action_dim)

        def plan() -> None:
            generator = torch.Generator().manual_seed(3)
            objective = RolloutObjective(
                adapted,
                start_obs,
                family.reward,
                propagation=setting.propagation,
                particles=setting.particles,
                generator=generator,
            )
            planner.plan(objective, init, generator=generator)

        fns["plan"] = plan
    if "model" in variants:
        g = torch.Generator().manual_seed(5)
        x_obs = torch.randn(ENSEMBLE, 1, per_member, obs_dim, generator=g)
        x_act = torch.rand(ENSEMBLE, 1, per_member, action_dim, generator=g) * 2 - 1

        def model_calls() -> None:
            with torch.no_grad():
                for _ in range(calls):
                    adapted(x_obs, x_act, with_reward=False)

        fns["model"] = model_calls
    for name, dtype in (("floor", torch.float32), ("floor-bf16", torch.bfloat16)):
        if name in variants:
            reference = Reference(model, dtype)
            xs = reference.rows(per_member, seed=6)
            fns[name] = lambda reference=reference, xs=xs: [reference(xs) for _ in range(calls)]
    if "one-batch" in variants and per_member * calls <= ONE_BATCH_MAX_ROWS:
        reference = Reference(model)
        big = reference.rows(per_member * calls, seed=7)
        fns["one-batch"] = lambda: reference(big)
    with torch.no_grad():
        return timed(fns, rounds, schedule)


def tenenv_section(model: MetaDynamicsModel, family, rounds: int, schedule: str) -> dict:
    setting = SETTINGS["latency"]
    obs = torch.randn(10, model.obs_dim, generator=torch.Generator().manual_seed(8))
    fns: dict[str, Callable[[], object]] = {}
    for mode in TENENV_MODES:
        ten = make_agent(model, family, setting, 10, mode)
        one = make_agent(model, family, setting, 1, mode)
        fns[f"{mode}-B10"] = lambda ten=ten: ten.act_tensor(obs)
        fns[f"{mode}-B1x10"] = lambda one=one: [one.act_tensor(obs[i : i + 1]) for i in range(10)]
    with torch.no_grad():
        return timed(fns, rounds, schedule)


RATIOS = {  # name: (numerator, denominator)
    "agent / floor": ("agent", "floor"),
    "agent / one-batch": ("agent", "one-batch"),
    "plan / floor": ("plan", "floor"),
    "model / floor": ("model", "floor"),
    "floor / one-batch": ("floor", "one-batch"),
    "agent-bf16 / floor": ("agent-bf16", "floor"),
    "agent-bf16 / floor-bf16": ("agent-bf16", "floor-bf16"),
}


def ratios(results: dict, clock: str) -> dict[str, dict[str, list[float]]]:
    """Per setting, every ratio of :data:`RATIOS` (and the ten-environment ratios) round by round."""
    out: dict[str, dict[str, list[float]]] = {}
    for setting, times in results.items():
        if setting == "tenenv":
            out[setting] = {
                f"{mode}: 10 calls / one call": [
                    a / b for a, b in zip(times[f"{mode}-B1x10"][clock], times[f"{mode}-B10"][clock], strict=True)
                ]
                for mode in TENENV_MODES
                if f"{mode}-B10" in times
            }
            continue
        out[setting] = {
            name: [a / b for a, b in zip(times[num][clock], times[den][clock], strict=True)]
            for name, (num, den) in RATIOS.items()
            if num in times and den in times
        }
    return out


def cell(values: list[float], fmt: str = ".3f") -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def report(results: dict, clock: str, rounds: int) -> None:
    for setting, times in results.items():
        print(f"\n== {setting}: ms per call ({clock}), median [min-max] over {rounds} rounds")
        for name, values in times.items():
            print(f"   {name:>20} {cell([1e3 * v for v in values[clock]], '.1f')}")
    print(f"\n== ratios ({clock} time, within each round), median [min-max] over {rounds} rounds")
    for setting, by_name in ratios(results, clock).items():
        for name, values in by_name.items():
            print(f"   {setting:>8} {name:>26} {cell(values)}")


def measure_speed(args: argparse.Namespace) -> dict:
    family = mbmeta.envs.get_family("halfcheetah_mass")
    obs_dim, action_dim = family.observation_space.shape[0], family.action_space.shape[0]
    model = build_model(obs_dim, action_dim)
    results = {}
    if "speed" in args.sections:
        for name in args.settings:
            results[name] = speed_setting(SETTINGS[name], model, family, args.rounds, args.variants, args.schedule)
    if "tenenv" in args.sections:
        results["tenenv"] = tenenv_section(model, family, args.rounds, args.schedule)
    return results


def profile_agent(args: argparse.Namespace, top: int = 15) -> None:
    """Print the ``top`` ops by self CPU time of one :class:`MPCAgent` step per setting (``torch.profiler``)."""
    from torch.profiler import ProfilerActivity, profile

    family = mbmeta.envs.get_family("halfcheetah_mass")
    model = build_model(family.observation_space.shape[0], family.action_space.shape[0])
    obs = torch.randn(1, model.obs_dim, generator=torch.Generator().manual_seed(2))
    for name in args.settings:
        setting = SETTINGS[name]
        agent = make_agent(model, family, setting, 1, setting.propagation)
        agent.act_tensor(obs)  # warm-up: allocator, caches
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            agent.act_tensor(obs)
        print(f"\n== {name}: one MPCAgent step under torch.profiler, top {top} ops by self CPU time")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))


def run_version(root: Path, args: argparse.Namespace, sections: list[str], rounds: int) -> dict:
    """This script's ``--json`` output, run on the code under ``root`` in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": str(args.threads)}
    command = [sys.executable, __file__, "--json", "--threads", str(args.threads), "--rounds", str(rounds)]
    command += ["--sections", *sections, "--settings", *args.settings, "--variants", *args.variants]
    command += ["--seeds", str(args.seeds), "--fit-steps", str(args.fit_steps), "--schedule", args.schedule]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{root} failed:\n{proc.stderr[-3000:]}")
    payload = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(payload["mbmeta"]).resolve().is_relative_to(root.resolve()), payload["mbmeta"]
    return payload


def compare(other: Path, args: argparse.Namespace) -> None:
    here = Path(__file__).resolve().parents[1]
    versions = {"before": other.resolve(), "after": here}
    timed = [s for s in args.sections if s in ("speed", "tenenv")]
    merged: dict[str, dict] = {v: {} for v in versions}
    clock = "wall" if args.threads > 1 else "cpu"
    for r in range(args.rounds if timed else 0):
        order = list(versions.items()) if r % 2 == 0 else list(reversed(versions.items()))
        for version, root in order:
            payload = run_version(root, args, timed, 1)
            for setting, times in payload["results"].items():
                for name, clocks in times.items():
                    slot = merged[version].setdefault(setting, {}).setdefault(name, {"wall": [], "cpu": []})
                    for key in ("wall", "cpu"):
                        slot[key] += clocks[key]
            print(f"round {r + 1}/{args.rounds}: {version} done", file=sys.stderr, flush=True)
    if timed:
        for version, root in versions.items():
            print(f"\n######## {version}: {root}")
            report(merged[version], clock, args.rounds)
        print(f"\n######## ratios before -> after ({clock}), median [min-max] over {args.rounds} rounds")
        before, after = ratios(merged["before"], clock), ratios(merged["after"], clock)
        for setting, by_name in after.items():
            for name, values in by_name.items():
                old = before.get(setting, {}).get(name)
                print(f"   {setting:>8} {name:>26} {cell(old) if old else '-':>24} -> {cell(values)}")
        print("\nJSON " + json.dumps(merged))
    if "closed-loop" in args.sections:
        returns = {v: run_version(root, args, ["closed-loop"], 1)["closed_loop"] for v, root in versions.items()}
        print("\n######## closed loop, after - before (same model, start states and planner seeds), mean ± s.e.")
        for key, after_returns in returns["after"].items():
            if key in returns["before"]:
                d = np.array(after_returns) - np.array(returns["before"][key])
                se = d.std(ddof=1) / len(d) ** 0.5
                print(
                    f"   {key:>28}: {np.mean(returns['before'][key]):8.1f} -> {np.mean(after_returns):8.1f}"
                    f"   paired difference {d.mean():+.2f} ± {se:.2f}"
                )
        print("\nJSON " + json.dumps(returns))


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


def closed_loop_section(args: argparse.Namespace) -> dict[str, list[float]]:
    """``{"mode precision seed s": [return per start state]}``; prints the table."""
    seeds = list(range(args.seeds))
    start = time.perf_counter()
    model = fit_pendulum_model(args.fit_steps)
    print(
        f"\n== closed loop on the pendulum: E=5 3x200 model fitted in {time.perf_counter() - start:.0f} s; CEM N=60, "
        f"8 elites, 3 iterations, H=15, P=1; {len(seeds)} start states batched, 2 planner seeds"
    )
    print(
        f"{'propagation':>11} {'precision':>9} {'planner seed':>12} {'mean return':>12} {'plan CPU s/step':>16}  "
        "per-start returns"
    )
    returns: dict[str, list[float]] = {}
    for propagation in ("expectation", "ts1"):
        for agent_seed in (0, 1):
            for precision in ("fp32", "bf16"):
                agent = MPCAgent(
                    model,
                    CEMPlanner([-2.0], [2.0], population=60, elites=8, iterations=3),
                    PENDULUM.reward,
                    horizon=15,
                    context_length=1,
                    propagation=propagation,
                    precision=precision,
                    seed=agent_seed,
                )
                c = time.process_time()
                r = closed_loop(agent, seeds, agent_seed)
                returns[f"{propagation} {precision} seed {agent_seed}"] = r.tolist()
                per_step = (time.process_time() - c) / PENDULUM.episode_steps
                print(
                    f"{propagation:>11} {precision:>9} {agent_seed:>12} {r.mean():>12.1f} {per_step:>16.3f}  "
                    f"{np.round(r, 1).tolist()}",
                    flush=True,
                )

    def paired(a: list[float], b: list[float]) -> str:
        d = np.array(a) - np.array(b)
        return f"{d.mean():+.1f} ± {d.std(ddof=1) / len(d) ** 0.5:.1f}"

    for propagation in ("expectation", "ts1"):
        both = {p: sum((returns[f"{propagation} {p} seed {k}"] for k in (0, 1)), []) for p in ("fp32", "bf16")}
        difference = paired(both["bf16"], both["fp32"])
        print(f"   {propagation}: bf16 - fp32 (same start and planner seed), mean ± s.e.: {difference}")
        noise = paired(returns[f"{propagation} fp32 seed 1"], returns[f"{propagation} fp32 seed 0"])
        print(f"   {propagation}: noise reference, fp32 planner seed 1 - seed 0:        {noise}")
    return returns


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
        agent = MPCAgent(ExactPendulumModel(), counter, PENDULUM.reward, horizon=30, context_length=1)
        returns = closed_loop(agent, seeds)
        rows = counter.rows / counter.calls
        if cem_rows is None:
            cem_rows, cem_returns = rows, returns
        diff = returns - cem_returns  # same start states: the paired difference removes their spread
        paired = f"{diff.mean():+.1f} ± {diff.std(ddof=1) / len(diff) ** 0.5:.1f}" if name.startswith("i") else "-"
        se = returns.std(ddof=1) / len(returns) ** 0.5
        print(f"{name:>34} {returns.mean():>12.1f} {se:>8.1f} {paired:>19} {rows:>10.0f} {rows / cem_rows:>12.2f}")


def main() -> None:
    sections = ["speed", "tenenv", "closed-loop", "icem"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=sections, choices=sections)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    variants = ["agent", "plan", "model", "floor", "one-batch", "agent-bf16", "floor-bf16"]
    parser.add_argument("--variants", nargs="+", default=variants, choices=variants)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (interleaved over the variants)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument(
        "--schedule", choices=SCHEDULES, default="interleaved", help="variants alternating by round, or back to back"
    )
    parser.add_argument("--seeds", type=int, default=8, help="pendulum start states (batched environments)")
    parser.add_argument("--fit-steps", type=int, default=1500, help="Adam steps fitting the closed-loop model")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout to measure against this one")
    parser.add_argument("--json", action="store_true", help="print the raw figures as one JSON line")
    parser.add_argument("--profile", action="store_true", help="profile one agent step per --settings and exit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.profile:
        profile_agent(args)
        return
    if args.compare is not None:
        compare(args.compare, args)
        return
    if not args.json:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    payload: dict = {"mbmeta": mbmeta.__file__, "threads": torch.get_num_threads()}
    if "speed" in args.sections or "tenenv" in args.sections:
        payload["results"] = measure_speed(args)
        if not args.json:
            report(payload["results"], "wall" if args.threads > 1 else "cpu", args.rounds)
    if "closed-loop" in args.sections:
        payload["closed_loop"] = closed_loop_section(args)
    if "icem" in args.sections:
        icem_section(args)
    if args.json:
        print(json.dumps(payload))


if __name__ == "__main__":
    main()

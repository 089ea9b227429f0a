"""Cost of one control-loop step as ``mbmeta train`` / ``mbmeta evaluate`` run it.

The loop is :func:`~mbmeta.control.collection.collect_episodes` driving an :class:`~mbmeta.control.MPCAgent` in real
family environments (a ``SyncVectorEnv`` of B sub-environments), exactly as the training loop's MPC iterations and
the evaluation do. The model is a fixed, untrained :class:`~mbmeta.models.dynamics.MetaDynamicsModel` (CaDM context
adapter, ensemble of 3 × 64-64-64 with a learned reward head, normaliser fitted on random data: the step's cost does
not depend on training); plans score with the family's exact reward, so the objective may skip the reward head.

Variants (``--variants``; all by default): family × planner size × B, with the planner sizes

- ``small``: CEM N=20, 2 iterations, H=10 (planning is cheap, so the bookkeeping around it shows);
- ``config``: CEM N=100, 3 iterations, H=20 (``configs/pendulum.yaml``);
- ``latency``: CEM N=200, 5 iterations, H=30, P=1 expectation (the latency regime of the issue).

Every step is split into four parts, each timed in CPU seconds of this process (``time.process_time``; on a shared
machine wall-clock time also counts the time other processes hold the core, CPU time does not):

- ``plan``: the planner's calls (``plan_with_carry``: the objective, i.e. the model rollouts, and the optimiser);
- ``adapt``: the model's ``adapt`` on the context windows;
- ``env``: the vector environment's ``step`` / ``reset`` (MuJoCo);
- ``overhead``: everything else: the agent's bookkeeping (objective construction, warm start, context window,
  checks), the numpy/torch conversions, and the collector (task checks, episode recording).

``step`` is the whole step (CPU), ``wall`` its wall-clock time. Rounds are interleaved (every variant once per
round, after one untimed warm-up run each); the table prints the median over rounds and the spread (min-max).

``--compare DIR`` runs the same measurement on the code in another checkout (e.g. ``git worktree add /tmp/before
<commit>``) and on this one, alternating one subprocess per version per round so that both see the same load, and
prints both tables and the change of the medians.

``--threads N`` sets torch's intra-op threads (default 1, what every ``mbmeta`` command and
``mbmeta.configure_threads()`` set; ``--threads 0`` keeps torch's own default, what a user's script gets without
it).

Usage: ``python benchmarks/control_loop.py [--variants pendulum-small-B1 ...] [--rounds 5] [--steps 40]
[--threads 1] [--compare /tmp/before]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PARTS = ("step", "plan", "adapt", "env", "overhead", "wall")


@dataclass(frozen=True)
class Variant:
    family: str
    size: str
    batch: int

    @property
    def name(self) -> str:
        return f"{self.family}-{self.size}-B{self.batch}"


PLANNER_SIZES = {  # population, elites, iterations, horizon
    "small": (20, 4, 2, 10),
    "config": (100, 10, 3, 20),
    "latency": (200, 20, 5, 30),
}
VARIANTS = {
    v.name: v
    for v in (
        Variant("pendulum", "small", 1),
        Variant("pendulum", "small", 8),
        Variant("pendulum", "config", 8),
        Variant("pendulum", "latency", 1),
        Variant("halfcheetah_mass", "small", 1),
        Variant("halfcheetah_mass", "small", 8),
        Variant("halfcheetah_mass", "latency", 1),
    )
}


# ------------------------------------------------------------------------------------------------- one process
def measure(names: list[str], rounds: int, steps: int, threads: int = 1) -> dict[str, dict[str, list[float]]]:
    """``{variant: {part: [ms per step, one per round]}}`` measured in this process (``threads`` 0: torch's own)."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    print(f"torch threads: {torch.get_num_threads()}", file=sys.stderr)
    runs = {name: _Run(VARIANTS[name]) for name in names}
    for run in runs.values():
        run(3)  # warm-up: first calls allocate, and MuJoCo and torch fill their caches
    out: dict[str, dict[str, list[float]]] = {name: {part: [] for part in PARTS} for name in names}
    for _ in range(rounds):
        for name, run in runs.items():
            for part, value in run(steps).items():
                out[name][part].append(value)
    for run in runs.values():
        run.close()
    return out


class _Run:
    """One variant: its agent, timed model/planner wrappers and vector env; ``run(steps)`` -> ms per step by part."""

    def __init__(self, variant: Variant) -> None:
        import numpy as np
        import torch
        from gymnasium.vector import AutoresetMode, SyncVectorEnv

        from mbmeta.control import MPCAgent
        from mbmeta.control.vector_envs import family_env_fns
        from mbmeta.envs import get_family
        from mbmeta.models.dynamics import MetaDynamicsModel
        from mbmeta.models.normaliser import transition_statistics
        from mbmeta.planners import CEMPlanner
        from mbmeta.types import Transition

        self.clock = {"plan": 0.0, "adapt": 0.0, "env": 0.0}
        clock = self.clock

        class TimedEnv(SyncVectorEnv):
            def step(self, actions):
                start = time.process_time()
                try:
                    return super().step(actions)
                finally:
                    clock["env"] += time.process_time() - start

            def reset(self, **kwargs):
                start = time.process_time()
                try:
                    return super().reset(**kwargs)
                finally:
                    clock["env"] += time.process_time() - start

        family = get_family(variant.family)
        obs_dim = family.observation_space.shape[0]
        action_dim = family.action_space.shape[0]
        model = MetaDynamicsModel(
            obs_dim, action_dim, adaptation="context", ensemble_size=3, hidden_sizes=(64, 64, 64), seed=0
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

        class TimedModel:
            device = torch.device("cpu")

            def adapt(self, context, mask=None, task=None):
                start = time.process_time()
                try:
                    return model.adapt(context, mask, task)
                finally:
                    clock["adapt"] += time.process_time() - start

        population, elites, iterations, horizon = PLANNER_SIZES[variant.size]
        space = family.action_space
        planner = CEMPlanner(space.low, space.high, population=population, elites=elites, iterations=iterations)

        class TimedPlanner:
            low, high, uses_carry = planner.low, planner.high, planner.uses_carry

            def plan_with_carry(self, objective, init, *, generator=None, carry=None):
                start = time.process_time()
                try:
                    return planner.plan_with_carry(objective, init, generator=generator, carry=carry)
                finally:
                    clock["plan"] += time.process_time() - start

        self.agent = MPCAgent(
            TimedModel(), TimedPlanner(), family.reward, family.terminated, horizon=horizon, context_size=10, seed=0
        )
        self.family, self.batch = family, variant.batch
        self.tasks = family.sample(np.random.default_rng(0), variant.batch, "train")
        self.make_env = lambda steps: TimedEnv(
            family_env_fns(family, variant.batch, max_episode_steps=steps), autoreset_mode=AutoresetMode.NEXT_STEP
        )
        self.envs: dict[int, SyncVectorEnv] = {}

    def __call__(self, steps: int) -> dict[str, float]:
        from mbmeta.control.collection import collect_episodes

        if steps not in self.envs:  # built once per episode length, outside the timing
            self.envs[steps] = self.make_env(steps)
        for key in self.clock:
            self.clock[key] = 0.0
        # B episodes of `steps` steps that start together and end together: exactly `steps` vector steps.
        wall, cpu = time.perf_counter(), time.process_time()
        result = collect_episodes(self.agent, self.batch, envs=self.envs[steps], tasks=self.tasks, seed=0)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert result.buffer.num_transitions == steps * self.batch
        ms = {"step": cpu, "wall": wall, **self.clock}
        ms["overhead"] = cpu - self.clock["plan"] - self.clock["adapt"] - self.clock["env"]
        return {part: 1e3 * value / steps for part, value in ms.items()}

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


# ----------------------------------------------------------------------------------------------------- report
def table(results: dict[str, dict[str, list[float]]], title: str) -> str:
    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):8.3f} [{min(values):.3f}-{max(values):.3f}]"

    width = max(len(n) for n in results)
    lines = [title, f"{'variant':<{width}}  " + "  ".join(f"{p + ' ms':>26}" for p in PARTS)]
    for name, parts in results.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell(parts[p]):>26}" for p in PARTS))
    return "\n".join(lines)


def change(before: dict, after: dict) -> str:
    width = max(len(n) for n in after)
    lines = [
        "change of the medians (after / before - 1; negative = faster)",
        f"{'variant':<{width}}  " + "  ".join(f"{p:>10}" for p in PARTS),
    ]
    for name in after:
        ratios = [statistics.median(after[name][p]) / statistics.median(before[name][p]) - 1 for p in PARTS]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{r:>+10.1%}" for r in ratios))
    return "\n".join(lines)


def compare(other: Path, names: list[str], rounds: int, steps: int) -> None:
    here = Path(__file__).resolve().parents[1]
    versions = {"before": other.resolve(), "after": here}
    results: dict[str, dict[str, dict[str, list[float]]]] = {
        v: {n: {p: [] for p in PARTS} for n in names} for v in versions
    }
    for r in range(rounds):
        for version, root in versions.items() if r % 2 == 0 else reversed(versions.items()):
            env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "MBMETA_THREADS": "1"}
            args = ["--variants", *names, "--rounds", "1", "--steps", str(steps), "--json"]
            proc = subprocess.run(
                [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{version} ({root}) failed:\n{proc.stderr[-2000:]}")
            payload = json.loads(proc.stdout.strip().splitlines()[-1])
            assert Path(payload["mbmeta"]).resolve().is_relative_to(root), payload["mbmeta"]
            for name in names:
                for part in PARTS:
                    results[version][name][part] += payload["results"][name][part]
            print(f"round {r + 1}/{rounds}: {version} done", file=sys.stderr)
    for version, root in versions.items():
        title = f"\n{version}: {root} (ms per vector step; median [min-max] over {rounds} rounds)"
        print(table(results[version], title))
    print()
    print(change(results["before"], results["after"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (interleaved over the variants)")
    parser.add_argument("--steps", type=int, default=40, help="vector steps per timed run")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout to measure against this one")
    parser.add_argument("--json", action="store_true", help="print the raw figures as one JSON line")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.compare is not None:
        compare(args.compare, args.variants, args.rounds, args.steps)
        return
    results = measure(args.variants, args.rounds, args.steps, args.threads)
    if args.json:
        import mbmeta

        print(json.dumps({"mbmeta": mbmeta.__file__, "results": results}))
    else:
        print(table(results, f"ms per vector step; median [min-max] over {args.rounds} rounds"))


if __name__ == "__main__":
    main()

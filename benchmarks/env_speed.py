"""Step time of every task-family environment vs the bare environment it is built on, and the overhead in %.

What "bare" means, per family (the table's ``baseline`` column):

- ``gym:<id>``: the family sets ``bare_env_id``, a Gymnasium environment it extends (e.g. ``HalfCheetah-v5`` for the
  HalfCheetah families). The difference is the whole task layer: action checks, ``info["task"]`` and any
  observation/reward changes the family makes.
- ``class:<Name>``: the family sets ``bare_env_entry_point`` (``"module:Class"``), the same MuJoCo model, observation
  and reward without the task layer (the pendulum's and cart-pole's ``*BareEnv``). The difference is exactly the
  task layer (action check + ``info["task"]``).
- ``raw mujoco``: neither is set (e.g. the Juggler). The baseline is the family env's own model and data stepped
  directly, as ``MujocoEnv`` does (``ctrl``, ``mj_step × frame_skip``, ``mj_rnePostConstraint``) plus its
  ``_get_obs()``, with no reward, termination, action check or info. Its overhead therefore also counts the
  env's reward and termination, and is an upper bound on the task layer's cost.

Both sides are timed unwrapped (no ``TimeLimit``/``OrderEnforcing``/``PassiveEnvChecker``, which would add the
same constant to both and hide the difference), with the same seeded random actions; the family env runs its
nominal task (same physics as the bare env). Only ``step`` calls are timed (resets after terminations are
excluded). Short blocks of steps alternate between family and baseline; ``family µs``/``bare µs`` are the
fastest block of each (on a shared machine the minimum is the least disturbed estimate) and ``overhead`` compares
them; ``paired`` is the median over adjacent block pairs of the time ratio, a second estimate that load drift
cannot bias.

Usage: ``python benchmarks/env_speed.py [--steps 20000] [--block 100] [--families pendulum cartpole]``.
Prints a table; the exit code does not depend on the overhead.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium.envs.registration import load_env_creator  # noqa: E402

import mbmeta.envs  # noqa: E402
from mbmeta.envs.family import TaskFamily  # noqa: E402

Stepper = Callable[[np.ndarray], bool]  # one step; returns whether the episode ended (then it resets, untimed)


def env_stepper(env: gym.Env, seed: int) -> tuple[Stepper, Callable[[], None]]:
    """A step function and a reset function for an unwrapped Gymnasium env."""
    env.reset(seed=seed)

    def step(action: np.ndarray) -> bool:
        _, _, terminated, truncated, _ = env.step(action)
        return terminated or truncated

    return step, lambda: env.reset()


def raw_stepper(env: gym.Env) -> tuple[Stepper, Callable[[], None]]:
    """MujocoEnv's simulation step + observation on the family env's own model, without anything else."""
    model, data, frame_skip, get_obs = env.model, env.data, env.frame_skip, env._get_obs

    def step(action: np.ndarray) -> bool:
        data.ctrl[:] = action
        mujoco.mj_step(model, data, nstep=frame_skip)
        mujoco.mj_rnePostConstraint(model, data)
        get_obs()
        return False

    return step, lambda: None


def make_baseline(family: TaskFamily, seed: int) -> tuple[str, gym.Env | None, tuple[Stepper, Callable[[], None]]]:
    """The family's baseline: its Gymnasium original, its bare class, or raw MuJoCo stepping."""
    bare_id = getattr(family, "bare_env_id", None)
    if bare_id:
        env = gym.make(bare_id).unwrapped
        return f"gym:{bare_id}", env, env_stepper(env, seed)
    entry_point = getattr(family, "bare_env_entry_point", None)
    if entry_point:
        env = load_env_creator(entry_point)()
        return f"class:{entry_point.split(':')[-1]}", env, env_stepper(env, seed)
    env = gym.make(family.env_id).unwrapped
    env.reset(seed=seed)
    return "raw mujoco", env, raw_stepper(env)


def time_steps(step: Stepper, reset: Callable[[], None], actions: np.ndarray) -> float:
    """Seconds spent inside ``step`` over all actions (resets excluded)."""
    total = 0.0
    start = time.perf_counter()
    for action in actions:
        if step(action):
            total += time.perf_counter() - start
            reset()
            start = time.perf_counter()
    return total + time.perf_counter() - start


def benchmark(family: TaskFamily, steps: int, block: int, seed: int = 0) -> dict[str, float | str]:
    """Seconds per step of the family env and its baseline: the best of alternating blocks of ``block`` steps."""
    rng = np.random.default_rng(seed)
    env = gym.make(family.env_id).unwrapped
    # The nominal task: the same physics as the bare env (a crippled leg or heavier body would change the
    # simulation's own cost, which is not the task layer's).
    env.task = family.nominal()
    family_step = env_stepper(env, seed)
    baseline, bare_env, bare_step = make_baseline(family, seed)
    space = env.action_space
    if bare_env is not None and bare_env.action_space.shape != space.shape:
        raise ValueError(f"{family.name}: baseline action shape {bare_env.action_space.shape} != {space.shape}")
    actions = rng.uniform(space.low, space.high, size=(block, *space.shape)).astype(space.dtype)
    time_steps(*family_step, actions)  # warm up both (caches, lazy allocations)
    time_steps(*bare_step, actions)
    fam_times, bare_times = [], []
    for _ in range(max(1, steps // block)):
        fam_times.append(time_steps(*family_step, actions) / block)
        bare_times.append(time_steps(*bare_step, actions) / block)
    env.close()
    if bare_env is not None and bare_env is not env:
        bare_env.close()
    fam, bare = min(fam_times), min(bare_times)
    # adjacent blocks see the same machine load: their ratio's median is a second, drift-free estimate
    paired = float(np.median(np.array(fam_times) / np.array(bare_times)))
    return {
        "family": family.name,
        "baseline": baseline,
        "fam": fam,
        "bare": bare,
        "overhead": 100 * (fam / bare - 1),
        "paired": 100 * (paired - 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20000, help="timed steps per environment")
    parser.add_argument("--block", type=int, default=100, help="steps per timed block (blocks alternate envs)")
    parser.add_argument("--families", nargs="*", default=None, help="family names (default: all registered)")
    args = parser.parse_args()
    fams = [mbmeta.envs.get_family(n) for n in args.families] if args.families else mbmeta.envs.families()

    header = (
        f"{'family':<22} {'baseline':<28} {'family µs':>10} {'bare µs':>10} {'family st/s':>12} "
        f"{'bare st/s':>12} {'overhead':>9} {'paired':>8}"
    )
    print(header)
    print("-" * len(header))
    for family in fams:
        r = benchmark(family, args.steps, args.block)
        print(
            f"{r['family']:<22} {r['baseline']:<28} {1e6 * r['fam']:>10.1f} {1e6 * r['bare']:>10.1f} "
            f"{1 / r['fam']:>12,.0f} {1 / r['bare']:>12,.0f} {r['overhead']:>8.1f}% {r['paired']:>7.1f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Time one MPC planning step and one environment step at given model and planner sizes (the experiments' cost tables).

The agent is built exactly as ``mbmeta train`` builds it (:func:`mbmeta.control.factory.make_agent`), around an
untrained model of the given size: planning speed does not depend on the weights. One torch thread.

Usage::

    python experiments/halfcheetah_mass_12k/diagnostics/time_mpc.py --family halfcheetah_mass --envs 5 \
        --population 200 --elites 50 --iterations 5 --horizon 30 --hidden 200 200 200 200 --propagation tsinf \
        --particles 20 --steps 1
"""

import argparse
import time

import numpy as np
import torch

from mbmeta.control.factory import make_agent
from mbmeta.control.settings import AgentSettings
from mbmeta.envs import get_family
from mbmeta.training.module import MetaDynamicsModule


def main(argv: list[str] | None = None) -> None:
    """Parse the sizes, time ``--steps`` planning steps after one warm-up, and print ms per step."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", required=True)
    p.add_argument("--envs", type=int, required=True, help="B, environments planned for together")
    p.add_argument("--planner", default="cem")
    p.add_argument("--population", type=int, required=True)
    p.add_argument("--elites", type=int, required=True)
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--horizon", type=int, required=True)
    p.add_argument("--hidden", type=int, nargs="+", required=True)
    p.add_argument("--ensemble", type=int, default=5)
    p.add_argument("--propagation", default="expectation")
    p.add_argument("--particles", type=int, default=1)
    p.add_argument("--adaptation", default="context")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--precision", default="fp32", help="fp32, or bf16 (model under bfloat16 autocast)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    family = get_family(a.family)
    env = family.make_env()
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    module = MetaDynamicsModule(
        obs_dim,
        action_dim,
        len(family.parameter_names),
        adaptation=a.adaptation,
        hidden_sizes=tuple(a.hidden),
        ensemble_size=a.ensemble,
        learn_reward=False,
    ).eval()
    options = {"population": a.population, "elites": a.elites, "iterations": a.iterations}
    if a.planner == "cem":
        options["alpha"] = 0.1
    settings = AgentSettings.from_config(
        {
            "planner": {"class_path": a.planner, "init_args": options},
            "horizon": a.horizon,
            "propagation": a.propagation,
            "particles": a.particles,
            "precision": a.precision,
        }
    )
    agent = make_agent(module.dynamics, family, settings)
    agent.reset(a.envs)
    obs = np.stack([env.reset(seed=i)[0] for i in range(a.envs)]).astype(np.float32)
    rng = np.random.default_rng(0)
    for _ in range(10):  # fill the context window
        agent.observe(obs, rng.uniform(-1, 1, (a.envs, action_dim)).astype(np.float32), obs)
    agent.act(obs)  # warm-up
    start = time.perf_counter()
    for _ in range(a.steps):
        agent.act(obs)
    plan = (time.perf_counter() - start) / a.steps
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(200):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    step = (time.perf_counter() - start) / 200
    print(f"{vars(a)}: {plan * 1000:.0f} ms per planning step ({a.envs} envs); env step {step * 1000:.2f} ms")


if __name__ == "__main__":
    main()

"""Ablation: a `context` agent whose latent z is clamped, per dimension, to the range its encoder produced in training.

Tests whether out-of-range z on test tasks (see ``context_latent_range.py``) is why the agent fails there: z is
encoded for every K-window (stride 1) of the run's training buffer, and at test time each adapted z is clamped to
those windows' [min, max]. Everything else is ``mbmeta evaluate``'s: every test task, one episode each (env seed 0),
8 environments in one batch, the planner from the run's ``config.json``.

Usage: ``python experiments/halfcheetah_mass_24k/diagnostics/context_latent_clamp.py RUN_DIR OUT.json``
"""

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from context_latent_range import episode_latents  # the sibling script (its directory is on sys.path)

from mbmeta.control.settings import AgentSettings
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluate_agent, evaluation_tasks
from mbmeta.models.adapters.base import Adaptation
from mbmeta.training.checkpoint import load_module


def training_latent_range(model, buffer: EpisodeBuffer, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension min and max ``[Z]`` of z over every K-window (stride 1) of ``buffer``."""
    z = torch.cat([episode_latents(model, buffer, episode, k, stride=1) for episode in range(buffer.num_episodes)])
    return z.min(0).values, z.max(0).values


def main(argv: list[str] | None = None) -> None:
    """Evaluate the clamped agent of a run; print the returns and write them to a JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a mbmeta train run directory of a context model (with its buffer.npz)")
    parser.add_argument("out", help="JSON file to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run, out = Path(args.run_dir), Path(args.out)
    config = json.loads((run / "config.json").read_text())
    module = load_module(run / "model.ckpt").eval()
    model = module.dynamics
    low, high = training_latent_range(model, EpisodeBuffer.load(run / "buffer.npz"), config["data"]["context_length"])
    adapt = model.adapter.forward

    def clamped(dynamics, context, mask, task) -> Adaptation:
        adaptation = adapt(dynamics, context, mask, task)
        return Adaptation(torch.clamp(adaptation.z, low.to(adaptation.z), high.to(adaptation.z)), adaptation.params)

    model.adapter.forward = clamped  # the agent's adapter calls go through nn.Module.__call__ -> this
    family = get_family(config["loop"]["family"])
    tasks = evaluation_tasks(family, "test", None, seed=0)
    agent = AgentSettings.from_config(config["agent"])
    evaluation = evaluate_agent(module, family, tasks, method="context, z clamped", agent=agent, num_envs=8, seed=0)
    returns = [r.episode_return for r in evaluation.records]
    print("returns per test task:", np.round(returns, 1).tolist(), f"mean {np.mean(returns):.1f}")
    payload = {"records": [asdict(r) for r in evaluation.records], "plan_stats": evaluation.plan_stats}
    out.write_text(json.dumps({**payload, "z_low": low.tolist(), "z_high": high.tolist()}, indent=1, default=str))


if __name__ == "__main__":
    main()

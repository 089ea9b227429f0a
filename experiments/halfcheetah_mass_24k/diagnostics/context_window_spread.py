"""How much a `context` model's latent z moves within one episode, against how much it differs between tasks.

z is the mean of per-transition embeddings over the last K transitions. Within one episode the task is fixed, so
any variation of z there is noise for the dynamics network (e.g. the phase of a running gait); between episodes
of different tasks z should differ. For each window length K (sliding windows, stride 1) this prints, over the
run's training-buffer episodes (random-action and MPC episodes separately):

- ``within``: the mean over episodes of z's per-dimension variance within the episode, averaged over dimensions;
- ``between``: the per-dimension variance across episodes of each episode's mean z, averaged over dimensions;
- their ratio (below 1: z identifies the task better than it tracks the state).

Window lengths other than the training K ask the encoder nothing new (each transition is embedded on its own),
only how many embeddings are averaged.

Usage: ``python experiments/halfcheetah_mass_24k/diagnostics/context_window_spread.py RUN_DIR [K ...]``.
"""

import argparse
import json
from pathlib import Path

import torch
from context_latent_range import episode_latents  # same directory

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.models.checkpoint import load_dynamics


def spread(latents: list[torch.Tensor]) -> tuple[float, float]:
    """``(within, between)`` variances of a list of ``[W, Z]`` per-episode latents (see the module docstring)."""
    within = torch.stack([z.var(0) for z in latents]).mean()
    between = torch.stack([z.mean(0) for z in latents]).var(0).mean()
    return float(within), float(between)


def main(argv: list[str] | None = None) -> None:
    """Print the within / between spread of z for each K, for one run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a mbmeta train run directory of a context model (with its buffer.npz)")
    parser.add_argument("windows", type=int, nargs="*", help="window lengths K (default: the training K, 25, 50)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run = Path(args.run_dir)
    config = json.loads((run / "config.json").read_text())
    windows = args.windows or [int(config["data"]["context_length"]), 25, 50]
    initial = int(config["loop"]["initial_episodes"])
    model = load_dynamics(run / "model.ckpt").eval()
    buffer = EpisodeBuffer.load(run / "buffer.npz")
    groups = {"random": range(initial), "mpc": range(initial, buffer.num_episodes)}
    trained_k = config["data"]["context_length"]
    print(f"{run}: {buffer.num_episodes} episodes ({initial} random-action), training K = {trained_k}")
    for k in windows:
        for name, episodes in groups.items():
            if len(episodes) < 2:
                continue
            within, between = spread([episode_latents(model, buffer, e, k, stride=1) for e in episodes])
            print(
                f"K = {k:3d}, {name:>6} episodes ({len(episodes):2d}): within {within:.4f}, between {between:.4f}, "
                f"within / between {within / between:.2f}"
            )


if __name__ == "__main__":
    main()

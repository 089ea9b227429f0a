"""Where a `context` model's latent z lies on test tasks, relative to what its encoder produced in training.

For every window of K consecutive transitions (stride K) of the run's training buffer and of random-action
episodes on each test task, encodes z ``[Z]`` and prints per task: the mean of z in units of the training windows'
per-dimension std (centred on their mean), the RMS of that, and the fraction of z components outside the
training windows' [min, max]. A task whose z leaves the training range asks the dynamics network to extrapolate in z.

Usage: ``python experiments/halfcheetah_mass_24k/diagnostics/context_latent_range.py RUN_DIR`` (a ``mbmeta train``
run of a ``context`` model).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluation_tasks
from mbmeta.evaluation.prediction import test_data
from mbmeta.evaluation.reports import task_label
from mbmeta.models.checkpoint import load_dynamics
from mbmeta.types import Transition

FIELDS = ("obs", "action", "next_obs", "reward", "terminated")


def episode_latents(model, buffer: EpisodeBuffer, episode: int, k: int, stride: int | None = None) -> torch.Tensor:
    """``[W, Z]`` z of the episode's K-transition windows, one every ``stride`` steps (default K: non-overlapping).

    A model with one encoder per member (``context_per_member``) gives ``[W, E·Z]``: each member's z as further
    dimensions.
    """
    start, end = buffer.episode_starts[episode], buffer.episode_starts[episode + 1]
    stride = k if stride is None else stride
    # copies: the buffer's fields are read-only views, which torch.as_tensor would warn about
    fields = {name: torch.from_numpy(np.array(buffer.field(name)[start:end])) for name in FIELDS}
    windows = torch.arange((end - start - k) // stride + 1)[:, None] * stride + torch.arange(k)
    with torch.no_grad():
        z = model.adapt(Transition(*(fields[name][windows] for name in FIELDS))).adaptation.z
    return z.transpose(0, 1).flatten(1) if z.dim() == 3 else z


def main(argv: list[str] | None = None) -> None:
    """Print the per-task latent statistics of a run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a mbmeta train run directory of a context model (with its buffer.npz)")
    torch.set_num_threads(1)
    run = Path(parser.parse_args(argv).run_dir)
    config = json.loads((run / "config.json").read_text())
    k = int(config["data"]["context_length"])
    model = load_dynamics(run / "model.ckpt").eval()
    family = get_family(config["loop"]["family"])
    train = EpisodeBuffer.load(run / "buffer.npz")
    test = test_data(family, evaluation_tasks(family, "test", None, seed=0), 1, seed=0)
    groups: dict[str, list[torch.Tensor]] = {}
    for split, buffer in (("train", train), ("test", test)):
        for episode in range(buffer.num_episodes):
            label = f"{split} {task_label(buffer.task(episode).as_dict())}"
            groups.setdefault(label, []).append(episode_latents(model, buffer, episode, k))
    reference = torch.cat([torch.cat(zs) for label, zs in groups.items() if label.startswith("train")])
    mean, std = reference.mean(0), reference.std(0)
    low, high = reference.min(0).values, reference.max(0).values
    print(f"training windows: {len(reference)}; z dims: {reference.shape[1]}")
    for label in sorted(groups):
        z = torch.cat(groups[label])
        units = (z - mean) / std
        outside = ((z < low) | (z > high)).float().mean()
        print(
            f"{label:>28}: windows {len(z):4d}, mean z (train-std units) {np.round(units.mean(0).numpy(), 1)}, "
            f"RMS {units.pow(2).mean().sqrt():.2f}, outside the training range {outside:.0%}"
        )


if __name__ == "__main__":
    main()

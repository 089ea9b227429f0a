"""Typed settings of the model-based loop (the ``loop`` group of ``mbmeta train`` configs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class LoopSettings:
    """The model-based loop across training tasks.

    Args:
        family: task family: a name (``mbmeta envs`` lists them, installed packages' too), or an import path
            ``module:NAME`` of your own family (see docs/bring_your_own_robot.md).
        run_dir: directory of this run: buffer, checkpoint, loop state, W&B files. Re-running the same command
            resumes from the last completed iteration.
        seed: seeds task sampling, environments, weights, batches and planning.
        iterations: model-fitting + MPC-collection iterations after the initial random collection.
        initial_episodes: episodes collected first (iteration 0), with ``initial_policy``.
        initial_policy: ``random`` (uniformly random actions) or ``scripted``: the family's scripted controller
            (``TaskFamily.make_controller``; the juggler families have one) with Gaussian action noise, for
            families where random actions never reach the states good control visits.
        initial_noise: with ``scripted``: each episode's noise std is drawn uniformly from ``[0, initial_noise]``
            (fraction of each action's half-range), so the data span clean control to losing the ball.
        initial_scale: with ``random``: actions are uniform within ``initial_scale`` of each half-range about the
            centre of the bounds (1 = the whole box). Smaller random actions explore gently: on the servo juggler
            they keep the ball longer and look like balancing more than full-range ones (experiments/juggler_diagnosis).
        initial_buffer: an ``.npz`` episode buffer (``mbmeta collect``, an ``EpisodeRecorder`` in your own loop, or
            ``EpisodeBuffer.save``) whose episodes are iteration 0 instead of collecting ``initial_episodes`` with
            ``initial_policy`` (both then unused): data recorded on your robot, or with a controller or reset the
            loop does not offer. Same family, sizes and task names; every task in the train split. Its transitions
            count in the run's budget; the file is read once, when the run starts (None: collect).
        episodes_per_iteration: episodes the MPC agent collects on newly sampled train tasks per iteration.
        min_transitions: with > 0, every collection (the initial one and each iteration's) goes on starting episodes
            after its ``initial_episodes`` / ``episodes_per_iteration`` until they hold at least this many
            transitions: a budget in environment steps, which differs from a count of episodes where failures end
            episodes early (CartPole). 0: the episode counts alone.
        under_way: with ``min_transitions``, how a collection ends. ``finish``: the episodes under way when the
            budget is reached run to their end (a collection can hold up to one episode per environment more).
            ``drop``: CaDM's sampler (``num_rollouts × max_path_length`` steps per collection): environments
            restart until the finished episodes hold the budget, then the episodes under way are discarded.
        num_envs: environments (each with its own task) stepped together during collection; the planner is
            batched over them.
        vectorization: ``sync`` (one process) or ``async`` (one process per environment, Gymnasium AsyncVectorEnv).
        epochs_per_iteration: Lightning epochs of fitting per iteration (warm-started from the previous iteration).
        keep_checkpoints_every: also keep the checkpoint of every k-th iteration (k, 2k, ...) under
            ``checkpoints/``, recorded with its SHA-256 and the transitions it was fitted on in ``state.json``
            (for learning curves); 0 keeps only the last one. Changes no result, but a resumed run must keep the
            same value, so that its kept checkpoints are exactly every k-th.
    """

    family: str = "pendulum"
    run_dir: str = "runs/pendulum"
    seed: int = 0
    iterations: int = 3
    initial_episodes: int = 20
    initial_policy: Literal["random", "scripted"] = "random"
    initial_noise: float = 0.5
    initial_scale: float = 1.0
    initial_buffer: str | None = None
    episodes_per_iteration: int = 8
    min_transitions: int = 0
    under_way: Literal["finish", "drop"] = "finish"
    num_envs: int = 4
    vectorization: Literal["sync", "async"] = "sync"
    epochs_per_iteration: int = 10
    keep_checkpoints_every: int = 0

    def __post_init__(self) -> None:
        m = self.min_transitions
        if not isinstance(m, int) or isinstance(m, bool) or m < 0:
            raise ValueError(f"loop.min_transitions must be an int >= 0 (0: count episodes only), got {m!r}")
        if self.under_way not in ("finish", "drop"):
            raise ValueError(f"loop.under_way must be 'finish' or 'drop', got {self.under_way!r}")
        if self.under_way == "drop" and not m:
            raise ValueError("loop.under_way 'drop' ends a collection by its budget in steps: set loop.min_transitions")
        k = self.keep_checkpoints_every
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise ValueError(f"loop.keep_checkpoints_every must be an int >= 0 (0: keep none), got {k!r}")

    def keeps_checkpoint(self, iteration: int) -> bool:
        """Whether the checkpoint fitted in ``iteration`` is kept for good (``keep_checkpoints_every``)."""
        k = self.keep_checkpoints_every
        return k > 0 and iteration % k == 0

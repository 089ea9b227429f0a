"""Typed settings of the model-based loop, the agent and evaluation (what ``mbmeta train`` configs hold).

These are plain dataclasses so that jsonargparse turns them into nested config groups with ``--help`` text, and so
that they serialise to JSON beside a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Names in a run directory (see mbmeta.training.loop), here so that commands can read a run without importing
# Lightning.
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


@dataclass
class AgentSettings:
    """How the MPC agent plans with a learned model.

    Args:
        planner: planner short name: ``cem``, ``icem``, ``mppi`` or ``random_shooting``.
        planner_options: the planner's settings (e.g. ``population``, ``elites``, ``iterations``); bounds come from
            the environment's action space.
        horizon: H, the planning horizon.
        context_size: K, recent transitions the model adapts on at every step.
        propagation: ``expectation`` (mean prediction), ``ts1`` or ``tsinf`` (trajectory sampling).
        particles: P per candidate (1 for ``expectation``).
        exact_reward: plan with the family's exact reward function (True) or the model's learned reward (False).
        discount: per-step discount of planned rewards.
        disagreement_penalty: λ >= 0: each planned reward minus λ × the ensemble's disagreement (mean over
            observation dims of the members' variance of the predicted next state), which keeps plans where the model
            is trustworthy; with ``ts1``/``tsinf`` it makes every member predict every particle (E× the model rows).
        precision: ``fp32``, or ``bf16`` to evaluate the model under bfloat16 autocast while planning (faster).
    """

    planner: str = "cem"
    planner_options: dict[str, Any] = field(
        default_factory=lambda: {"population": 400, "elites": 40, "iterations": 5, "alpha": 0.1}
    )
    horizon: int = 25
    context_size: int = 10
    propagation: Literal["expectation", "ts1", "tsinf"] = "expectation"
    particles: int = 1
    exact_reward: bool = True
    discount: float = 1.0
    disagreement_penalty: float = 0.0
    precision: Literal["fp32", "bf16"] = "fp32"


@dataclass
class LoopSettings:
    """The model-based loop across training tasks.

    Args:
        family: task-family name (``mbmeta envs`` lists them).
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
        episodes_per_iteration: episodes the MPC agent collects on newly sampled train tasks per iteration.
        num_envs: environments (each with its own task) stepped together during collection; the planner is
            batched over them.
        vectorization: ``sync`` (one process) or ``async`` (one process per environment, Gymnasium AsyncVectorEnv).
        epochs_per_iteration: Lightning epochs of fitting per iteration (warm-started from the previous iteration).
    """

    family: str = "pendulum"
    run_dir: str = "runs/pendulum"
    seed: int = 0
    iterations: int = 3
    initial_episodes: int = 20
    initial_policy: Literal["random", "scripted"] = "random"
    initial_noise: float = 0.5
    episodes_per_iteration: int = 8
    num_envs: int = 4
    vectorization: Literal["sync", "async"] = "sync"
    epochs_per_iteration: int = 10

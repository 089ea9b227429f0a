"""The model-based meta-RL loop: collect across training tasks, fit, collect with the adapting MPC agent, repeat.

Iteration 0 collects episodes with random actions on tasks from the family's train split. Each iteration then fits
the model (Lightning, warm-started from the previous iteration), lets the MPC agent collect new episodes on newly
sampled train tasks (adapting online from its own recent transitions), appends them to the buffer, and saves
buffer, checkpoint and loop state. All three are written atomically (temporary file, fsync, rename); the loop state
records how many episodes the buffer held at the last completed step, so a run killed at any moment and started
again with the same command continues from there without losing or duplicating transitions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import Logger, WandbLogger

from mbmeta.control.agent import MPCAgent
from mbmeta.control.collection import EpisodeStats, RandomPolicy, collect_episodes
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import get_family
from mbmeta.envs.family import TaskFamily
from mbmeta.planners import make_planner
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.training.settings import AgentSettings, LoopSettings

BUFFER_FILE = "buffer.npz"
CHECKPOINT_FILE = "model.ckpt"
STATE_FILE = "state.json"


@dataclasses.dataclass
class LoopState:
    """Progress of a run, saved after every completed step.

    Attributes:
        iteration: iterations completed (0 before the first fit).
        episodes: episodes in the buffer when the state was saved; extra episodes found on resume were written by
            a step that did not complete and are dropped (then collected again).
    """

    iteration: int = 0
    episodes: int = 0

    @classmethod
    def load(cls, path: Path) -> LoopState:
        """Read the state file, or a fresh state if there is none."""
        if not path.is_file():
            return cls()
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"loop state file {str(path)!r} is corrupt ({err}); delete it to restart the run") from err

    def save(self, path: Path) -> None:
        """Write the state atomically."""
        atomic_write(path, lambda f: f.write(json.dumps(dataclasses.asdict(self)).encode()))


def atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """Write a file through ``write(binary_file)`` into a temporary sibling, fsync it, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(trainer: pl.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` made atomic: a crash never leaves a partial checkpoint at ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    trainer.save_checkpoint(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def first_episodes(buffer: EpisodeBuffer, count: int) -> EpisodeBuffer:
    """A copy of the first ``count`` episodes of ``buffer`` (drops what an interrupted step appended)."""
    kept = EpisodeBuffer(
        buffer.obs_dim, buffer.action_dim, buffer.task_names, family=buffer.family, env_id=buffer.env_id
    )
    for i in range(count):
        kept.add_episode(**buffer.episode(i), task=buffer.task(i))
    return kept


def make_agent(
    dynamics: Any, family: TaskFamily, settings: AgentSettings, *, seed: int = 0, device: str | None = None
) -> MPCAgent:
    """Build the MPC agent of ``settings`` around a model, with the family's action bounds and reward."""
    env = family.make_env()
    low, high = env.action_space.low, env.action_space.high
    env.close()
    planner = make_planner(settings.planner, low=low, high=high, **settings.planner_options)
    return MPCAgent(
        dynamics,
        planner,
        reward_fn=family.reward if settings.exact_reward else None,
        termination_fn=family.terminated,
        horizon=settings.horizon,
        context_size=settings.context_size,
        propagation=settings.propagation,
        particles=settings.particles,
        discount=settings.discount,
        seed=seed,
        device=device,
    )


def fit_model(
    module: MetaDynamicsModule | None,
    buffer: EpisodeBuffer,
    *,
    model: dict[str, Any],
    data: dict[str, Any],
    trainer: dict[str, Any],
    max_epochs: int,
    logger: Logger | bool,
    seed: int,
    root_dir: Path,
) -> tuple[MetaDynamicsModule, pl.Trainer]:
    """Fit (or continue fitting) the model on the buffer; returns the module and the trainer that fitted it.

    The normaliser is refitted on the whole current buffer every time: the data distribution moves as the agent
    improves, and the warm-started weights adapt to the new scaling within the first epoch.
    """
    datamodule = MetaDataModule.from_buffer(buffer, **{**data, "seed": seed})
    if module is None:
        module = MetaDynamicsModule(
            obs_dim=datamodule.obs_dim,
            action_dim=datamodule.action_dim,
            task_dim=datamodule.task_dim,
            **{"seed": seed, **model},
        )
    module.fit_normaliser(datamodule.statistics())
    options = {
        "accelerator": "cpu",
        "devices": 1,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "log_every_n_steps": 10,
        **trainer,
    }
    fitter = pl.Trainer(max_epochs=max_epochs, logger=logger, default_root_dir=str(root_dir), **options)
    fitter.fit(module, datamodule)
    return module, fitter


def episode_metrics(stats: list[EpisodeStats], prefix: str) -> dict[str, float]:
    """Mean/min/max return and mean length of a batch of episodes, for logging."""
    returns = np.array([s.episode_return for s in stats], dtype=np.float64)
    lengths = np.array([s.length for s in stats], dtype=np.float64)
    return {
        f"{prefix}/return_mean": float(returns.mean()),
        f"{prefix}/return_min": float(returns.min()),
        f"{prefix}/return_max": float(returns.max()),
        f"{prefix}/length_mean": float(lengths.mean()),
    }


def run_training(
    loop: LoopSettings,
    model: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    agent: AgentSettings | None = None,
    trainer: dict[str, Any] | None = None,
    *,
    logger: Logger | bool | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Run (or resume) the model-based loop; returns the path of the final checkpoint.

    Args:
        loop: the loop's settings (family, run directory, budget).
        model: ``MetaDynamicsModule`` arguments other than the sizes (e.g. ``{"adaptation": "context"}``).
        data: ``MetaDataModule`` arguments other than the buffer (e.g. ``{"context_length": 10}``).
        agent: how the agent plans.
        trainer: extra ``pl.Trainer`` arguments (e.g. ``{"accelerator": "gpu"}``).
        logger: a Lightning logger; None creates a ``WandbLogger`` in the run directory (offline unless
            ``WANDB_MODE=online``); False disables logging.
        log: where progress lines go.
    """
    model, data, trainer = dict(model or {}), dict(data or {}), dict(trainer or {})
    agent = agent or AgentSettings()
    family = get_family(loop.family)
    run_dir = Path(loop.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    buffer_path, ckpt_path, state_path = run_dir / BUFFER_FILE, run_dir / CHECKPOINT_FILE, run_dir / STATE_FILE
    state = LoopState.load(state_path)
    if logger is None:
        logger = WandbLogger(
            project="mbmeta", name=run_dir.name, save_dir=str(run_dir), config=_config(loop, model, data, agent)
        )
    oracle = model.get("adaptation") == "oracle"

    buffer: EpisodeBuffer | None = None
    if state.episodes > 0:
        buffer = EpisodeBuffer.load(buffer_path)
        if buffer.num_episodes < state.episodes:
            raise ValueError(
                f"{buffer_path} holds {buffer.num_episodes} episodes but the loop state records {state.episodes}"
            )
        if buffer.num_episodes > state.episodes:  # appended by a step that did not complete: redo that step
            buffer = first_episodes(buffer, state.episodes)
        log(f"resuming {run_dir}: {state.iteration} iterations done, {buffer.num_transitions} transitions")

    if buffer is None:
        env = family.make_env()
        random_policy = RandomPolicy(env.action_space, seed=loop.seed)
        env.close()
        log(f"iteration 0: {loop.initial_episodes} random episodes on train tasks of {family.name}")
        collection = collect_episodes(
            random_policy,
            loop.initial_episodes,
            family=family,
            num_envs=loop.num_envs,
            vectorization=loop.vectorization,
            seed=loop.seed,
        )
        buffer = collection.buffer
        _log_metrics(logger, episode_metrics(collection.episodes, "collect"), step=0)
        buffer.save(buffer_path)
        state = LoopState(iteration=0, episodes=buffer.num_episodes)
        state.save(state_path)

    module = None
    if state.iteration > 0 and ckpt_path.is_file():
        module = MetaDynamicsModule.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    for iteration in range(state.iteration, loop.iterations):
        seed = loop.seed + 1000 * (iteration + 1)
        module, fitter = fit_model(
            module,
            buffer,
            model=model,
            data=data,
            trainer=trainer,
            max_epochs=loop.epochs_per_iteration,
            logger=logger,
            seed=seed,
            root_dir=run_dir,
        )
        save_checkpoint(fitter, ckpt_path)
        module.eval()
        mpc = make_agent(module.dynamics, family, agent, seed=seed)
        log(f"iteration {iteration + 1}/{loop.iterations}: collecting {loop.episodes_per_iteration} MPC episodes")
        collection = collect_episodes(
            mpc,
            loop.episodes_per_iteration,
            family=family,
            num_envs=loop.num_envs,
            vectorization=loop.vectorization,
            buffer=buffer,
            seed=seed,
            pass_task=oracle,
        )
        module.train()
        metrics = episode_metrics(collection.episodes, "collect")
        _log_metrics(logger, metrics, step=iteration + 1)
        log(f"  mean return {metrics['collect/return_mean']:.1f} over {len(collection.episodes)} episodes")
        buffer.save(buffer_path)
        state = LoopState(iteration=iteration + 1, episodes=buffer.num_episodes)
        state.save(state_path)
    if not ckpt_path.is_file():
        raise ValueError(f"no checkpoint in {run_dir}: set iterations >= 1 to fit a model")
    if isinstance(logger, WandbLogger):
        logger.experiment.finish()
    return ckpt_path


def _log_metrics(logger: Logger | bool, metrics: dict[str, float], step: int) -> None:
    if isinstance(logger, Logger):
        logger.log_metrics({**metrics, "loop/iteration": step})


def _config(loop: LoopSettings, model: dict, data: dict, agent: AgentSettings) -> dict[str, Any]:
    return {"loop": dataclasses.asdict(loop), "model": model, "data": data, "agent": dataclasses.asdict(agent)}

"""The model-based meta-RL loop: collect across training tasks, fit, collect with the adapting MPC agent, repeat.

Iteration 0 collects episodes with random actions on tasks from the family's train split. Each iteration then fits
the model (Lightning, warm-started from the previous iteration), lets the MPC agent collect new episodes on newly
sampled train tasks (adapting online from its own recent transitions), and appends them to the buffer.

Crash safety. A run directory holds::

    config.json                     settings of the run (a resumed run must use the same ones)
    wandb_id                        the W&B run id (online: a resumed run logs into the same W&B run)
    buffer.npz                      every episode collected so far
    checkpoints/iteration_NNN.ckpt  the model fitted in the last completed iteration
    model.ckpt                      the same file under a stable name (a hard link or copy)
    state.json                      the commit record: iterations completed, episodes in the buffer, checkpoint

Every file is written atomically (temporary sibling, flush, fsync, rename), and an iteration is committed only when
``state.json`` is rewritten after its buffer and checkpoint are on disk. A run killed at any moment and started
again with the same command reloads the committed checkpoint, drops buffer episodes beyond the committed count
(written by the step that did not complete) and redoes that step with the same seeds, so it neither loses nor
duplicates transitions and ends with the same buffer and weights as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar
from pytorch_lightning.loggers import Logger, WandbLogger

from mbmeta.control.agent import MPCAgent
from mbmeta.control.collection import EpisodeStats, RandomPolicy, collect_episodes
from mbmeta.control.exploration import NoisyControllerPolicy
from mbmeta.data.atomic import atomic_write, fsync_directory
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import get_family
from mbmeta.envs.family import TaskFamily
from mbmeta.planners import make_planner
from mbmeta.training.callbacks import DivergenceCallback, DivergenceError
from mbmeta.training.checkpoint import load_module, save_checkpoint
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.training.progress import episode_progress, log_episode_table
from mbmeta.training.settings import CHECKPOINT_DIR, CONFIG_FILE, AgentSettings, LoopSettings

BUFFER_FILE = "buffer.npz"
CHECKPOINT_FILE = "model.ckpt"
STATE_FILE = "state.json"
WANDB_ID_FILE = "wandb_id"

# Settings that may change when a run is resumed: they extend it or change where/how fast it runs, not its results.
RESUMABLE_CHANGES = {("loop", "iterations"), ("loop", "run_dir"), ("loop", "vectorization")}
# pl.Trainer arguments the loop sets itself.
RESERVED_TRAINER_KEYS = {"logger", "max_epochs", "default_root_dir"}


@dataclasses.dataclass
class LoopState:
    """Progress of a run: the commit record, rewritten atomically after every completed step.

    Attributes:
        iteration: iterations completed (0 before the first fit).
        episodes: episodes in the buffer when the state was saved; extra episodes found on resume were written by
            a step that did not complete and are dropped (then collected again).
        checkpoint: the completed iteration's checkpoint, relative to the run directory (None before the first fit).
    """

    iteration: int = 0
    episodes: int = 0
    checkpoint: str | None = None

    @classmethod
    def load(cls, path: Path) -> LoopState:
        """Read the state file, or a fresh state if there is none.

        Raises:
            ValueError: the file is corrupt (names the file).
        """
        if not path.is_file():
            return cls()
        try:
            state = cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as err:
            raise ValueError(f"loop state file {str(path)!r} is corrupt ({err}); delete it to restart the run") from err
        for name in ("iteration", "episodes"):
            value = getattr(state, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"loop state file {str(path)!r} is corrupt: {name} is {value!r}, not an int >= 0")
        if state.checkpoint is not None and not isinstance(state.checkpoint, str):
            raise ValueError(f"loop state file {str(path)!r} is corrupt: checkpoint is {state.checkpoint!r}")
        return state

    def save(self, path: Path) -> None:
        """Write the state atomically."""
        atomic_write(path, lambda f: f.write(json.dumps(dataclasses.asdict(self)).encode()))


def publish(source: Path, target: Path) -> None:
    """Make ``target`` an atomic hard link to ``source`` (a copy where hard links are not supported)."""
    tmp = target.with_name(f".{target.name}.publish.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    os.replace(tmp, target)
    fsync_directory(target.parent)


def wandb_resume_options(run_dir: Path, mode: str | None = None) -> dict[str, str]:
    """``WandbLogger`` arguments that tie every (re)start of a run directory together in W&B.

    Online, a resumed run logs into the same W&B run (a fixed id, ``resume="allow"``). Offline, W&B cannot resume:
    syncing two offline folders with one id makes the second replace the first. So offline each start is its own
    W&B run, and all of them share the run directory's ``group``.

    Args:
        run_dir: the run directory (its ``wandb_id`` file holds the id).
        mode: ``WANDB_MODE``; default: the environment's (offline unless set).
    """
    mode = mode if mode is not None else os.environ.get("WANDB_MODE", "offline")
    options = {"group": f"{run_dir.name}-{wandb_run_id(run_dir)}"}
    if mode in ("online", "run"):
        options.update(id=wandb_run_id(run_dir), resume="allow")
    return options


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id of a run directory: read from ``wandb_id``, or made (random, 16 hex digits) and saved."""
    path = run_dir / WANDB_ID_FILE
    if path.is_file():
        run_id = path.read_text().strip()
        if run_id.isalnum():
            return run_id
    run_id = os.urandom(8).hex()
    atomic_write(path, lambda f: f.write(run_id.encode()))
    return run_id


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
        disagreement_penalty=settings.disagreement_penalty,
        precision=settings.precision,
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
    improves, and the warm-started weights adapt to the new scaling within the first epoch. A
    :class:`~mbmeta.training.callbacks.DivergenceCallback` stops fitting with a
    :class:`~mbmeta.training.callbacks.DivergenceError` if the loss or the weights become NaN/inf.
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
    callbacks = list(options.pop("callbacks", None) or [])
    if options.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(RichProgressBar(leave=False))
    if not any(isinstance(c, DivergenceCallback) for c in callbacks):
        callbacks.append(DivergenceCallback())
    fitter = pl.Trainer(
        max_epochs=max_epochs, logger=logger, default_root_dir=str(root_dir), callbacks=callbacks, **options
    )
    fitter.fit(module, datamodule)
    return module, fitter


def to_fitted_device(module: MetaDynamicsModule, fitter: pl.Trainer) -> MetaDynamicsModule:
    """Put a just-fitted module in eval mode on the device it was fitted on, for planning or evaluation.

    Lightning moves the model back to the CPU after fitting on an accelerator.
    """
    module.eval()
    device = fitter.strategy.root_device
    if device.type != "cpu":
        module.to(device)
    return module


def realised_horizon_return(episodes: list[EpisodeStats], agent: AgentSettings) -> float:
    """What the episodes delivered per planning horizon: their reward per step summed over H steps.

    Discounted as the planner discounts, so it compares with the planner's ``plan/planned_return_mean``; the planned
    return lies far above it when the planner exploits the model's errors.
    """
    steps = sum(s.length for s in episodes)
    per_step = sum(s.episode_return for s in episodes) / max(steps, 1)
    return float(per_step * sum(agent.discount**t for t in range(agent.horizon)))


def episode_metrics(stats: list[EpisodeStats], prefix: str) -> dict[str, float]:
    """Mean/min/max return, mean length and (where the family defines success) success rate of episodes."""
    returns = np.array([s.episode_return for s in stats], dtype=np.float64)
    lengths = np.array([s.length for s in stats], dtype=np.float64)
    metrics = {
        f"{prefix}/return_mean": float(returns.mean()),
        f"{prefix}/return_min": float(returns.min()),
        f"{prefix}/return_max": float(returns.max()),
        f"{prefix}/length_mean": float(lengths.mean()),
    }
    successes = [s.success for s in stats if s.success is not None]
    if successes:
        metrics[f"{prefix}/success_rate"] = float(np.mean(successes))
    return metrics


def run_training(
    loop: LoopSettings,
    model: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    agent: AgentSettings | None = None,
    trainer: dict[str, Any] | None = None,
    *,
    logger: Logger | bool | None = None,
    log: Callable[[str], None] = print,
    env_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Run (or resume) the model-based loop; returns the path of the final checkpoint.

    Args:
        loop: the loop's settings (family, run directory, budget).
        model: ``MetaDynamicsModule`` arguments other than the sizes (e.g. ``{"adaptation": "context"}``).
        data: ``MetaDataModule`` arguments other than the buffer (e.g. ``{"context_length": 10}``).
        agent: how the agent plans.
        trainer: extra ``pl.Trainer`` arguments (e.g. ``{"accelerator": "gpu"}``; several devices need a
            spawning strategy such as ``"ddp_spawn"``, see ``docs/long_jobs.md``).
        logger: a Lightning logger; None creates a ``WandbLogger`` in the run directory (offline unless
            ``WANDB_MODE=online``); False disables logging.
        log: where progress lines go.
        env_kwargs: extra ``gymnasium.make`` arguments for the family's environments (e.g.
            ``{"max_episode_steps": 100}``).

    Raises:
        ValueError: bad settings (naming the setting and the valid values), a run directory holding a run with
            different settings, or a corrupt state file.
        KeyError: unknown family (the message lists the valid ones).
        mbmeta.training.callbacks.DivergenceError: fitting diverged; the last committed checkpoint and buffer are
            kept, so the run can be resumed after fixing the cause.
    """
    model, data, trainer = dict(model or {}), dict(data or {}), dict(trainer or {})
    env_kwargs = dict(env_kwargs or {})
    agent = agent or AgentSettings()
    family = get_family(loop.family)
    check_settings(loop, model, agent, trainer, family, env_kwargs)
    run_dir = Path(loop.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CHECKPOINT_DIR).mkdir(exist_ok=True)
    with RunLock(run_dir):
        _remove_stale_temporaries(run_dir)
        return _run(loop, model, data, agent, trainer, family, run_dir, logger, log, env_kwargs)


def _run(
    loop: LoopSettings,
    model: dict[str, Any],
    data: dict[str, Any],
    agent: AgentSettings,
    trainer: dict[str, Any],
    family: TaskFamily,
    run_dir: Path,
    logger: Logger | bool | None,
    log: Callable[[str], None],
    env_kwargs: dict[str, Any],
) -> Path:
    buffer_path, ckpt_path, state_path = run_dir / BUFFER_FILE, run_dir / CHECKPOINT_FILE, run_dir / STATE_FILE
    config = _config(loop, model, data, agent, env_kwargs)
    state = LoopState.load(state_path)
    if state.episodes > 0:
        check_same_config(run_dir / CONFIG_FILE, config)
    else:
        atomic_write(run_dir / CONFIG_FILE, lambda f: f.write(json.dumps(config, indent=2).encode()))
    if logger is None:
        logger = WandbLogger(
            project="mbmeta", name=run_dir.name, save_dir=str(run_dir), config=config, **wandb_resume_options(run_dir)
        )
    oracle = model.get("adaptation") == "oracle"

    buffer: EpisodeBuffer | None = None
    module: MetaDynamicsModule | None = None
    if state.episodes > 0:
        buffer = EpisodeBuffer.load(buffer_path)  # BufferFormatError names the file if it is damaged
        if buffer.num_episodes < state.episodes:
            raise ValueError(
                f"{buffer_path} holds {buffer.num_episodes} episodes but the loop state {state_path} records "
                f"{state.episodes}: the buffer was replaced or truncated outside mbmeta"
            )
        if buffer.num_episodes > state.episodes:  # appended by a step that did not complete: redo that step
            log(f"dropping {buffer.num_episodes - state.episodes} episodes of an interrupted iteration")
            buffer = first_episodes(buffer, state.episodes)
        if state.iteration > 0:
            committed = run_dir / (state.checkpoint or CHECKPOINT_FILE)
            if not committed.is_file():
                raise ValueError(
                    f"the loop state {state_path} records {state.iteration} completed iterations but their "
                    f"checkpoint {committed} is missing"
                )
            module = load_module(committed, eval_mode=False)
            if committed != ckpt_path:
                publish(committed, ckpt_path)  # repairs a kill between the commit and the publish
            _prune_checkpoints(run_dir, keep=committed)
        log(f"resuming {run_dir}: {state.iteration} iterations done, {buffer.num_transitions} transitions")

    if buffer is None:
        initial_policy = _initial_policy(loop, family, env_kwargs)
        log(f"iteration 0: {loop.initial_episodes} {loop.initial_policy} episodes on train tasks of {family.name}")
        with episode_progress(f"{loop.initial_policy} episodes", loop.initial_episodes) as on_episode:
            collection = collect_episodes(
                initial_policy,
                loop.initial_episodes,
                family=family,
                num_envs=loop.num_envs,
                vectorization=loop.vectorization,
                env_kwargs=env_kwargs,
                seed=loop.seed,
                on_episode=on_episode,
            )
        buffer = collection.buffer
        _log_metrics(logger, episode_metrics(collection.episodes, "collect"), step=0)
        log_episode_table(logger, "collect/episodes", collection.episodes, step=0)
        buffer.save(buffer_path)
        state = LoopState(iteration=0, episodes=buffer.num_episodes)
        state.save(state_path)

    for iteration in range(state.iteration, loop.iterations):
        seed = loop.seed + 1000 * (iteration + 1)
        log(f"iteration {iteration + 1}/{loop.iterations}: fitting on {buffer.num_transitions} transitions")
        try:
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
        except DivergenceError as err:
            kept = f"the checkpoint of iteration {state.iteration} ({ckpt_path})" if state.iteration else "no model"
            raise DivergenceError(
                f"iteration {iteration + 1} of {run_dir}: {err} Kept: {kept} and the buffer ({state.episodes} "
                "episodes); fix the cause and run the same command to resume."
            ) from err
        fitted = run_dir / CHECKPOINT_DIR / f"iteration_{iteration + 1:03d}.ckpt"
        save_checkpoint(fitter, fitted)
        to_fitted_device(module, fitter)
        mpc = make_agent(module.dynamics, family, agent, seed=seed)
        log(f"iteration {iteration + 1}/{loop.iterations}: collecting {loop.episodes_per_iteration} MPC episodes")
        with episode_progress(f"MPC episodes, iteration {iteration + 1}", loop.episodes_per_iteration) as on_episode:
            collection = collect_episodes(
                mpc,
                loop.episodes_per_iteration,
                family=family,
                num_envs=loop.num_envs,
                vectorization=loop.vectorization,
                env_kwargs=env_kwargs,
                buffer=buffer,
                seed=seed,
                pass_task=oracle,
                on_episode=on_episode,
            )
        module.train()
        metrics = {**episode_metrics(collection.episodes, "collect"), **mpc.plan_stats.summary("plan/")}
        metrics["plan/realised_return_mean"] = realised_horizon_return(collection.episodes, agent)
        _log_metrics(logger, metrics, step=iteration + 1)
        log_episode_table(logger, "collect/episodes", collection.episodes, step=iteration + 1)
        log(
            f"  mean return {metrics['collect/return_mean']:.1f} over {len(collection.episodes)} episodes; "
            f"planning {metrics['plan/ms_per_call']:.0f} ms per step (all environments in one call); "
            f"{agent.horizon}-step return planned {metrics['plan/planned_return_mean']:.1f}, "
            f"realised {metrics['plan/realised_return_mean']:.1f}"
        )
        buffer.save(buffer_path)
        state = LoopState(
            iteration=iteration + 1, episodes=buffer.num_episodes, checkpoint=str(fitted.relative_to(run_dir))
        )
        state.save(state_path)  # the commit point of this iteration
        publish(fitted, ckpt_path)
        _prune_checkpoints(run_dir, keep=fitted)
    if not ckpt_path.is_file():
        raise ValueError(f"no checkpoint in {run_dir}: set iterations >= 1 to fit a model")
    if isinstance(logger, WandbLogger):
        logger.experiment.finish()
    return ckpt_path


class RunInUseError(RuntimeError):
    """Another process is running in the same run directory."""


class RunLock:
    """An exclusive lock on a run directory for the life of a run (released by the OS if the process dies).

    Two processes running the same directory would interleave their writes; the second one fails at once instead.
    Where ``fcntl`` is missing (Windows) the lock is a no-op.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self._file: Any = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:
            return self
        self._file = open(self.path, "a+")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            raise RunInUseError(
                f"{self.path.parent} is in use by another mbmeta process; wait for it or use another loop.run_dir"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


def _initial_policy(loop: LoopSettings, family: TaskFamily, env_kwargs: dict[str, Any]):
    """The iteration-0 policy: uniformly random actions, or the family's scripted controller with noise."""
    env = family.make_env(**env_kwargs)
    action_space = env.action_space
    env.close()
    if loop.initial_policy == "scripted":
        return NoisyControllerPolicy(family.make_controller, action_space, noise=loop.initial_noise, seed=loop.seed)
    return RandomPolicy(action_space, seed=loop.seed)


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Delete temporary files that a killed writer left behind (the run holds the lock, so none is in use)."""
    for directory in (run_dir, run_dir / CHECKPOINT_DIR):
        for path in directory.glob(".*.tmp"):
            path.unlink(missing_ok=True)


def check_settings(
    loop: LoopSettings,
    model: dict[str, Any],
    agent: AgentSettings,
    trainer: dict[str, Any],
    family: TaskFamily,
    env_kwargs: dict[str, Any] | None = None,
) -> None:
    """Fail fast, before any data is collected, on settings that would otherwise fail minutes or hours later.

    Raises:
        ValueError: a budget <= 0, a bad planner, agent, model or trainer setting; the message names it.
    """
    for name in ("initial_episodes", "episodes_per_iteration", "num_envs", "epochs_per_iteration"):
        value = getattr(loop, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"loop.{name} must be an int >= 1, got {value!r}")
    if not isinstance(loop.iterations, int) or isinstance(loop.iterations, bool) or loop.iterations < 0:
        raise ValueError(f"loop.iterations must be an int >= 0, got {loop.iterations!r}")
    if loop.vectorization not in ("sync", "async"):
        raise ValueError(f"loop.vectorization must be 'sync' or 'async', got {loop.vectorization!r}")
    if loop.initial_policy not in ("random", "scripted"):
        raise ValueError(f"loop.initial_policy must be 'random' or 'scripted', got {loop.initial_policy!r}")
    if loop.initial_policy == "scripted" and family.make_controller() is None:
        raise ValueError(
            f"loop.initial_policy is 'scripted' but family {family.name!r} has no scripted controller "
            "(TaskFamily.make_controller); use 'random'"
        )
    if not (isinstance(loop.initial_noise, int | float) and loop.initial_noise >= 0):
        raise ValueError(f"loop.initial_noise must be a number >= 0, got {loop.initial_noise!r}")
    for name in ("horizon", "context_size", "particles"):
        value = getattr(agent, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"agent.{name} must be an int >= 1, got {value!r}")
    if not 0.0 < agent.discount <= 1.0:
        raise ValueError(f"agent.discount must be in (0, 1], got {agent.discount!r}")
    if not agent.disagreement_penalty >= 0.0:
        raise ValueError(f"agent.disagreement_penalty must be >= 0, got {agent.disagreement_penalty!r}")
    env = family.make_env(**(env_kwargs or {}))
    try:
        obs_dim, action_dim = int(env.observation_space.shape[0]), int(env.action_space.shape[0])
        try:
            make_planner(agent.planner, low=env.action_space.low, high=env.action_space.high, **agent.planner_options)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"agent.planner {agent.planner!r} with options {agent.planner_options}: {err}") from err
    finally:
        env.close()
    try:  # builds (and discards) the model: unknown arguments and bad sizes surface now, not after collection
        MetaDynamicsModule(obs_dim, action_dim, len(family.parameter_names), **model)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"model settings {model}: {err}") from err
    check_trainer(trainer)


def check_trainer(trainer: dict[str, Any]) -> None:
    """Reject ``pl.Trainer`` arguments the loop cannot honour.

    The loop collects data in this process between fits, so a strategy that relaunches the whole command once per
    device (``ddp``, ``fsdp``, ``deepspeed``, or ``auto`` with several devices) would collect the data once per
    process. Spawning strategies (``ddp_spawn``, ``ddp_fork``) fit on several devices and return the weights here.
    """
    reserved = sorted(RESERVED_TRAINER_KEYS & set(trainer))
    if reserved:
        raise ValueError(
            f"trainer options {reserved} are set by the loop (logger: logger argument; max_epochs: "
            "loop.epochs_per_iteration; default_root_dir: loop.run_dir)"
        )
    strategy = trainer.get("strategy", "auto")
    devices, num_nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    several = num_nodes != 1 or not (
        devices in (1, "1", None) or (isinstance(devices, list | tuple) and len(devices) == 1)
    )
    spawning = isinstance(strategy, str) and any(word in strategy for word in ("spawn", "fork", "notebook"))
    relaunching = isinstance(strategy, str) and strategy.split("_")[0] in ("ddp", "fsdp", "deepspeed")
    if (several or relaunching) and not spawning:
        raise ValueError(
            f"mbmeta train cannot fit with strategy {strategy!r} on devices={devices!r}, num_nodes={num_nodes!r}: "
            "that strategy relaunches the whole command per process, which would repeat data collection. Use "
            "strategy 'ddp_spawn' (one node, several devices), or fit a saved buffer with "
            "`mbmeta fit --trainer.strategy ddp ...` under torchrun/SLURM (see docs/long_jobs.md)"
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(
            "mbmeta train was started by a multi-process launcher (WORLD_SIZE > 1); every process would collect "
            "data. Run it once, and use `mbmeta fit` under torchrun/SLURM for multi-node fitting."
        )


def check_same_config(path: Path, config: dict[str, Any]) -> None:
    """Raise if a resumed run's settings differ from those recorded in ``path`` (beyond :data:`RESUMABLE_CHANGES`).

    Raises:
        ValueError: names every changed setting with its recorded and new value.
    """
    if not path.is_file():
        return  # runs started before config.json existed
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"run config file {str(path)!r} is corrupt ({err})") from err
    new = json.loads(json.dumps(config))  # tuples -> lists, as recorded
    # A setting added in a later mbmeta version is absent from older records; at its default it changes nothing.
    defaults = json.loads(json.dumps(_config(LoopSettings(), {}, {}, AgentSettings())))
    changed = []
    for group in sorted(set(recorded) | set(new)):
        old_group, new_group = recorded.get(group) or {}, new.get(group) or {}
        for key in sorted(set(old_group) | set(new_group)):
            if (group, key) in RESUMABLE_CHANGES:
                continue
            if key not in old_group and key in defaults.get(group, {}) and new_group.get(key) == defaults[group][key]:
                continue
            if old_group.get(key) != new_group.get(key):
                changed.append(f"{group}.{key}: {old_group.get(key)!r} -> {new_group.get(key)!r}")
    if changed:
        raise ValueError(
            f"{path.parent} holds a run with different settings ({'; '.join(changed)}). Resume with the same "
            "settings (only loop.iterations, loop.vectorization and trainer options may change) or use a new "
            "loop.run_dir"
        )


def _prune_checkpoints(run_dir: Path, keep: Path) -> None:
    """Delete iteration checkpoints other than ``keep`` (older ones, or one left by an uncommitted iteration)."""
    for path in (run_dir / CHECKPOINT_DIR).glob("iteration_*.ckpt"):
        if path.resolve() != keep.resolve():
            path.unlink(missing_ok=True)


def _defaults(function: Callable[..., Any], skip: tuple[str, ...]) -> dict[str, Any]:
    """Default values of a function's keyword arguments (seeds excluded: the loop derives them from loop.seed)."""
    parameters = inspect.signature(function).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.default is not inspect.Parameter.empty and p.name not in (*skip, "seed")
    }


def _log_metrics(logger: Logger | bool, metrics: dict[str, float], step: int) -> None:
    if isinstance(logger, Logger):
        logger.log_metrics({**metrics, "loop/iteration": step})
        logger.save()  # buffered loggers (CSV, TensorBoard) would otherwise hold the last iteration's metrics back


def _config(
    loop: LoopSettings, model: dict, data: dict, agent: AgentSettings, env_kwargs: dict | None = None
) -> dict[str, Any]:
    """All settings of a run, with defaults filled in (so the CLI's full config and an API call's overrides agree)."""
    return {
        "loop": dataclasses.asdict(loop),
        "model": {**_defaults(MetaDynamicsModule.__init__, skip=("obs_dim", "action_dim", "task_dim")), **model},
        "data": {**_defaults(MetaDataModule.__init__, skip=("buffer_path",)), **data},
        "agent": dataclasses.asdict(agent),
        "env": dict(env_kwargs or {}),
    }

"""The model-based meta-RL loop: collect across training tasks, fit, collect with the adapting MPC agent, repeat.

Iteration 0 collects episodes with the initial policy (random actions, or a scripted controller with noise) on tasks
from the family's train split, or reads recorded ones (``loop.initial_buffer``, :mod:`mbmeta.runs.initial_data`).
Each iteration then fits the model (Lightning, warm-started from the previous iteration), lets the MPC agent collect
new episodes on newly sampled train tasks (adapting online from its own recent transitions), and appends them to the
buffer.

Crash safety lives in :class:`~mbmeta.runs.run_dir.RunDirectory`: every step is committed atomically, and a run
killed at any moment and started again with the same command redoes the step that did not complete with the same
seeds, so it ends with the same buffer and weights as an uninterrupted run. Settings are checked
(:mod:`mbmeta.runs.checks`) before any data is collected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import Logger, WandbLogger

from mbmeta.control.collection import collect_episodes
from mbmeta.control.factory import make_agent, make_initial_policy
from mbmeta.control.latent_range import measure_latent_range
from mbmeta.control.settings import AgentSettings
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import get_family
from mbmeta.evaluation.metrics import episode_metrics, realised_horizon_return
from mbmeta.evaluation.progress import episode_progress, log_episode_table
from mbmeta.evaluation.reports import log_checkpoint_artifact
from mbmeta.provenance import software_versions
from mbmeta.runs.checks import check_same_config, check_settings, run_settings
from mbmeta.runs.durations import coarse_duration, precise_duration
from mbmeta.runs.initial_data import SOURCE_POLICY, episode_stats, load_initial_buffer
from mbmeta.runs.iteration_times import record_iteration_time
from mbmeta.runs.learning_curve import record_iteration
from mbmeta.runs.run_dir import RunDirectory, file_sha256
from mbmeta.runs.settings import LoopSettings
from mbmeta.training.callbacks import DivergenceError
from mbmeta.training.checkpoint import load_module, save_checkpoint
from mbmeta.training.fitting import fit_model, to_fitted_device
from mbmeta.training.module import MetaDynamicsModule


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
    wandb: Mapping[str, Any] | None = None,
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
        wandb: ``WandbLogger`` arguments over the defaults of the logger made when ``logger`` is None (``project``,
            ``entity``, ``mode``, ``tags``, ``group``, ``name``), and ``log_model``: an online run logs the final
            checkpoint as a W&B model artifact.

    Raises:
        ValueError: bad settings (naming the setting and the valid values), a run directory holding a run with
            different settings, or a corrupt state file.
        KeyError: unknown family (the message lists the valid ones).
        mbmeta.training.callbacks.DivergenceError: fitting diverged; the last committed checkpoint and buffer are
            kept, so the run can be resumed after fixing the cause.
    """
    # ----- settings: checked before anything is collected -------------------------------------------------------
    model, data, trainer = dict(model or {}), dict(data or {}), dict(trainer or {})
    env_kwargs = dict(env_kwargs or {})
    agent = agent or AgentSettings()
    family = get_family(loop.family)
    check_settings(loop, model, agent, trainer, family, env_kwargs, data)
    config = run_settings(loop, model, data, agent, env_kwargs)
    collect = dict(family=family, num_envs=loop.num_envs, vectorization=loop.vectorization, env_kwargs=env_kwargs)

    with RunDirectory(loop.run_dir) as run:
        # ----- resume what was committed, or record the settings of a new run -----------------------------------
        state = run.load_state()
        buffer: EpisodeBuffer | None = None
        module: MetaDynamicsModule | None = None
        if state.episodes > 0:
            check_same_config(run.config_path, config)
            buffer, committed = run.resume(state, log)
            module = load_module(committed, eval_mode=False) if committed is not None else None
            log(f"resuming {run.path}: {state.iteration} iterations done, {buffer.num_transitions} transitions")
            run.record_software(state.iteration, software_versions(), log)
        else:
            if loop.initial_buffer is not None:  # read and checked before the run records anything
                buffer = load_initial_buffer(loop.initial_buffer, family)
            state = run.start(config)
            run.record_software(0, software_versions(), log)
        options = dict(wandb or {})
        log_model = bool(options.pop("log_model", False))
        if logger is None:
            defaults = {"project": "mbmeta", "name": run.name, **run.wandb_options(options.get("mode"))}
            logger = WandbLogger(save_dir=str(run.path), config=config, **{**defaults, **options})

        # ----- iteration 0: initial data on train tasks ---------------------------------------------------------
        if state.episodes == 0:
            started = time.perf_counter()
            if buffer is not None:  # the recorded episodes of loop.initial_buffer, read before the run started
                log(
                    f"iteration 0: {buffer.num_episodes} recorded episodes ({buffer.num_transitions} transitions) "
                    f"from {loop.initial_buffer} (SHA-256 {file_sha256(Path(loop.initial_buffer))})"
                )
                episodes, source = episode_stats(buffer, family), SOURCE_POLICY
            else:
                policy = make_initial_policy(
                    family, loop.initial_policy, noise=loop.initial_noise, scale=loop.initial_scale, seed=loop.seed
                )
                log(
                    f"iteration 0: {loop.initial_episodes} {loop.initial_policy} episodes{_at_least(loop)} on train "
                    f"tasks of {family.name}"
                )
                with episode_progress(f"{loop.initial_policy} episodes", loop.initial_episodes) as on_episode:
                    collection = collect_episodes(
                        policy, loop.initial_episodes, **collect, seed=loop.seed, on_episode=on_episode,
                        min_transitions=loop.min_transitions, under_way=loop.under_way,
                    )  # fmt: skip
                buffer, episodes, source = collection.buffer, collection.episodes, loop.initial_policy
            metrics = episode_metrics(episodes, "collect")
            _log_metrics(logger, metrics, step=0)
            log_episode_table(logger, "collect/episodes", episodes, step=0)
            _record_curve(run, 0, metrics, source, len(episodes), buffer, family.name)
            state = run.commit(buffer, iteration=0)
            seconds = time.perf_counter() - started  # all collection: no model is fitted in iteration 0
            record_iteration_time(run.path, 0, seconds, log, fit_s=0.0, collect_s=seconds)

        # ----- iterations: fit, then collect with the adapting MPC agent ----------------------------------------
        durations: list[float] = []  # wall time of each iteration this process ran (the pace for the time left)
        for iteration in range(state.iteration + 1, loop.iterations + 1):
            seed = loop.seed + 1000 * iteration
            started = time.perf_counter()
            log(f"iteration {iteration}/{loop.iterations}: fitting on {buffer.num_transitions} transitions")
            try:
                module, fitter = fit_model(
                    module, buffer, model=model, data=data, trainer=trainer, max_epochs=loop.epochs_per_iteration,
                    logger=logger, seed=seed, root_dir=run.path,
                )  # fmt: skip
            except DivergenceError as err:
                kept = f"the checkpoint of iteration {state.iteration} ({run.checkpoint_path})"
                raise DivergenceError(
                    f"iteration {iteration} of {run.path}: {err} Kept: {kept if state.iteration else 'no model'} "
                    f"and the buffer ({state.episodes} episodes); fix the cause and run the same command to resume."
                ) from err
            fitted = save_checkpoint(fitter, run.iteration_checkpoint(iteration))
            fit_seconds = time.perf_counter() - started
            dynamics = to_fitted_device(module, fitter).dynamics
            bounds = measure_latent_range(dynamics, buffer, agent.context_length) if agent.bound_latent else None
            mpc = make_agent(dynamics, family, agent, seed=seed, latent_range=bounds)
            count = f"{loop.episodes_per_iteration} MPC episodes{_at_least(loop)}"
            log(f"iteration {iteration}/{loop.iterations}: collecting {count}")
            with episode_progress(f"MPC episodes, iteration {iteration}", loop.episodes_per_iteration) as on_episode:
                collection = collect_episodes(
                    mpc, loop.episodes_per_iteration, **collect, buffer=buffer, seed=seed,
                    pass_task=model.get("adaptation") == "oracle", on_episode=on_episode,
                    min_transitions=loop.min_transitions, under_way=loop.under_way,
                )  # fmt: skip
            metrics = {**episode_metrics(collection.episodes, "collect"), **mpc.plan_stats.summary("plan/")}
            metrics["plan/realised_return_mean"] = realised_horizon_return(collection.episodes, agent)
            metrics["time/fit_s"] = fit_seconds
            metrics["time/collect_s"] = time.perf_counter() - started - fit_seconds
            _log_metrics(logger, metrics, step=iteration)
            log_episode_table(logger, "collect/episodes", collection.episodes, step=iteration)
            log(
                f"  mean return {metrics['collect/return_mean']:.1f} over {len(collection.episodes)} episodes; "
                f"planning {metrics['plan/ms_per_call']:.0f} ms per step (all environments in one call); "
                f"{agent.horizon}-step return planned {metrics['plan/planned_return_mean']:.1f}, "
                f"realised {metrics['plan/realised_return_mean']:.1f}"
            )
            _record_curve(run, iteration, metrics, "mpc", len(collection.episodes), buffer, family.name)
            keep = loop.keeps_checkpoint(iteration)  # kept for good (learning curves), else pruned by the next commit
            state = run.commit(buffer, iteration=iteration, checkpoint=fitted, keep=keep)  # this iteration's commit
            durations.append(time.perf_counter() - started)
            fit_collect = {"fit_s": metrics["time/fit_s"], "collect_s": metrics["time/collect_s"]}
            record_iteration_time(run.path, iteration, durations[-1], log, **fit_collect)
            log(_pace_line(iteration, loop.iterations, durations, metrics))

        # ----- done ---------------------------------------------------------------------------------------------
        if not run.checkpoint_path.is_file():
            raise ValueError(f"no checkpoint in {run.path}: set iterations >= 1 to fit a model")
        if isinstance(logger, WandbLogger):
            if log_model:
                log_checkpoint_artifact(logger.experiment, run.checkpoint_path, name=f"model-{run.name}")
            logger.experiment.finish()
        return run.checkpoint_path


def _pace_line(iteration: int, iterations: int, durations: list[float], metrics: Mapping[str, float]) -> str:
    """``iteration i/n done in ...`` with its fit and collection times, and the time left at this process's pace."""
    fit, collect = precise_duration(metrics["time/fit_s"]), precise_duration(metrics["time/collect_s"])
    line = f"iteration {iteration}/{iterations} done in {precise_duration(durations[-1])}"
    line += f" (fit {fit}, collect {collect})"
    left = iterations - iteration
    if left:
        pace = sum(durations) / len(durations)
        line += f"; about {coarse_duration(pace * left)} for the {left} left"
        line += f" (the mean of the {len(durations)} this process ran)"
    return line


def _at_least(loop: LoopSettings) -> str:
    """`` (more until N transitions)`` with ``loop.min_transitions``, else empty."""
    if not loop.min_transitions:
        return ""
    dropped = ", dropping the episodes under way" if loop.under_way == "drop" else ""
    return f" (more until {loop.min_transitions} transitions{dropped})"


def _record_curve(
    run: RunDirectory,
    iteration: int,
    metrics: dict[str, float],
    policy: str,
    episodes: int,
    buffer: EpisodeBuffer,
    family: str,
) -> None:
    """The iteration's row of the run's ``learning_curve.csv`` and its plot.

    Written just before the commit: an iteration killed after it is redone on resume and replaces its row.
    """
    title = f"{family}: {run.name}"
    record_iteration(
        run.path, iteration, metrics, policy=policy, episodes=episodes, transitions=buffer.num_transitions, title=title
    )


def _log_metrics(logger: Logger | bool, metrics: dict[str, float], step: int) -> None:
    if isinstance(logger, Logger):
        logger.log_metrics({**metrics, "loop/iteration": step})
        logger.save()  # buffered loggers (CSV, TensorBoard) would otherwise hold the last iteration's metrics back

"""Settings checks of ``mbmeta train``: fail before any data is collected, and refuse a resume with other settings."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mbmeta.control.factory import make_family_planner, require_controller
from mbmeta.control.settings import AgentSettings, upgrade_agent_config
from mbmeta.envs.contract import check_family_env
from mbmeta.envs.family import TaskFamily
from mbmeta.envs.registry import family_reference
from mbmeta.runs.settings import LoopSettings
from mbmeta.training.datamodule import MetaDataModule, check_data_settings
from mbmeta.training.fitting import make_trainer
from mbmeta.training.module import MetaDynamicsModule

# Settings that may change when a run is resumed: they extend it or change where/how fast it runs, not its results.
RESUMABLE_CHANGES = {("loop", "iterations"), ("loop", "run_dir"), ("loop", "vectorization")}
# pl.Trainer arguments the loop sets itself.
RESERVED_TRAINER_KEYS = {"logger", "max_epochs", "default_root_dir"}


def _check_count(group: str, name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{group}.{name} must be an int >= {minimum}, got {value!r}")


def check_settings(
    loop: LoopSettings,
    model: dict[str, Any],
    agent: AgentSettings,
    trainer: dict[str, Any],
    family: TaskFamily,
    env_kwargs: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Fail fast, before any data is collected, on settings that would otherwise fail minutes or hours later.

    Everything the run will build later is built or validated here (environment, planner, model and optimiser
    settings, data module settings, the ``pl.Trainer``), so a bad value fails in seconds and nothing is committed;
    the family's env must take, apply and report its task (:func:`check_family`).

    Raises:
        ValueError: a budget <= 0, a bad planner, agent, model, data or trainer setting, or a family whose env
            breaks the task contract; the message names it.
    """
    for name in ("initial_episodes", "episodes_per_iteration", "num_envs", "epochs_per_iteration"):
        _check_count("loop", name, getattr(loop, name), 1)
    _check_count("loop", "iterations", loop.iterations, 0)
    if loop.vectorization not in ("sync", "async"):
        raise ValueError(f"loop.vectorization must be 'sync' or 'async', got {loop.vectorization!r}")
    if loop.initial_policy not in ("random", "scripted"):
        raise ValueError(f"loop.initial_policy must be 'random' or 'scripted', got {loop.initial_policy!r}")
    if loop.initial_policy == "scripted":
        require_controller(family, "loop.initial_policy")
    if not (isinstance(loop.initial_noise, int | float) and loop.initial_noise >= 0):
        raise ValueError(f"loop.initial_noise must be a number >= 0, got {loop.initial_noise!r}")
    scale = loop.initial_scale
    if not (isinstance(scale, int | float) and not isinstance(scale, bool) and 0 < scale <= 1):
        raise ValueError(f"loop.initial_scale must be a number in (0, 1], got {scale!r}")
    if loop.initial_buffer is not None and not isinstance(loop.initial_buffer, str | os.PathLike):
        raise ValueError(f"loop.initial_buffer must be a file path or None, got {loop.initial_buffer!r}")
    for name in ("horizon", "context_length", "particles"):
        _check_count("agent", name, getattr(agent, name), 1)
    if not 0.0 < agent.discount <= 1.0:
        raise ValueError(f"agent.discount must be in (0, 1], got {agent.discount!r}")
    if not agent.disagreement_penalty >= 0.0:
        raise ValueError(f"agent.disagreement_penalty must be >= 0, got {agent.disagreement_penalty!r}")
    if env_kwargs:  # unknown gymnasium.make arguments fail here, not after the first fit
        family.make_env(**env_kwargs).close()
    check_family(loop, model, agent, family)
    make_family_planner(family, agent)
    try:  # builds (and discards) the model: unknown arguments and bad sizes surface now, not after collection
        MetaDynamicsModule(family.obs_dim, family.action_dim, len(family.parameter_names), **model)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"model settings {model}: {err}") from err
    data = {**_defaults(MetaDataModule.__init__, skip=("buffer_path",)), **(data or {})}
    try:
        check_data_settings(**data)
    except TypeError as err:  # an unknown data setting
        raise ValueError(f"data settings {data}: {err}") from err
    check_context_length(agent, data)
    check_trainer(trainer)
    try:  # builds (and discards) the trainer: unknown keys and devices the machine lacks fail now
        make_trainer(max_epochs=1, **{**trainer, "enable_progress_bar": False})
    except Exception as err:  # Lightning raises TypeError, ValueError or its MisconfigurationException
        raise ValueError(f"trainer settings {trainer}: {type(err).__name__}: {err}") from err


def check_family(loop: LoopSettings, model: dict[str, Any], agent: AgentSettings, family: TaskFamily) -> None:
    """Refuse a family the run would collect wrong data with, or could not plan for.

    Its env must take, apply and report the task, and its exact reward (when planning uses it) and termination must
    agree with ``env.step`` (:func:`~mbmeta.envs.contract.check_family_env`, once per process); with ``async``
    vectorization, spawned workers must be able to import it; without an exact reward the model must learn one.

    Raises:
        ValueError: one line naming the family and what is wrong.
    """
    if loop.vectorization == "async":
        family_reference(family)
    if not agent.exact_reward and model.get("learn_reward") is False:
        raise ValueError(
            "agent.exact_reward is false (plan with the learned reward) but model.learn_reward is false: set one true"
        )
    check_family_env(family, exact_reward=agent.exact_reward)


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


def check_context_length(agent: AgentSettings, data: dict[str, Any]) -> None:
    """Refuse an agent that adapts on another K than the model is trained with.

    Raises:
        ValueError: ``agent.context_length`` differs from ``data.context_length`` (both named, with their values).
    """
    trained = data.get("context_length")
    if trained is not None and agent.context_length != trained:
        raise ValueError(
            f"agent.context_length {agent.context_length} differs from data.context_length {trained}: the agent must "
            f"adapt on as many transitions (K) as the model is trained with; set both to the same value"
        )


def run_settings(
    loop: LoopSettings, model: dict, data: dict, agent: AgentSettings, env_kwargs: dict | None = None
) -> dict[str, Any]:
    """All settings of a run, with defaults filled in (so the CLI's full config and an API call's overrides agree)."""
    data = {**_defaults(MetaDataModule.__init__, skip=("buffer_path",)), **data}
    return {
        "loop": dataclasses.asdict(loop),
        "model": {**_defaults(MetaDynamicsModule.__init__, skip=("obs_dim", "action_dim", "task_dim")), **model},
        "data": data,
        "agent": agent.as_config(),
        "env": dict(env_kwargs or {}),
    }


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
    defaults = json.loads(json.dumps(run_settings(LoopSettings(), {}, {}, AgentSettings())))
    # Agent groups of every version in one form (old planner/planner_options/context_size, planner defaults filled
    # in), each planner option its own entry, so that an old run resumes with the equivalent new settings.
    try:
        recorded["agent"] = _flat_agent(upgrade_agent_config(recorded.get("agent") or {}))
    except ValueError as err:
        raise ValueError(f"run config file {str(path)!r}: its agent settings cannot be read ({err})") from err
    new["agent"] = _flat_agent(upgrade_agent_config(new.get("agent") or {}))
    defaults["agent"] = _flat_agent(defaults["agent"])
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


def _flat_agent(agent: dict[str, Any]) -> dict[str, Any]:
    """An agent group with its planner spelled out: ``planner`` (the name) and ``planner.<option>`` entries."""
    flat = {k: v for k, v in agent.items() if k != "planner"}
    if isinstance(agent.get("planner"), dict):
        flat["planner"] = agent["planner"]["class_path"]
        flat.update({f"planner.{k}": v for k, v in agent["planner"].get("init_args", {}).items()})
    return flat


def _defaults(function: Callable[..., Any], skip: tuple[str, ...]) -> dict[str, Any]:
    """Default values of a function's keyword arguments (seeds excluded: the loop derives them from loop.seed)."""
    parameters = inspect.signature(function).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.default is not inspect.Parameter.empty and p.name not in (*skip, "seed")
    }

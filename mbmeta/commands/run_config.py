"""The settings a ``mbmeta train`` run saved beside its checkpoints, as defaults of the commands that use them.

``mbmeta evaluate`` and ``mbmeta transfer`` plan with the agent settings a model was trained with (read from the
run's ``config.json``) unless a ``--config`` file or ``--agent.*`` flag says otherwise, and they accept a
``mbmeta train`` YAML config as it is (its ``agent`` group and ``loop.family`` are used; the other groups only
describe training and are ignored).

Precedence, lowest first: :class:`AgentSettings` defaults < the run's ``config.json`` < ``--config`` files <
command-line flags. A run recorded by an older mbmeta (``planner`` + ``planner_options``, ``context_size``) is read
in today's form (:func:`~mbmeta.control.settings.upgrade_agent_config`).

A checkpoint without a ``mbmeta train`` run config (e.g. written by ``mbmeta fit``) is planned for with
:data:`LIGHT_AGENT` instead of the heavier :class:`AgentSettings` defaults (which plan ~5x more sequences per step),
with K (``context_length``) from the ``data`` group of the ``mbmeta fit`` run's ``config.yaml`` where there is one.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ArgumentParser, Namespace

from mbmeta.control.settings import AgentSettings, upgrade_agent_config
from mbmeta.planners.settings import cem
from mbmeta.runs.run_dir import CHECKPOINT_DIR, CONFIG_FILE

TRAIN_ONLY_GROUPS = ("loop", "model", "data", "trainer", "env_kwargs")
AGENT_FIELDS = tuple(f.name for f in dataclasses.fields(AgentSettings))

LIGHT_AGENT = AgentSettings(planner=cem(population=100, elites=10, iterations=3, alpha=0.1), horizon=20)
"""The agent of a checkpoint without a run config: ``configs/pendulum.yaml``'s planner (CEM 100 x 3, H = 20), which
plans 300 sequences per step instead of the defaults' 2000 (CEM 400 x 5)."""

FIT_CONFIG_FILE = "config.yaml"  # what LightningCLI saves in a `mbmeta fit` run directory


def add_train_config_groups(parser: ArgumentParser, uses: Mapping[str, str] | None = None) -> None:
    """Let ``--config`` take a ``mbmeta train`` YAML file: accept its training-only groups.

    Args:
        parser: the command's parser.
        uses: group -> what the command reads from it (for the help text); other groups are accepted and ignored.
    """
    uses = {"loop": "its 'family' is the default --family", **(uses or {})}
    for group in TRAIN_ONLY_GROUPS:
        parser.add_argument(
            f"--{group}",
            type=dict[str, Any] | None,
            default=None,
            help=f"the '{group}' group of a `mbmeta train` config, accepted so that one can be passed with --config"
            + (f"; {uses[group]}" if group in uses else " (not used here)"),
        )


def run_config(ckpt: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The ``config.json`` of the ``mbmeta train`` run a checkpoint belongs to, and its contents.

    Looks beside the checkpoint (``RUN/model.ckpt``) and, for ``RUN/checkpoints/iteration_NNN.ckpt``, in ``RUN``.

    Returns:
        ``(path, config)``, or None when the checkpoint is not in a run directory (e.g. written by ``mbmeta fit``).

    Raises:
        ValueError: the config file exists but is not a JSON object (names the file).
    """
    ckpt = Path(ckpt)
    directories = [ckpt.parent] + ([ckpt.parent.parent] if ckpt.parent.name == CHECKPOINT_DIR else [])
    for directory in directories:
        path = directory / CONFIG_FILE
        if path.is_file():
            try:
                config = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"run config {str(path)!r} is corrupt ({err})") from err
            if not isinstance(config, dict):
                raise ValueError(f"run config {str(path)!r} is corrupt: expected a JSON object")
            return path, config
    return None


def fit_run_config(ckpt: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The ``config.yaml`` of the ``mbmeta fit`` run a checkpoint belongs to, and its contents.

    Looks in the checkpoint's directory and up to three above it (``RUN/checkpoints/last.ckpt``, and Lightning's
    own ``RUN/<project>/<run id>/checkpoints/epoch=...ckpt``) for a LightningCLI config with a ``data`` group.

    Returns:
        ``(path, config)``, or None when there is none (or it cannot be read: the settings are optional).
    """
    ckpt = Path(ckpt)
    for directory in list(ckpt.parents)[:4]:
        path = directory / FIT_CONFIG_FILE
        if not path.is_file():
            continue
        try:
            config = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            return None
        if isinstance(config, dict) and isinstance(config.get("data"), dict) and "model" in config:
            return path, config
    return None


def fit_run_family(ckpt: str | Path) -> str | None:
    """The family of a ``mbmeta fit`` checkpoint: the one its buffer (``data.buffer_path``) records, or None."""
    from mbmeta.data.buffer import EpisodeBuffer

    found = fit_run_config(ckpt)
    buffer_path = found[1]["data"].get("buffer_path") if found else None
    if not isinstance(buffer_path, str) or not Path(buffer_path).is_file():
        return None
    return EpisodeBuffer.load(buffer_path).family or None


# The data settings that define what a model was trained on (segment shapes); fine-tuning must cut the same segments.
SEGMENT_FIELDS = ("context_length", "target_length", "pad_context", "min_context", "context_source")


def run_segment_settings(ckpt: str | Path) -> dict[str, Any]:
    """The segment settings (:data:`SEGMENT_FIELDS`) of the ``data`` group a checkpoint's run used, or ``{}``."""
    found = run_config(ckpt)
    data = found[1].get("data") if found is not None else None
    if not isinstance(data, dict):
        return {}
    return {k: data[k] for k in SEGMENT_FIELDS if k in data}


def run_agent_settings(ckpt: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The ``agent`` group a checkpoint's run was trained with, in today's form (known fields only), or None.

    Raises:
        ValueError: the recorded agent settings name an unknown planner or planner option (names the file).
    """
    found = run_config(ckpt)
    if found is None or not isinstance(found[1].get("agent"), dict):
        return None
    path, config = found
    try:
        agent = upgrade_agent_config(config["agent"])
    except ValueError as err:
        raise ValueError(f"run config {str(path)!r}: its agent settings cannot be read ({err})") from err
    return path, {k: v for k, v in agent.items() if k in AGENT_FIELDS}


def parse_with_run_defaults(
    parser: ArgumentParser, argv: Sequence[str], ckpts: Sequence[str] | str | None = None
) -> tuple[Namespace, Path | None]:
    """Parse ``argv`` with the agent settings of the first checkpoint's run as the defaults of ``--agent.*``.

    Args:
        parser: the command's parser (a :class:`~mbmeta.commands.agent_arguments.CommandParser`, so that a planner
            other than the run's gets its own defaults), with an ``agent`` group and a ``family`` argument.
        argv: the command line.
        ckpts: checkpoint path(s); default: the parsed ``ckpt`` argument.

    Returns:
        The parsed namespace (``family`` filled from a passed train config's ``loop.family`` when not given) and
        the run config file the agent defaults came from (a ``mbmeta fit`` run's ``config.yaml`` gives only K;
        None if there was none). Without a ``mbmeta train`` run config the defaults are :data:`LIGHT_AGENT`. With
        several checkpoints whose runs used different agent settings, warns that the first run's settings are used
        for all (one planner for the whole comparison).
    """
    cfg = parser.parse_args(list(argv))
    if ckpts is None:
        ckpts = cfg.ckpt
    ckpts = [ckpts] if isinstance(ckpts, str) else list(ckpts or ())
    if not ckpts:  # nothing to read defaults from (e.g. ``mbmeta evaluate --policy``)
        return _with_config_family(cfg), None
    found = run_agent_settings(ckpts[0])
    if found is None:
        light = {k: v for k, v in LIGHT_AGENT.as_config().items() if k in AGENT_FIELDS}
        fitted = fit_run_config(ckpts[0])
        context_length = fitted[1]["data"].get("context_length") if fitted else None
        if isinstance(context_length, int) and not isinstance(context_length, bool):
            light["context_length"] = context_length
        parser.set_defaults({f"agent.{k}": v for k, v in light.items()})
        return _with_config_family(parser.parse_args(list(argv))), fitted[0] if fitted else None
    source, agent = found
    for other in ckpts[1:]:
        theirs = run_agent_settings(other)
        if theirs is not None and AgentSettings.from_config(theirs[1]) != AgentSettings.from_config(agent):
            warnings.warn(
                f"{theirs[0]} was trained with other agent settings than {source}; every checkpoint is evaluated "
                "with the first run's (override with --agent.*)",
                UserWarning,
                stacklevel=2,
            )
    parser.set_defaults({f"agent.{k}": v for k, v in agent.items()})
    return _with_config_family(parser.parse_args(list(argv))), source


def _with_config_family(cfg: Namespace) -> Namespace:
    """Use a passed train config's ``loop.family`` when ``--family`` was not given explicitly."""
    loop = cfg.get("loop")
    if isinstance(loop, dict) and loop.get("family") and cfg.get("family") is None:
        cfg.family = loop["family"]
    return cfg

"""The ``mbmeta`` command: a small dispatcher over subcommands.

Each subcommand is a function ``run(argv) -> exit code`` that parses its own arguments (so ``mbmeta fit`` can
hand its arguments to ``LightningCLI`` untouched). Only subcommands that are built are listed.
"""

from __future__ import annotations

import ctypes.util
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: its one-line help and where its ``run(argv) -> int`` lives (imported lazily)."""

    help: str
    target: str  # "module:function"

    def load(self) -> Callable[[list[str]], int]:
        """Import and return the subcommand's entry function."""
        module, _, func = self.target.partition(":")
        return getattr(importlib.import_module(module), func)


SUBCOMMANDS: dict[str, Subcommand] = {
    "quickstart": Subcommand(
        "Train none/context/oracle on the Pendulum family (small budget) and compare them on held-out tasks.",
        "mbmeta.commands.quickstart:run",
    ),
    "envs": Subcommand("List the task families, their parameters and train/test splits.", "mbmeta.commands.envs:run"),
    "transfer": Subcommand(
        "Fine-tune a meta-trained model on 1/5/20 episodes of a new task; compare with zero-shot and scratch.",
        "mbmeta.commands.transfer:run",
    ),
    "juggler-video": Subcommand(
        "Film the scripted Juggler controller (balance or bounce) as a GIF.", "mbmeta.commands.juggler_video:run"
    ),
    "collect": Subcommand(
        "Record episodes of a policy (random, scripted, your own, or a checkpoint's agent) into a buffer for fit.",
        "mbmeta.commands.collect:run",
    ),
    "fit": Subcommand("Fit a meta-dynamics model on a saved episode buffer (LightningCLI).", "mbmeta.commands.fit:run"),
    "train": Subcommand(
        "Model-based meta-RL loop: collect on train tasks, fit, collect with the adapting MPC agent (resumable).",
        "mbmeta.commands.train:run",
    ),
    "evaluate": Subcommand(
        "Evaluate trained agents on held-out tasks: returns, prediction error, videos (JSON, CSV, PNG, GIF).",
        "mbmeta.commands.evaluate:run",
    ),
    "baseline": Subcommand(
        "Model-free baseline (stable-baselines3 PPO/SAC), multi-task or from scratch, with its learning curve.",
        "mbmeta.commands.baseline:run",
    ),
    "sweep": Subcommand(
        "Train and evaluate an experiment's methods × seeds side by side (resumable); merge them into one table.",
        "mbmeta.commands.sweep:run",
    ),
}


# Lightning logs its informational messages through this logger (``rank_zero_info``).
LIGHTNING_INFO_LOGGER = "pytorch_lightning.utilities.rank_zero"


def _is_not_a_tip(record: logging.LogRecord) -> bool:
    """False for Lightning's product tips (one per ``Trainer``, i.e. one per fitting iteration of ``mbmeta train``)."""
    return not str(record.msg).startswith("💡 Tip")


def quiet_lightning_tips() -> None:
    """Drop Lightning's product tips from the command's output; every other Lightning message is kept (idempotent)."""
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if _is_not_a_tip not in logger.filters:
        logger.addFilter(_is_not_a_tip)


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        "usage: mbmeta <command> [options]",
        "",
        "mbmeta: model-based meta-reinforcement learning with learned dynamics.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {sub.help}" for name, sub in SUBCOMMANDS.items()),
        "",
        "`mbmeta <command> --help` describes a command's options.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mbmeta`` console script and ``python -m mbmeta``.

    Args:
        argv: arguments after the program name (defaults to ``sys.argv[1:]``).

    Returns:
        The process exit code.
    """
    # Offscreen rendering and offline W&B unless the user chose otherwise (no display, account or network needed).
    if "MUJOCO_GL" not in os.environ and ctypes.util.find_library("EGL"):
        os.environ["MUJOCO_GL"] = "egl"  # without EGL, leave MuJoCo's choice: only rendering needs a backend
    os.environ.setdefault("WANDB_MODE", "offline")
    quiet_lightning_tips()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from mbmeta import __version__

        print(f"mbmeta {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        Console(stderr=True).print(
            f"[red]mbmeta: unknown command {name!r}[/red]; valid commands are: {', '.join(SUBCOMMANDS)}",
            highlight=False,
        )
        return 2
    result = SUBCOMMANDS[name].load()(rest)
    return int(result or 0)

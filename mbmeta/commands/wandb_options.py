"""The ``wandb`` group of the commands that train or evaluate: project, entity, mode, tags, group, name.

``--wandb.project P --wandb.entity E --wandb.mode online --wandb.tags '[a, b]'`` on ``train``, ``evaluate``,
``transfer``, ``quickstart``, ``fit`` and ``baseline``. Logging stays offline unless ``--wandb.mode online`` or
``WANDB_MODE=online`` (then ``wandb login`` first); offline runs are written under the command's output directory
and uploaded later with ``wandb sync`` (each command prints the line to run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ArgumentParser

MODE_VARIABLE = "WANDB_MODE"


@dataclass
class WandbSettings:
    """Weights & Biases logging of the run.

    Args:
        project: W&B project; default: the command's (``mbmeta``; quickstart: ``mbmeta-quickstart``).
        entity: W&B user or team; default: your default entity.
        mode: ``offline`` (written locally, ``wandb sync`` uploads it), ``online`` (needs ``wandb login``) or
            ``disabled``; default: ``WANDB_MODE``, else offline.
        tags: tags of the run, e.g. ``[pendulum, baseline]``.
        group: W&B group; default: the run directory's name (``train``: that name and the run's W&B id, which ties
            the restarts of a resumed run together), the output directory's for ``evaluate`` / ``transfer``.
        name: W&B run name; default: the run directory's name (``evaluate`` / ``transfer``: the command and the
            output directory's name).
        log_model: online, log the final checkpoint as a W&B model artifact (``train``, ``fit``, ``baseline``).
    """

    project: str | None = None
    entity: str | None = None
    mode: Literal["offline", "online", "disabled"] | None = None
    tags: list[str] | None = None
    group: str | None = None
    name: str | None = None
    log_model: bool = True

    def resolved_mode(self) -> str:
        """The mode W&B will run in: the given one, else ``WANDB_MODE``, else offline."""
        return self.mode or os.environ.get(MODE_VARIABLE) or "offline"

    def init_kwargs(self, **defaults: Any) -> dict[str, Any]:
        """``wandb.init`` / ``WandbLogger`` arguments: the given settings over the command's ``defaults``.

        Only settings that were given (not None) are included, so a command's own defaults and ``WANDB_MODE``
        apply otherwise; ``log_model`` is not a ``wandb.init`` argument and is left out.
        """
        given = {
            "project": self.project,
            "entity": self.entity,
            "mode": self.mode,
            "tags": list(self.tags) if self.tags is not None else None,
            "group": self.group,
            "name": self.name,
        }
        return {**defaults, **{k: v for k, v in given.items() if v is not None}}


def add_wandb_arguments(parser: ArgumentParser) -> None:
    """Add the ``--wandb.*`` group (:class:`WandbSettings`) to a command's parser."""
    parser.add_class_arguments(WandbSettings, "wandb", instantiate=False)


def wandb_settings(cfg: Any) -> WandbSettings:
    """The :class:`WandbSettings` of a parsed command line (its ``wandb`` group)."""
    group = cfg.get("wandb")
    return WandbSettings(**(group.as_dict() if group is not None else {}))


def sync_hint(save_dir: str | Path, settings: WandbSettings | None = None) -> str | None:
    """The line telling how to upload an offline W&B run written under ``save_dir``; None when not offline."""
    mode = (settings or WandbSettings()).resolved_mode()
    if mode not in ("offline", "dryrun"):
        return None
    return f"W&B ran offline; to upload: wandb sync {Path(save_dir) / 'wandb'}/offline-run-*"

"""The data a checkpoint of ``mbmeta train`` was fitted on, read back from its run directory.

A run directory holds every collected episode in ``buffer.npz`` and, in ``state.json``, which checkpoint was
fitted on how many of them: a kept checkpoint records its episodes; the last committed one was fitted before its
iteration collected ``loop.episodes_per_iteration`` more (unknown with ``loop.min_transitions``: keep checkpoints).
Reading takes no lock, so it works beside a running job.
"""

from __future__ import annotations

from pathlib import Path

from mbmeta.control.latent_range import measure_latent_range
from mbmeta.control.settings import AgentSettings
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.models.dynamics import MetaDynamicsModel
from mbmeta.models.latent_range import LatentRange
from mbmeta.runs.run_dir import BUFFER_FILE, STATE_FILE, RunDirectory, file_sha256


def training_episodes(checkpoint: str | Path) -> tuple[Path, int]:
    """The run directory of a ``mbmeta train`` checkpoint and the number of its episodes the model was fitted on.

    ``checkpoint`` is the run's ``model.ckpt`` or one of its ``checkpoints/iteration_*.ckpt``; it is matched by
    content (SHA-256) against the checkpoints ``state.json`` records.

    Raises:
        ValueError: no run directory (``state.json`` beside or above the checkpoint), or the file is none of the
            run's committed checkpoints (named).
    """
    path = Path(checkpoint)
    candidates = [path.parent, path.parent.parent]
    run_dir = next((d for d in candidates if (d / STATE_FILE).is_file() and (d / BUFFER_FILE).is_file()), None)
    if run_dir is None:
        raise ValueError(
            f"{path}: no run directory with {STATE_FILE} and {BUFFER_FILE} beside or above it, so its training data "
            "are unknown (only checkpoints of mbmeta train have them)"
        )
    run = RunDirectory(run_dir)  # read only: no lock taken, the directory left as it is
    state = run.load_state()
    digest = file_sha256(path)
    kept = next((k for k in state.kept if k.sha256 == digest), None)
    if kept is not None:
        return run_dir, kept.episodes
    if state.checkpoint is not None and state.checkpoint_sha256 == digest:
        try:
            loop = run.read_config()["loop"]
            per_iteration, min_transitions = int(loop["episodes_per_iteration"]), int(loop.get("min_transitions", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"{run.config_path}: loop.episodes_per_iteration cannot be read ({err})") from err
        if min_transitions:
            raise ValueError(
                f"{path}: its run collected a varying number of episodes per iteration (loop.min_transitions "
                f"{min_transitions}), so only kept checkpoints (loop.keep_checkpoints_every) record their training data"
            )
        return run_dir, state.episodes - per_iteration
    raise ValueError(
        f"{path} is none of the committed checkpoints of {run_dir} (its content matches no SHA-256 in {STATE_FILE})"
    )


def training_latent_range(checkpoint: str | Path, model: MetaDynamicsModel, context_length: int) -> LatentRange:
    """The range of ``model``'s task code on the episodes its checkpoint was fitted on (:func:`training_episodes`)."""
    run_dir, episodes = training_episodes(checkpoint)
    buffer = EpisodeBuffer.load(run_dir / BUFFER_FILE)
    if buffer.num_episodes < episodes:
        raise ValueError(f"{run_dir / BUFFER_FILE} holds {buffer.num_episodes} episodes, the checkpoint was fitted on "
                         f"{episodes}")  # fmt: skip
    return measure_latent_range(model, buffer.first(episodes), context_length)


def agent_latent_range(checkpoint: str | Path, model: MetaDynamicsModel, agent: AgentSettings) -> LatentRange | None:
    """The ``latent_range`` that :func:`~mbmeta.control.factory.make_agent` needs for ``agent``.

    The training range of ``model``'s task code when ``agent.bound_latent`` (:func:`training_latent_range`), else None.
    """
    if not agent.bound_latent:
        return None
    return training_latent_range(checkpoint, model, agent.context_length)

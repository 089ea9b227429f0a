"""The run directory of ``mbmeta train``: its files, the commit record, the lock and atomic publishing.

A run directory holds::

    config.json                     settings of the run (a resumed run must use the same ones)
    wandb_id                        the W&B run id (online: a resumed run logs into the same W&B run)
    buffer.npz                      every episode collected so far
    checkpoints/iteration_NNN.ckpt  the model fitted in the last completed iteration
    model.ckpt                      the same file under a stable name (a hard link or copy)
    state.json                      the commit record: iterations completed, episodes in the buffer, checkpoint

Every file is written atomically (temporary sibling, flush, fsync, rename), and a step is committed only when
``state.json`` is rewritten after its buffer and checkpoint are on disk. On resume, :meth:`RunDirectory.resume`
drops buffer episodes beyond the committed count (written by a step that did not complete) and repairs a
``model.ckpt`` that a kill left unpublished. Nothing here imports Lightning.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mbmeta.data.atomic import atomic_write, fsync_directory
from mbmeta.data.buffer import EpisodeBuffer

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
BUFFER_FILE = "buffer.npz"
CHECKPOINT_FILE = "model.ckpt"
STATE_FILE = "state.json"
WANDB_ID_FILE = "wandb_id"
LOCK_FILE = ".lock"


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


class RunInUseError(RuntimeError):
    """Another process is running in the same run directory."""


class RunLock:
    """An exclusive lock on a run directory for the life of a run (released by the OS if the process dies).

    Two processes running the same directory would interleave their writes; the second one fails at once instead.
    Where ``fcntl`` is missing (Windows) the lock is a no-op.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
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


class RunDirectory:
    """One ``mbmeta train`` run on disk; use as a context manager to hold its lock.

    Entering creates the directory, takes the lock (:class:`RunInUseError` if another process holds it) and deletes
    temporaries a killed writer left behind.

    Args:
        path: the run directory.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.buffer_path = self.path / BUFFER_FILE
        self.checkpoint_path = self.path / CHECKPOINT_FILE
        self.state_path = self.path / STATE_FILE
        self.config_path = self.path / CONFIG_FILE
        self.checkpoint_dir = self.path / CHECKPOINT_DIR
        self._lock = RunLock(self.path)

    def __enter__(self) -> RunDirectory:
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir.mkdir(exist_ok=True)
        self._lock.__enter__()
        for directory in (self.path, self.checkpoint_dir):  # the lock is held, so no temporary is in use
            for stale in directory.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)

    @property
    def name(self) -> str:
        """The directory's name (the W&B run name)."""
        return self.path.name

    def load_state(self) -> LoopState:
        """The committed state (fresh if nothing was committed); ValueError names a corrupt file."""
        return LoopState.load(self.state_path)

    def iteration_checkpoint(self, iteration: int) -> Path:
        """Where the checkpoint fitted in ``iteration`` (1-based) is written."""
        return self.checkpoint_dir / f"iteration_{iteration:03d}.ckpt"

    def write_config(self, config: dict[str, Any]) -> None:
        """Record the run's settings (atomically)."""
        atomic_write(self.config_path, lambda f: f.write(json.dumps(config, indent=2).encode()))

    def resume(self, state: LoopState, log: Callable[[str], None]) -> tuple[EpisodeBuffer, Path | None]:
        """The committed buffer and checkpoint of a run with ``state.episodes > 0``.

        Drops episodes an interrupted step appended, republishes ``model.ckpt`` from the committed iteration
        checkpoint and deletes any other iteration checkpoint.

        Returns:
            The buffer, and the committed checkpoint (None before the first fit).

        Raises:
            ValueError: the buffer holds fewer episodes than committed, or the committed checkpoint is missing.
            BufferFormatError: the buffer file is damaged (names it).
        """
        buffer = EpisodeBuffer.load(self.buffer_path)
        if buffer.num_episodes < state.episodes:
            raise ValueError(
                f"{self.buffer_path} holds {buffer.num_episodes} episodes but the loop state {self.state_path} "
                f"records {state.episodes}: the buffer was replaced or truncated outside mbmeta"
            )
        if buffer.num_episodes > state.episodes:  # appended by a step that did not complete: redo that step
            log(f"dropping {buffer.num_episodes - state.episodes} episodes of an interrupted iteration")
            buffer = buffer.first(state.episodes)
        if state.iteration == 0:
            return buffer, None
        committed = self.path / (state.checkpoint or CHECKPOINT_FILE)
        if not committed.is_file():
            raise ValueError(
                f"the loop state {self.state_path} records {state.iteration} completed iterations but their "
                f"checkpoint {committed} is missing"
            )
        if committed != self.checkpoint_path:
            publish(committed, self.checkpoint_path)  # repairs a kill between the commit and the publish
        self._prune_checkpoints(keep=committed)
        return buffer, committed

    def commit(self, buffer: EpisodeBuffer, iteration: int, checkpoint: Path | None = None) -> LoopState:
        """Save the buffer, then the state (the commit point), then publish the checkpoint as ``model.ckpt``."""
        buffer.save(self.buffer_path)
        relative = None if checkpoint is None else str(checkpoint.relative_to(self.path))
        state = LoopState(iteration=iteration, episodes=buffer.num_episodes, checkpoint=relative)
        state.save(self.state_path)
        if checkpoint is not None:
            publish(checkpoint, self.checkpoint_path)
            self._prune_checkpoints(keep=checkpoint)
        return state

    def wandb_options(self, mode: str | None = None) -> dict[str, str]:
        """See :func:`wandb_resume_options`."""
        return wandb_resume_options(self.path, mode)

    def _prune_checkpoints(self, keep: Path) -> None:
        """Delete iteration checkpoints other than ``keep`` (older ones, or one left by an uncommitted iteration)."""
        for path in self.checkpoint_dir.glob("iteration_*.ckpt"):
            if path.resolve() != keep.resolve():
                path.unlink(missing_ok=True)

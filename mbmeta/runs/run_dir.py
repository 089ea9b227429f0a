"""The run directory of ``mbmeta train``: its files, the commit record, the lock and atomic publishing.

A run directory holds::

    config.json                     settings of the run (a resumed run must use the same ones)
    wandb_id                        the W&B run id (online: a resumed run logs into the same W&B run)
    buffer.npz                      every episode collected so far
    checkpoints/iteration_NNN.ckpt  the model fitted in the last completed iteration (and, with
                                    ``loop.keep_checkpoints_every``, those of every k-th iteration)
    model.ckpt                      the same file under a stable name (a hard link or copy)
    state.json                      the commit record: iterations completed, episodes in the buffer, checkpoint,
                                    the digest of the committed episodes and the SHA-256 of the checkpoint; the
                                    kept checkpoints with their SHA-256 and what they were fitted on
    software.json                   the software versions of each start and resume, with the iteration it began at

Every file is written atomically (temporary sibling, flush, fsync, rename; mode from the umask), and a step is
committed only when ``state.json`` is rewritten after its buffer and checkpoint are on disk. A directory is either
absent (no run) or committed (``state.json`` written before any data): anything else is refused, never
overwritten. On resume, :meth:`RunDirectory.resume` verifies the digests, drops buffer episodes beyond the committed
count (written by a step that did not complete) and repairs a ``model.ckpt`` that a kill left unpublished. Nothing
here imports Lightning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mbmeta.data.atomic import atomic_write, fsync_directory
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.provenance import describe_versions, version_changes

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
BUFFER_FILE = "buffer.npz"
CHECKPOINT_FILE = "model.ckpt"
STATE_FILE = "state.json"
WANDB_ID_FILE = "wandb_id"
SOFTWARE_FILE = "software.json"
LOCK_FILE = ".lock"
LOCK_PATIENCE = 1.0  # seconds RunLock retries a held lock before it gives up


@dataclasses.dataclass(frozen=True)
class KeptCheckpoint:
    """A checkpoint kept for good (``loop.keep_checkpoints_every``): a point of a learning curve.

    Attributes:
        iteration: the iteration that fitted it (1-based).
        checkpoint: its path relative to the run directory.
        sha256: SHA-256 of the file when it was committed.
        episodes: episodes the model was fitted on (the buffer before that iteration's collection).
        transitions: transitions (environment steps) the model was fitted on.
    """

    iteration: int
    checkpoint: str
    sha256: str
    episodes: int
    transitions: int

    @classmethod
    def from_record(cls, record: Any, where: str) -> KeptCheckpoint:
        """Read one ``kept`` entry of a state file.

        Raises:
            ValueError: the entry is not an object with these fields and types (``where`` names the file).
        """
        try:
            kept = cls(**record)
        except TypeError as err:
            raise ValueError(f"{where} is corrupt: kept checkpoint {record!r} ({err})") from err
        for name in ("iteration", "episodes", "transitions"):
            value = getattr(kept, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where} is corrupt: kept checkpoint {name} is {value!r}, not an int >= 0")
        for name in ("checkpoint", "sha256"):
            if not isinstance(getattr(kept, name), str):
                raise ValueError(f"{where} is corrupt: kept checkpoint {name} is {getattr(kept, name)!r}")
        return kept


@dataclasses.dataclass
class LoopState:
    """Progress of a run: the commit record, rewritten atomically after every completed step.

    Attributes:
        iteration: iterations completed (0 before the first fit).
        episodes: episodes in the buffer when the state was saved; extra episodes found on resume were written by
            a step that did not complete and are dropped (then collected again).
        checkpoint: the completed iteration's checkpoint, relative to the run directory (None before the first fit).
        kept: the checkpoints kept for good, by iteration (written only when there are some, so a run that keeps
            none has the same state file as before the setting existed).
    """

    iteration: int = 0
    episodes: int = 0
    checkpoint: str | None = None
    buffer_digest: str | None = None
    checkpoint_sha256: str | None = None
    kept: tuple[KeptCheckpoint, ...] = ()

    @classmethod
    def load(cls, path: Path) -> LoopState:
        """Read the state file.

        Raises:
            FileNotFoundError: there is no state file.
            ValueError: the path is not a file, or the file is unreadable or corrupt (names the file).
        """
        ways_out = "restore it from a backup, or move the run directory aside and start a new run"
        if not path.exists():
            raise FileNotFoundError(f"loop state file {str(path)!r} does not exist")
        if not path.is_file():
            raise ValueError(f"loop state file {str(path)!r} is not a file; {ways_out}")
        try:
            record = json.loads(path.read_text())
            state = cls(**record)
        except PermissionError:
            raise
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError, OSError) as err:
            raise ValueError(f"loop state file {str(path)!r} is corrupt ({err}); {ways_out}") from err
        if not isinstance(state.kept, list | tuple):
            raise ValueError(f"loop state file {str(path)!r} is corrupt: kept is {state.kept!r}, not a list")
        state.kept = tuple(KeptCheckpoint.from_record(k, f"loop state file {str(path)!r}") for k in state.kept)
        for name in ("iteration", "episodes"):
            value = getattr(state, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"loop state file {str(path)!r} is corrupt: {name} is {value!r}, not an int >= 0")
        for name in ("checkpoint", "buffer_digest", "checkpoint_sha256"):
            value = getattr(state, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"loop state file {str(path)!r} is corrupt: {name} is {value!r}")
        return state

    def save(self, path: Path) -> None:
        """Write the state atomically."""
        record = dataclasses.asdict(self)
        if not self.kept:
            del record["kept"]
        atomic_write(path, lambda f: f.write(json.dumps(record).encode()))


class RunInUseError(RuntimeError):
    """Another process is running in the same run directory."""


class RunLock:
    """An exclusive lock on a run directory for the life of a run (released by the OS if the process dies).

    Two processes running the same directory would interleave their writes; the second one fails instead (after
    :data:`LOCK_PATIENCE` seconds of retries, so a status probe holding the lock for an instant is never taken for
    another run). Where ``fcntl`` is missing (Windows) the lock is a no-op.

    Args:
        run_dir: the directory.
        name: the lock file's name in it (another name locks something else in the same directory).
    """

    def __init__(self, run_dir: Path, name: str = LOCK_FILE) -> None:
        self.path = run_dir / name
        self._file: Any = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:
            return self
        self._file = open(self.path, "a+")  # noqa: SIM115 - held open for the whole run
        deadline = time.monotonic() + LOCK_PATIENCE
        while True:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        self._file.close()
        self._file = None
        raise RunInUseError(
            f"{self.path.parent} is in use by another mbmeta process; wait for it or use another loop.run_dir"
        )

    @staticmethod
    def in_use(run_dir: Path, name: str = LOCK_FILE) -> bool:
        """Whether a live process holds the lock ``name`` in ``run_dir`` (a paused process still holds it).

        Probes with a shared lock released at once; never creates the lock file. False where ``fcntl`` is missing.
        """
        try:
            import fcntl
        except ImportError:
            return False
        try:
            descriptor = os.open(run_dir / name, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)  # closing releases the probe's lock
        return False

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def publish(source: Path, target: Path) -> None:
    """Make ``target`` an atomic hard link to ``source`` (a copy where hard links are not supported); idempotent."""
    if target.exists() and os.path.samefile(source, target):
        return  # already published (renaming a hard link onto itself would leave the temporary link behind)
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

    def data_files(self) -> list[Path]:
        """The files only a committed run may hold: the buffer and the checkpoints."""
        found = [p for p in (self.buffer_path, self.checkpoint_path) if p.exists()]
        return found + sorted(self.checkpoint_dir.glob("iteration_*.ckpt"))

    def load_state(self) -> LoopState:
        """The committed state: a fresh one if the directory holds no run, else the validated ``state.json``.

        A run directory is either absent (no state file and no data files) or committed (a valid state file; beside
        a state with collected episodes, a valid ``config.json``). Anything in between is refused, never overwritten.

        Raises:
            ValueError: names the file that is missing, not a file, unreadable or corrupt, and the ways out.
        """
        ways_out = "restore it from a backup, or move the run directory aside and start a new run"
        if not self.state_path.exists():
            data = self.data_files()
            if data:
                names = ", ".join(str(p.relative_to(self.path)) for p in data)
                raise ValueError(
                    f"{self.path} holds {names} but no {STATE_FILE}, so what was committed is unknown and mbmeta "
                    f"will not overwrite it: {ways_out}"
                )
            return LoopState()
        state = LoopState.load(self.state_path)
        for checkpoint in (state.checkpoint, *(k.checkpoint for k in state.kept)):
            if checkpoint is not None and not (self.path / checkpoint).resolve().is_relative_to(self.path.resolve()):
                raise ValueError(
                    f"loop state file {str(self.state_path)!r} is corrupt: checkpoint {checkpoint!r} lies "
                    "outside the run directory"
                )
        if state.episodes > 0:
            self.read_config()
        return state

    def read_config(self) -> dict[str, Any]:
        """The recorded settings; ValueError if ``config.json`` is missing, not a file or not a JSON object."""
        where = f"run config file {str(self.config_path)!r}"
        ways_out = "restore it, or move the run directory aside and start a new run"
        if not self.config_path.is_file():
            raise ValueError(f"{where} is missing beside a committed run, so its settings are unknown: {ways_out}")
        try:
            config = json.loads(self.config_path.read_text())
        except PermissionError:
            raise
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
            raise ValueError(f"{where} is corrupt ({err}): {ways_out}") from err
        if not isinstance(config, dict):
            raise ValueError(f"{where} is corrupt: it holds a {type(config).__name__}, not a JSON object: {ways_out}")
        return config

    def start(self, config: dict[str, Any]) -> LoopState:
        """Begin a run (or restart one that committed no episodes): record the settings, then an empty state.

        From here on the directory is a committed run, so data written by the first step can never be mistaken
        for data without a state.
        """
        self.write_config(config)
        state = LoopState()
        state.save(self.state_path)
        return state

    def record_software(self, iteration: int, versions: dict[str, str], log: Callable[[str], None]) -> None:
        """Append this start's (or resume's) software versions to ``software.json``; log any change since the last.

        A damaged ``software.json`` is left as it is (it is provenance, not run data): the versions are only logged.
        """
        path = self.path / SOFTWARE_FILE
        log(f"software: {describe_versions(versions)}")
        entries: list[Any] = []
        if path.exists():
            try:
                entries = json.loads(path.read_text())
                if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                    raise ValueError("not a list of objects")
            except (OSError, ValueError) as err:
                log(f"warning: {path} is unreadable ({err}); left as it is, these versions are not recorded")
                return
        if entries and isinstance(entries[-1].get("versions"), dict):
            changes = version_changes(entries[-1]["versions"], versions)
            if changes:
                log(f"warning: this run continues under other software than its last start: {'; '.join(changes)}")
        entries.append({"iteration": iteration, "versions": versions})
        atomic_write(path, lambda f: f.write(json.dumps(entries, indent=2).encode()))

    def iteration_checkpoint(self, iteration: int) -> Path:
        """Where the checkpoint fitted in ``iteration`` (1-based) is written."""
        return self.checkpoint_dir / f"iteration_{iteration:03d}.ckpt"

    def write_config(self, config: dict[str, Any]) -> None:
        """Record the run's settings (atomically)."""
        atomic_write(self.config_path, lambda f: f.write(json.dumps(config, indent=2).encode()))

    def resume(self, state: LoopState, log: Callable[[str], None]) -> tuple[EpisodeBuffer, Path | None]:
        """The committed buffer and checkpoint of a run with ``state.episodes > 0``.

        Drops episodes an interrupted step appended, republishes ``model.ckpt`` from the committed iteration
        checkpoint and deletes any other iteration checkpoint but the kept ones.

        Returns:
            The buffer, and the committed checkpoint (None before the first fit).

        Raises:
            ValueError: the buffer is missing or holds fewer episodes than committed, or the committed checkpoint is
                missing.
            BufferFormatError: the buffer file is damaged (names it).
        """
        ways_out = "restore it from a backup, or move the run directory aside and start a new run"
        if not self.buffer_path.is_file():  # e.g. a checkout on another machine: buffers are not committed
            raise ValueError(
                f"the loop state {self.state_path} records {state.episodes} collected episodes but the replay buffer "
                f"{self.buffer_path} is missing, so the run cannot resume; {ways_out}"
            )
        buffer = EpisodeBuffer.load(self.buffer_path)
        if buffer.num_episodes < state.episodes:
            raise ValueError(
                f"{self.buffer_path} holds {buffer.num_episodes} episodes but the loop state {self.state_path} "
                f"records {state.episodes}: the buffer was replaced or truncated outside mbmeta; {ways_out}"
            )
        if state.buffer_digest is not None and buffer.digest(state.episodes) != state.buffer_digest:
            raise ValueError(
                f"{self.buffer_path}: its first {state.episodes} episodes differ from what was committed (digest "
                f"mismatch): the file was modified or damaged after it was written; {ways_out}"
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
                f"checkpoint {committed} is missing; {ways_out}"
            )
        if state.checkpoint_sha256 is not None and file_sha256(committed) != state.checkpoint_sha256:
            raise ValueError(
                f"checkpoint {str(committed)!r} differs from the one committed (SHA-256 mismatch): it was modified "
                f"or damaged after it was written; {ways_out}"
            )
        if committed != self.checkpoint_path:
            publish(committed, self.checkpoint_path)  # repairs a kill between the commit and the publish
        self._prune_checkpoints(committed, state.kept)
        return buffer, committed

    def commit(
        self, buffer: EpisodeBuffer, iteration: int, checkpoint: Path | None = None, *, keep: bool = False
    ) -> LoopState:
        """Save the buffer, then the state (the commit point), then publish the checkpoint as ``model.ckpt``.

        Args:
            buffer: every episode collected so far.
            iteration: the iteration this commit completes (0: the initial data).
            checkpoint: the checkpoint fitted in this iteration (None for iteration 0).
            keep: keep the checkpoint for good: it is recorded in the state's ``kept`` list (with its SHA-256 and
                the episodes and transitions of the previous commit, which it was fitted on) and never pruned.
        """
        previous = LoopState.load(self.state_path) if self.state_path.is_file() else LoopState()
        buffer.save(self.buffer_path)
        state = LoopState(
            iteration=iteration, episodes=buffer.num_episodes, buffer_digest=buffer.digest(), kept=previous.kept
        )
        if checkpoint is not None:
            state.checkpoint = str(checkpoint.relative_to(self.path))
            state.checkpoint_sha256 = file_sha256(checkpoint)
            if keep:
                fitted = previous.episodes, int(buffer.episode_starts[previous.episodes])  # what it was fitted on
                record = KeptCheckpoint(iteration, state.checkpoint, state.checkpoint_sha256, *fitted)
                state.kept = (*(k for k in previous.kept if k.iteration != iteration), record)
        state.save(self.state_path)
        if checkpoint is not None:
            publish(checkpoint, self.checkpoint_path)
            self._prune_checkpoints(checkpoint, state.kept)
        return state

    def wandb_options(self, mode: str | None = None) -> dict[str, str]:
        """See :func:`wandb_resume_options`."""
        return wandb_resume_options(self.path, mode)

    def _prune_checkpoints(self, committed: Path, kept: tuple[KeptCheckpoint, ...] = ()) -> None:
        """Delete iteration checkpoints but the committed and the kept ones (older ones, or an uncommitted one)."""
        keep = {committed.resolve(), *((self.path / k.checkpoint).resolve() for k in kept)}
        for path in self.checkpoint_dir.glob("iteration_*.ckpt"):
            if path.resolve() not in keep:
                path.unlink(missing_ok=True)

"""Atomic file writes: a crash or error at any point leaves the old file or the new one, never a partial file."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write_csv(path: str | os.PathLike[str], columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``rows`` as a CSV table with a header of ``columns`` (Unix line ends), atomically; returns the path."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, lambda f: f.write(text.getvalue().encode()))


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Write ``path`` through ``write(binary_file)``: into a temporary sibling, flushed and fsynced, then renamed.

    Args:
        path: the destination (its directory must exist).
        write: writes the whole content to the open binary file it is given.

    Returns:
        The path written.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        apply_umask(tmp)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(directory)
    return path


def apply_umask(path: str | os.PathLike[str]) -> None:
    """Give a file made by ``tempfile.mkstemp`` (always 0600) the mode any other tool would: 0666 minus the umask.

    Shared run directories must stay readable by others (an evaluation by another user), as a file written with
    ``open`` would be.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Persist a rename in ``directory`` (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""Rich progress display and per-episode logging for collection and evaluation loops."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pytorch_lightning.loggers import Logger, WandbLogger
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mbmeta.control.collection import EpisodeStats


@contextmanager
def episode_progress(description: str, total: int) -> Iterator[Callable[[EpisodeStats], None]]:
    """A rich progress bar over ``total`` episodes; yields the ``on_episode`` callback that advances it.

    The bar shows the running mean return. Rich draws it only on a terminal, so logs and CI output stay clean.
    """
    returns: list[float] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[mean]}"), transient=True) as progress:
        bar = progress.add_task(description, total=total, mean="")

        def on_episode(stats: EpisodeStats) -> None:
            returns.append(stats.episode_return)
            progress.update(bar, advance=1, mean=f"mean return {sum(returns) / len(returns):.1f}")

        yield on_episode


def log_episode_table(logger: Logger | bool | None, key: str, episodes: Sequence[EpisodeStats], step: int) -> None:
    """Log one row per episode (task, return, length, terminated, success) as a W&B table, if W&B is the logger."""
    if not isinstance(logger, WandbLogger) or not episodes:
        return
    names = list(episodes[0].task)
    rows = [[step, *(e.task[n] for n in names), e.episode_return, e.length, e.terminated, e.success] for e in episodes]
    columns = ["iteration", *names, "return", "length", "terminated", "success"]
    logger.log_table(key=key, columns=columns, data=rows)

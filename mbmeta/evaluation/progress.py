"""Rich progress display and per-episode logging for collection and evaluation loops."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pytorch_lightning.loggers import Logger, WandbLogger
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mbmeta.control.collection import EpisodeStats


@contextmanager
def episode_progress(
    description: str, total: int, *, log_lines: int = 0, console: Console | None = None
) -> Iterator[Callable[[EpisodeStats], None]]:
    """A rich progress bar over ``total`` episodes; yields the ``on_episode`` callback that advances it.

    The bar shows the running mean return. Rich draws it only on a terminal, so logs and CI output stay clean; there
    (output to a file or pipe) up to ``log_lines`` evenly spaced plain lines report the progress instead.
    """
    console = console or Console()
    returns: list[float] = []
    start = time.perf_counter()
    every = max(1, -(-total // log_lines)) if log_lines > 0 and not console.is_terminal else 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[mean]}"), transient=True, console=console) as progress:
        bar = progress.add_task(description, total=total, mean="")

        def on_episode(stats: EpisodeStats) -> None:
            returns.append(stats.episode_return)
            mean = f"mean return {sum(returns) / len(returns):.1f}"
            progress.update(bar, advance=1, mean=mean)
            if every and (len(returns) % every == 0 or len(returns) == total):
                elapsed = f"{time.perf_counter() - start:.0f} s"
                console.print(f"  {description}: {len(returns)}/{total} episodes, {mean}, {elapsed}", markup=False)

        yield on_episode


def log_episode_table(logger: Logger | bool | None, key: str, episodes: Sequence[EpisodeStats], step: int) -> None:
    """Log one row per episode as a W&B table, if W&B is the logger.

    Columns: iteration, the task's parameters, return, length, terminated, success and the family's measures.
    """
    if not isinstance(logger, WandbLogger) or not episodes:
        return
    names = list(episodes[0].task)
    measures = sorted({m for e in episodes for m in e.measures})
    rows = [
        [step, *(e.task[n] for n in names), e.episode_return, e.length, e.terminated, e.success,
         *(e.measures.get(m) for m in measures)]
        for e in episodes
    ]  # fmt: skip
    columns = ["iteration", *names, "return", "length", "terminated", "success", *(f"measure.{m}" for m in measures)]
    logger.log_table(key=key, columns=columns, data=rows)

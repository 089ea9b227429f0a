"""Progress of long episode loops: plain lines in logs (not a terminal), nothing but the bar on a terminal."""

import io

from rich.console import Console

from mbmeta.control.collection import EpisodeStats
from mbmeta.evaluation.progress import episode_progress


def episode(episode_return: float) -> EpisodeStats:
    return EpisodeStats(0, 0, 0, {"mass": 1.0}, episode_return, 10, False)


def run(console: Console, total: int, log_lines: int) -> str:
    with episode_progress("evaluating context", total, log_lines=log_lines, console=console) as on_episode:
        for i in range(total):
            on_episode(episode(float(i)))
    return console.file.getvalue()


def test_a_log_gets_a_few_evenly_spaced_lines():
    lines = [line for line in run(Console(file=io.StringIO(), width=200), 10, 4).splitlines() if line.strip()]
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == [
        "3/10 episodes", "6/10 episodes", "9/10 episodes", "10/10 episodes"
    ]  # fmt: skip
    assert "mean return 4.5" in lines[-1]  # the mean of 0..9


def test_no_lines_unless_asked_and_none_on_a_terminal():
    assert not run(Console(file=io.StringIO(), width=200), 10, 0).strip()
    terminal = Console(file=io.StringIO(), width=200, force_terminal=True)
    assert "episodes, mean return" not in run(terminal, 10, 4)

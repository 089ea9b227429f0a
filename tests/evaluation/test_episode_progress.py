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


def test_the_training_loop_episode_table_has_the_family_measures(tmp_path, monkeypatch):
    import json

    from pytorch_lightning.loggers import WandbLogger

    from mbmeta.evaluation.progress import log_episode_table

    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandbLogger(save_dir=str(tmp_path), project="t", offline=True)
    episodes = [
        EpisodeStats(0, 0, 0, {"mass": 1.0}, 3.0, 250, False, True, {"apexes": 7.0, "target_apexes": 5.0}),
        EpisodeStats(1, 1, 1, {"mass": 2.0}, 1.0, 40, True, False, {"apexes": 1.0, "target_apexes": 0.0}),
    ]
    log_episode_table(logger, "collect/episodes", episodes, step=3)
    logger.experiment.finish()
    [table] = list(tmp_path.rglob("*.table.json"))
    content = json.loads(table.read_text())
    assert content["columns"] == ["iteration", "mass", "return", "length", "terminated", "success",
                                  "measure.apexes", "measure.target_apexes"]  # fmt: skip
    assert content["data"][0][-2:] == [7.0, 5.0] and content["data"][1][-2:] == [1.0, 0.0]

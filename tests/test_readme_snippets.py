"""The README's and the data-format guide's Python snippets run as written, each on its own (a fresh namespace).

A snippet that needs a trained model finds one where it says: the tests train a tiny `context` model into
`runs/pend-context` of a scratch working directory first, so the snippet itself is executed unchanged.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from mbmeta.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY_CONTEXT_RUN = [
    "--loop.family", "pendulum", "--loop.iterations", "1", "--loop.initial_episodes", "2",
    "--loop.episodes_per_iteration", "1", "--loop.num_envs", "2", "--loop.epochs_per_iteration", "1",
    "--model.adaptation", "context", "--model.ensemble_size", "2", "--model.hidden_sizes", "[32]",
    "--model.context_hidden", "[32]", "--model.reward_hidden", "[32]", "--data.samples_per_epoch", "256",
    "--agent.planner.population", "16", "--agent.planner.elites", "4", "--agent.planner.iterations", "1",
    "--agent.horizon", "5",
    "--trainer.enable_progress_bar", "false", "--loop.run_dir", "runs/pend-context",
]  # fmt: skip


def python_snippets(document: str) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"```python\n(.*?)```", (REPO / document).read_text(), flags=re.S)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory holding what the snippets read: the model `mbmeta train` writes in the README."""
    path = tmp_path_factory.mktemp("readme")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        assert main(["train", *TINY_CONTEXT_RUN]) == 0
    return path


@pytest.mark.parametrize(
    "document, index",
    [("README.md", i) for i in range(len(python_snippets("README.md")))]
    + [("docs/data_format.md", i) for i in range(len(python_snippets("docs/data_format.md")))],
)
def test_snippet_runs_on_its_own(document, index, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    snippet = python_snippets(document)[index]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # e.g. MPCAgent's warning about too many threads
        exec(compile(snippet, f"{document} python block {index}", "exec"), {"__name__": "__snippet__"})


def test_the_readme_has_the_snippets_the_tests_expect():
    snippets = python_snippets("README.md")
    assert len(snippets) >= 2
    agent = next(s for s in snippets if "MPCAgent" in s)
    assert "mbmeta.configure_threads()" in agent and "gym.make" in agent  # one thread, its own environment
    assert '"runs/pend-context/model.ckpt"' in agent  # what the README's `mbmeta train` writes

"""One torch thread by default wherever a user enters: every command, and a warning from an agent in a user's loop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import mbmeta
from mbmeta.control import MPCAgent
from mbmeta.control import agent as agent_module
from mbmeta.planners import CEMPlanner
from mbmeta.types import Prediction


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


class Still:
    """An adapted model that predicts no motion (planning cost is irrelevant here)."""

    ensemble_size = 1

    def __call__(self, obs, action):
        return Prediction(obs, torch.zeros_like(obs), None)


class StillModel:
    obs_dim = 3

    def adapt(self, context, mask=None, task=None):
        return Still()


def small_agent() -> MPCAgent:
    planner = CEMPlanner([-2.0], [2.0], population=8, elites=2, iterations=1)
    return MPCAgent(StillModel(), planner, lambda o, a, n: -(n**2).sum(-1), horizon=3, context_length=2)


def test_configure_threads_is_public_and_reads_the_variable(monkeypatch, two_threads):
    monkeypatch.delenv("MBMETA_THREADS", raising=False)
    assert mbmeta.configure_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("MBMETA_THREADS", "2")
    assert mbmeta.configure_threads() == 2 and torch.get_num_threads() == 2
    assert mbmeta.configure_threads(1) == 1 and torch.get_num_threads() == 1


@pytest.mark.parametrize("value", ["two", "0", ""])
def test_a_bad_thread_count_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("MBMETA_THREADS", value)
    with pytest.raises(ValueError, match="MBMETA_THREADS must be an integer >= 1"):
        mbmeta.configure_threads()


def test_an_agent_warns_once_when_threads_outnumber_free_cores(monkeypatch, two_threads):
    monkeypatch.setattr(agent_module, "_threads_checked", False)
    monkeypatch.setattr("mbmeta.threads.free_cores", lambda: 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two agents, two steps each: one warning for the process
            agent = small_agent()
            agent.act(np.zeros(3, dtype=np.float32))
            agent.act(np.zeros(3, dtype=np.float32))
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert "torch uses 2 threads but only 1" in messages[0] and "mbmeta.configure_threads()" in messages[0]


def test_an_agent_with_one_thread_does_not_warn(monkeypatch):
    monkeypatch.setattr(agent_module, "_threads_checked", False)
    monkeypatch.setattr("mbmeta.threads.free_cores", lambda: 1)
    mbmeta.configure_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small_agent().act(np.zeros(3, dtype=np.float32))


def test_fit_sets_one_thread_before_fitting(monkeypatch, two_threads):
    from mbmeta.commands import fit

    seen = []

    class FakeCLI:
        def __init__(self, *args, **kwargs):
            seen.append(torch.get_num_threads())

    monkeypatch.delenv("MBMETA_THREADS", raising=False)
    monkeypatch.setattr(fit, "MetaCLI", FakeCLI)
    monkeypatch.setattr(fit, "_report", lambda cli: None)
    fit.run(["--data.buffer_path", "unused.npz"])
    assert seen == [1]


def test_import_mbmeta_pulls_in_no_torch():
    import subprocess
    import sys

    code = "import sys, mbmeta; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""Checkpoints load without executing pickled code; damaged ones fail with an error naming the file."""

import os
import shutil

import pytest
import torch

from mbmeta.training.checkpoint import CheckpointError, load_checkpoint, load_module, save_checkpoint


class _Payload:
    """Unpickling this runs a shell command (what a malicious checkpoint does)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def malicious_checkpoint(tiny_run, tmp_path):
    checkpoint = torch.load(tiny_run / "model.ckpt", weights_only=True)
    marker = tmp_path / "pwned"
    checkpoint["hyper_parameters"]["payload"] = _Payload(marker)
    path = tmp_path / "malicious.ckpt"
    torch.save(checkpoint, path)
    return path, marker


def test_good_checkpoint_round_trips_the_weights(tiny_run):
    module = load_module(tiny_run / "model.ckpt")
    saved = torch.load(tiny_run / "model.ckpt", weights_only=True)["state_dict"]
    assert not module.training
    assert set(module.state_dict()) == set(saved)
    for name, value in module.state_dict().items():
        assert torch.equal(value, saved[name]), name
    assert bool(module.dynamics.normaliser.fitted)


def test_a_runs_checkpoint_holds_the_model_without_optimizer_state(tiny_run):
    saved = torch.load(tiny_run / "model.ckpt", weights_only=True)
    assert {"state_dict", "hyper_parameters"} <= set(saved)
    assert "optimizer_states" not in saved  # never read: each fit builds a new optimizer


def test_malicious_pickle_is_refused_and_not_run(malicious_checkpoint):
    path, marker = malicious_checkpoint
    with pytest.raises(CheckpointError, match=r"malicious\.ckpt.*refused.*(posix|os)\.system"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="malicious.ckpt"):
        load_module(path)
    assert not marker.exists()


def test_agent_from_checkpoint_refuses_malicious_pickle(malicious_checkpoint):
    from mbmeta.control.agent import MPCAgent
    from mbmeta.planners import make_planner

    path, marker = malicious_checkpoint
    planner = make_planner("cem", low=[-2.0], high=[2.0], population=8, elites=2)
    with pytest.raises(Exception, match="(?i)weights.only|refused|unsupported"):
        MPCAgent.from_checkpoint(path, planner)
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[: len(data) // 2], "truncated or corrupt"),
        (lambda data: data[:100], "truncated or corrupt"),
        (lambda data: b"", "truncated or corrupt"),
        (lambda data: b"not a checkpoint at all" * 50, "truncated or corrupt|refused"),
    ],
    ids=["half", "header-only", "empty", "garbage"],
)
def test_damaged_checkpoint_names_the_file(tiny_run, tmp_path, damage, message):
    path = tmp_path / "damaged.ckpt"
    path.write_bytes(damage((tiny_run / "model.ckpt").read_bytes()))
    with pytest.raises(CheckpointError, match=rf"damaged\.ckpt.*({message})"):
        load_module(path)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.ckpt"):
        load_checkpoint(tmp_path / "nothing.ckpt")


def test_checkpoint_of_something_else_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"weights\.pt.*not an mbmeta model checkpoint.*state_dict"):
        load_checkpoint(path)


def test_checkpoint_with_foreign_hyperparameters_is_refused(tiny_run, tmp_path):
    checkpoint = torch.load(tiny_run / "model.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["no_such_argument"] = 1
    path = tmp_path / "foreign.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"foreign\.ckpt.*hyperparameters.*no_such_argument"):
        load_module(path)


class _FailingTrainer:
    """Writes half a checkpoint, then dies (like a full disk or a kill during the write)."""

    is_global_zero = True

    def save_checkpoint(self, path, weights_only=None):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError("No space left on device")


def test_failed_save_leaves_the_good_checkpoint_untouched(tiny_run, tmp_path):
    path = tmp_path / "model.ckpt"
    shutil.copyfile(tiny_run / "model.ckpt", path)
    before = path.read_bytes()
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(_FailingTrainer(), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]  # no temporary file left behind
    load_module(path)


def test_agent_from_checkpoint_plans_with_the_checkpointed_model(tiny_run, malicious_checkpoint):
    import numpy as np

    from mbmeta.control.agent import MPCAgent
    from mbmeta.planners import make_planner

    load_agent = MPCAgent.from_checkpoint

    planner = make_planner("cem", low=[-2.0], high=[2.0], population=8, elites=2, iterations=1)
    agent = load_agent(tiny_run / "model.ckpt", planner, horizon=3, context_size=4)
    action = agent.act(np.zeros(3, dtype=np.float32))
    assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0
    path, marker = malicious_checkpoint
    with pytest.raises(CheckpointError, match="refused"):
        load_agent(path, planner)
    assert not marker.exists()

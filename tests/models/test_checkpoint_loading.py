"""`load_dynamics` rebuilds the model from a checkpoint without Lightning, and refuses unsafe files."""

import pickle

import pytest
import torch

from mbmeta.models.checkpoint import load_dynamics
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import Transition


def _module(adaptation):
    module = MetaDynamicsModule(
        obs_dim=3,
        action_dim=1,
        task_dim=2,
        adaptation=adaptation,
        ensemble_size=2,
        hidden_sizes=(16, 16),
        context_hidden=(8,),
        reward_hidden=(8,),
        gru_hidden=8,
    )
    stats = {"obs_mean": torch.randn(3), "obs_std": torch.rand(3) + 0.5, "action_mean": torch.zeros(1),
             "action_std": torch.ones(1), "delta_mean": torch.randn(3) * 0.1, "delta_std": torch.rand(3) + 0.1,
             "reward_mean": torch.tensor(-1.0), "reward_std": torch.tensor(2.0)}  # fmt: skip
    module.fit_normaliser(stats)
    return module


@pytest.mark.parametrize("adaptation", ["none", "context", "recurrent", "oracle"])
def test_round_trip_gives_identical_predictions(tmp_path, adaptation):
    module = _module(adaptation)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    loaded = load_dynamics(path)
    g = torch.Generator().manual_seed(0)
    context = Transition(*(torch.randn(2, 4, d, generator=g) for d in (3, 1, 3)), torch.randn(2, 4, generator=g),
                         torch.zeros(2, 4, dtype=torch.bool))  # fmt: skip
    task = torch.rand(2, 2, generator=g)
    obs, action = torch.randn(2, 2, 5, 3, generator=g), torch.randn(2, 2, 5, 1, generator=g)
    with torch.no_grad():
        expected = module.dynamics.eval().adapt(context, task=task)(obs, action)
        got = loaded.adapt(context, task=task)(obs, action)
    assert torch.equal(expected.mean, got.mean) and torch.equal(expected.var, got.var)


class _Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "hyper_parameters": {}, "payload": _Exploit()}, f)
    with pytest.raises(ValueError, match="evil.ckpt"):
        load_dynamics(path)
    assert "this must never run" not in capsys.readouterr().out


def test_truncated_and_missing_files_name_the_file(tmp_path):
    module = _module("context")
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, good)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="bad.ckpt"):
        load_dynamics(bad)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_dynamics(tmp_path / "missing.ckpt")

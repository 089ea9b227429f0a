"""``agent.terminal_value`` end to end: ``mbmeta evaluate`` imports the value by its path, plans with it (weighted),
records it in results.json, and refuses a path it cannot use in one line."""

import json

import torch

from mbmeta.cli import main

CALLS: list[tuple[int, ...]] = []


def upright_bonus(obs: torch.Tensor) -> torch.Tensor:
    """A pendulum terminal value ``[*S, 3] -> [*S]`` (cos θ, the first entry); records each call's shape."""
    CALLS.append(tuple(obs.shape))
    return obs[..., 0] + 1.0


def _common(tiny_run, tmp_path, name):
    args = ["--ckpt", str(tiny_run / "model.ckpt"), "--tasks", "1", "--episodes_per_task", "1", "--num_envs", "1"]
    return ["evaluate", *args, "--env_kwargs", '{"max_episode_steps": 5}', "--out", str(tmp_path / name)]


def test_evaluate_plans_with_the_named_terminal_value_and_records_it(tmp_path, tiny_run, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    CALLS.clear()
    path = f"{__name__}:upright_bonus"
    assert main([*_common(tiny_run, tmp_path, "valued"), "--agent.terminal_value", path,
                 "--agent.terminal_weight", "2.5"]) == 0  # fmt: skip
    results = json.loads((tmp_path / "valued" / "results.json").read_text())
    assert results["agent"]["terminal_value"] == path and results["agent"]["terminal_weight"] == 2.5
    assert len(CALLS) >= 5, "asked once per planner iteration of every step"
    assert all(shape[-1] == 3 for shape in CALLS)
    CALLS.clear()
    assert main(_common(tiny_run, tmp_path, "plain")) == 0
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    assert not CALLS and plain["agent"]["terminal_value"] is None


def test_a_terminal_value_that_cannot_be_imported_is_one_line(tmp_path, tiny_run, capsys):
    code = main([*_common(tiny_run, tmp_path, "bad"), "--agent.terminal_value", "mbmeta.nope:value"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "agent.terminal_value 'mbmeta.nope:value' cannot be imported" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "bad" / "results.json").exists()

"""`mbmeta evaluate` / `transfer` plan with the settings a run was trained with and accept a train config."""

from __future__ import annotations

import json

import pytest

from mbmeta.commands import evaluate, transfer
from mbmeta.commands.run_config import parse_with_run_defaults, run_config, run_segment_settings

RUN_AGENT = {"planner": "icem", "planner_options": {"population": 33, "elites": 3}, "horizon": 7, "context_size": 4}


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    config = {"loop": {"family": "cartpole"}, "agent": {**RUN_AGENT, "retired_setting": 1}}
    (run / "config.json").write_text(json.dumps(config))
    return run


@pytest.mark.parametrize("ckpt", ["model.ckpt", "checkpoints/iteration_002.ckpt"])
def test_agent_defaults_come_from_the_run_config(run_dir, ckpt):
    cfg, source = parse_with_run_defaults(evaluate.build_parser(), ["--ckpt", str(run_dir / ckpt)])
    assert source == run_dir / "config.json"
    assert {k: getattr(cfg.agent, k) for k in RUN_AGENT} == RUN_AGENT  # unknown saved keys are dropped
    assert evaluate.family_of_checkpoint(str(run_dir / ckpt)) == "cartpole"


def test_flags_override_the_run_config(run_dir):
    argv = ["--ckpt", str(run_dir / "model.ckpt"), "--agent.horizon", "12", "--agent.planner", "mppi"]
    cfg, _ = parse_with_run_defaults(transfer.build_parser(), [*argv, "--task", '{"force": 10.0}'])
    assert (cfg.agent.horizon, cfg.agent.planner, cfg.agent.context_size) == (12, "mppi", 4)


def test_a_train_config_is_accepted_and_overrides_the_run_config(run_dir):
    argv = ["--ckpt", str(run_dir / "model.ckpt"), "--config", "configs/pendulum.yaml"]
    cfg, _ = parse_with_run_defaults(evaluate.build_parser(), argv)
    assert cfg.family == "pendulum"  # from the config's loop.family
    assert cfg.agent.planner == "cem" and cfg.agent.horizon == 20  # configs/pendulum.yaml's agent group


def test_without_a_run_config_the_defaults_stand(tmp_path):
    cfg, source = parse_with_run_defaults(evaluate.build_parser(), ["--ckpt", str(tmp_path / "fit.ckpt")])
    assert source is None and cfg.agent.planner == "cem" and cfg.family is None


def test_checkpoints_of_runs_with_other_settings_warn(run_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"agent": {**RUN_AGENT, "horizon": 30}}))
    argv = ["--ckpt", str(run_dir / "model.ckpt"), str(other / "model.ckpt")]
    with pytest.warns(UserWarning, match="other agent settings"):
        cfg, _ = parse_with_run_defaults(evaluate.build_parser(), argv)
    assert cfg.agent.horizon == 7  # the first run's settings, for every checkpoint


def test_corrupt_run_config_names_the_file(run_dir):
    (run_dir / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"run config .*config\.json.* is corrupt"):
        run_config(run_dir / "model.ckpt")


def test_segment_settings_come_from_the_run_config(run_dir, tmp_path):
    data = {
        "context_length": 6,
        "target_length": 3,
        "pad_context": True,
        "context_source": "episode",
        "samples_per_epoch": 999,
    }
    (run_dir / "config.json").write_text(json.dumps({"data": data}))
    assert run_segment_settings(run_dir / "checkpoints" / "iteration_001.ckpt") == {
        "context_length": 6,
        "target_length": 3,
        "pad_context": True,
        "context_source": "episode",
    }  # sampling sizes are not segment settings
    assert run_segment_settings(tmp_path / "fit.ckpt") == {}

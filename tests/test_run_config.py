"""`mbmeta evaluate` / `transfer` plan with the settings a run was trained with and accept a train config."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import yaml

from mbmeta.commands import evaluate, transfer
from mbmeta.commands.agent_arguments import agent_settings
from mbmeta.commands.run_config import LIGHT_AGENT, parse_with_run_defaults, run_config, run_segment_settings
from mbmeta.control.settings import AgentSettings
from mbmeta.planners.settings import cem, icem, mppi

# The agent group as a run recorded it before typed planner settings, and the same settings in today's form.
OLD_AGENT = {"planner": "icem", "planner_options": {"population": 33, "elites": 3}, "horizon": 7, "context_size": 4}
RUN_AGENT = AgentSettings(planner=icem(population=33, elites=3), horizon=7, context_length=4)


@pytest.fixture(params=["old_record", "new_record"])
def run_dir(tmp_path, request):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    agent = OLD_AGENT if request.param == "old_record" else RUN_AGENT.as_config()
    config = {"loop": {"family": "cartpole"}, "agent": {**agent, "retired_setting": 1}}
    (run / "config.json").write_text(json.dumps(config))
    for ckpt in ("model.ckpt", "checkpoints/iteration_002.ckpt"):
        (run / ckpt).write_bytes(b"")  # present (evaluate checks that first); never read by these tests
    return run


@pytest.mark.parametrize("ckpt", ["model.ckpt", "checkpoints/iteration_002.ckpt"])
def test_agent_defaults_come_from_the_run_config(run_dir, ckpt):
    cfg, source = parse_with_run_defaults(evaluate.build_parser(), ["--ckpt", str(run_dir / ckpt)])
    assert source == run_dir / "config.json"
    assert agent_settings(cfg) == RUN_AGENT  # an old record in today's form; unknown saved keys are dropped
    assert evaluate.family_of_checkpoint(str(run_dir / ckpt)) == "cartpole"


def test_flags_override_the_run_config(run_dir):
    argv = ["--ckpt", str(run_dir / "model.ckpt"), "--agent.horizon", "12", "--agent.planner", "mppi"]
    cfg, _ = parse_with_run_defaults(transfer.build_parser(), [*argv, "--task", '{"force": 10.0}'])
    agent = agent_settings(cfg)
    assert (agent.horizon, agent.context_length) == (12, 4)
    assert agent.planner == mppi()  # another planner than the run's: its own defaults, not the run's population


def test_a_planner_option_overrides_the_run_config_and_keeps_its_other_options(run_dir):
    cfg, _ = parse_with_run_defaults(
        evaluate.build_parser(), ["--ckpt", str(run_dir / "model.ckpt"), "--agent.planner.elites", "5"]
    )
    assert agent_settings(cfg).planner == icem(population=33, elites=5)


def test_a_train_config_is_accepted_and_overrides_the_run_config(run_dir):
    argv = ["--ckpt", str(run_dir / "model.ckpt"), "--config", "configs/pendulum.yaml"]
    cfg, _ = parse_with_run_defaults(evaluate.build_parser(), argv)
    assert cfg.family == "pendulum"  # from the config's loop.family
    agent = agent_settings(cfg)  # configs/pendulum.yaml's agent group
    assert agent.planner == cem(population=100, elites=10, iterations=3, alpha=0.1) and agent.horizon == 20


def test_without_a_run_config_the_light_defaults_stand(tmp_path):
    cfg, source = parse_with_run_defaults(evaluate.build_parser(), ["--ckpt", str(tmp_path / "fit.ckpt")])
    assert source is None and agent_settings(cfg) == LIGHT_AGENT and cfg.family is None
    sequences = lambda agent: agent.planner.population * agent.planner.iterations  # noqa: E731
    assert sequences(LIGHT_AGENT) * 5 <= sequences(AgentSettings())  # what makes them light
    assert "light defaults" in evaluate.describe_agent(LIGHT_AGENT, source)


def test_a_fit_run_gives_k_and_the_family_of_its_buffer(tmp_path):
    from mbmeta.data.buffer import EpisodeBuffer

    buffer = EpisodeBuffer(family="cartpole")
    buffer.add_episode(np.zeros((2, 4)), np.zeros((2, 1)), np.zeros(2), np.zeros((2, 4)), [0, 0], [0, 1], {"m": 1.0})
    buffer.save(tmp_path / "data.npz")
    run = tmp_path / "runs" / "fit" / "20260101-000000"
    (run / "checkpoints").mkdir(parents=True)
    config = {"model": {}, "data": {"buffer_path": str(tmp_path / "data.npz"), "context_length": 6}, "trainer": {}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"")  # present; never read here
    cfg, source = parse_with_run_defaults(evaluate.build_parser(), ["--ckpt", str(ckpt)])
    assert source == run / "config.yaml"
    assert agent_settings(cfg) == dataclasses.replace(LIGHT_AGENT, context_length=6)
    assert evaluate.family_of_checkpoint(str(ckpt)) == "cartpole"
    assert "K from" in evaluate.describe_agent(agent_settings(cfg), source)


def test_checkpoints_of_runs_with_other_settings_warn(run_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"agent": {**OLD_AGENT, "horizon": 30}}))
    argv = ["--ckpt", str(run_dir / "model.ckpt"), str(other / "model.ckpt")]
    with pytest.warns(UserWarning, match="other agent settings"):
        cfg, _ = parse_with_run_defaults(evaluate.build_parser(), argv)
    assert cfg.agent.horizon == 7  # the first run's settings, for every checkpoint


def test_old_and_new_records_of_the_same_settings_do_not_warn(run_dir, tmp_path, recwarn):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"agent": OLD_AGENT}))
    parse_with_run_defaults(evaluate.build_parser(), ["--ckpt", str(run_dir / "model.ckpt"), str(other / "model.ckpt")])
    assert not [w for w in recwarn if "other agent settings" in str(w.message)]


def test_unreadable_recorded_agent_settings_name_the_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"agent": {"planner": "cem", "planner_options": {"popsize": 3}}}))
    with pytest.raises(ValueError, match=r"config\.json.*agent settings cannot be read.*popsize"):
        parse_with_run_defaults(evaluate.build_parser(), ["--ckpt", str(tmp_path / "model.ckpt")])


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

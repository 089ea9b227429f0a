"""Every shipped YAML config parses with its command, composes with the method configs, and names real things."""

from pathlib import Path

import pytest

from mbmeta.commands.agent_arguments import agent_settings
from mbmeta.commands.train import build_parser
from mbmeta.control.factory import make_family_planner
from mbmeta.envs import get_family

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TRAIN_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.startswith("fit_"))
METHODS = sorted((CONFIGS / "methods").glob("*.yaml"))


@pytest.mark.parametrize("config", TRAIN_CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("method", METHODS, ids=lambda p: p.stem)
def test_train_config_composes_with_method(config, method):
    cfg = build_parser().parse_args(["--config", str(config), "--config", str(method)])
    assert cfg.model.adaptation == method.stem
    family = get_family(cfg.loop.family)
    agent = agent_settings(cfg)
    assert agent.context_length == cfg.data.context_length  # the one K, as mbmeta train requires
    env = family.make_env()
    try:
        planner = make_family_planner(family, agent)
    finally:
        env.close()
    assert planner.action_dim == env.action_space.shape[0]
    assert (planner.low.numpy() == env.action_space.low).all() and (planner.high.numpy() == env.action_space.high).all()


def test_unknown_config_key_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("loop:\n  familly: pendulum\n")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--config", str(bad)])
    assert "familly" in capsys.readouterr().err


def test_wrong_type_is_an_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--loop.iterations", "many"])
    assert "iterations" in capsys.readouterr().err

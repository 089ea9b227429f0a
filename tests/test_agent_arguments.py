"""The agent group on the command line and in YAML: typed planner options, checked while parsing, one name for K."""

import dataclasses
import json

import pytest

from mbmeta.commands import evaluate, quickstart, train, transfer
from mbmeta.commands.agent_arguments import agent_settings
from mbmeta.control.factory import make_family_planner
from mbmeta.control.settings import AgentSettings
from mbmeta.envs import get_family
from mbmeta.planners import PLANNERS
from mbmeta.planners.settings import PLANNER_SETTINGS, cem, icem

COMMANDS = {"train": train, "evaluate": evaluate, "transfer": transfer}


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_every_planner_option_with_its_docstring(command):
    from docstring_parser import parse

    text = _one_line(COMMANDS[command].build_parser().format_help())
    for name, cls in PLANNER_SETTINGS.items():
        assert f"{name}: {_one_line(parse(cls.__doc__).short_description)}" in text
        helps = {p.arg_name: _one_line(p.description) for p in parse(cls.__doc__).params}
        for f in dataclasses.fields(cls):
            assert f"--agent.planner.{f.name} ({f.type}, default {f.default}): {helps[f.name]}" in text


@pytest.mark.parametrize("name", sorted(PLANNER_SETTINGS))
def test_each_short_name_builds_its_planner_with_its_defaults_and_the_family_bounds(name):
    cfg = train.build_parser().parse_args(["--loop.family", "cartpole", "--agent.planner", name])
    agent = agent_settings(cfg)
    default = AgentSettings().planner
    # its own defaults (none carried over from the default planner), or the agent's default when that is the one named
    assert agent.planner == (default if name == default.name else PLANNER_SETTINGS[name]())
    family = get_family(cfg.loop.family)
    planner = make_family_planner(family, agent)
    assert type(planner) is PLANNERS[name]
    assert planner.low.tolist() == family.action_space.low.tolist()
    assert planner.high.tolist() == family.action_space.high.tolist()


def test_options_after_the_planner_name_are_typed():
    cfg = train.build_parser().parse_args(["--agent.planner", "icem", "--agent.planner.population", "64"])
    assert agent_settings(cfg).planner == icem(population=64)


def test_an_option_alone_sets_it_on_the_default_planner():
    cfg = train.build_parser().parse_args(["--agent.planner.population", "64"])
    assert agent_settings(cfg).planner == cem(population=64, elites=40, iterations=5, alpha=0.1)


def test_options_given_in_a_config_carry_over_to_another_planner_that_has_them():
    cfg = train.build_parser().parse_args(["--config", "configs/pendulum.yaml", "--agent.planner", "mppi"])
    planner = agent_settings(cfg).planner
    # population and iterations were given by the config; alpha was too, and mppi has it; the rest are mppi's own
    assert (planner.name, planner.population, planner.iterations, planner.alpha) == ("mppi", 100, 3, 0.1)
    assert planner.temperature == PLANNER_SETTINGS["mppi"]().temperature


def test_yaml_takes_class_path_and_init_args(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("agent:\n  planner:\n    class_path: icem\n    init_args: {population: 64, beta: 1.0}\n")
    cfg = train.build_parser().parse_args(["--config", str(config)])
    assert agent_settings(cfg).planner == icem(population=64, beta=1.0)


@pytest.mark.parametrize(
    "yaml, named",
    [
        ("planner: {class_path: icem, init_args: {popsize: 64}}", "popsize"),
        ("planner: {class_path: icem, init_args: {population: lots}}", "population"),
        ("planner: {class_path: pso}", "pso"),
    ],
)
def test_a_bad_planner_option_in_yaml_fails_while_parsing_and_is_named(tmp_path, capsys, yaml, named):
    config = tmp_path / "bad.yaml"
    config.write_text(f"agent:\n  {yaml}\n")
    with pytest.raises(SystemExit):
        evaluate.build_parser().parse_args(["--ckpt", "x.ckpt", "--config", str(config)])
    assert named in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, yaml, new_spelling",
    [
        (["--agent.planner_options", '{"population": 64}'], None, "--agent.planner.OPTION VALUE"),
        (["--agent.context_size", "5"], None, "write agent.context_length"),
        ([], "agent:\n  planner: cem\n  planner_options: {population: 64}\n", "init_args: {OPTION: VALUE}"),
        ([], "agent:\n  context_size: 5\n", "write agent.context_length"),
    ],
)
def test_renamed_keys_are_refused_with_the_new_spelling_in_one_line(tmp_path, capsys, argv, yaml, new_spelling):
    if yaml is not None:
        (tmp_path / "old.yaml").write_text(yaml)
        argv = ["--config", str(tmp_path / "old.yaml")]
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(argv)
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mbmeta train: error:")]
    assert len(error) == 1 and new_spelling in error[0]


def test_print_config_shows_the_planner_with_its_own_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.build_parser().parse_args(["--agent.planner", "icem", "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "population: 300" in printed and "elites: 30" in printed  # icem's, not the default cem's 400 / 40


def test_train_refuses_an_agent_k_other_than_the_data_k_before_collecting(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["--loop.run_dir", str(run_dir), "--data.context_length", "10", "--agent.context_length", "5"]
    assert train.run(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "mbmeta train: error: agent.context_length 5 differs from data.context_length 10: the agent must adapt on as "
        "many transitions (K) as the model is trained with; set both to the same value"
    )
    assert not (run_dir / "buffer.npz").exists()


def test_quickstart_reads_its_budget_from_the_packaged_config():
    assert quickstart.BUDGET.is_file()
    budget = quickstart.load_budget()
    assert budget.loop.iterations == 2 and budget.loop.initial_episodes == 16 and budget.loop.num_envs == 8
    assert list(budget.model.hidden_sizes) == [64, 64, 64] and budget.data.target_length == 5
    agent = agent_settings(budget)
    assert agent.planner == cem(population=100, elites=10, iterations=3) and agent.horizon == 15
    assert agent.context_length == budget.data.context_length
    assert json.loads(json.dumps(dict(budget.trainer))) == {"enable_progress_bar": False}

"""AgentSettings: typed planner, one name for K, the JSON form runs record, and the form older runs recorded."""

import json

import pytest
import torch

from mbmeta.control.agent import MPCAgent
from mbmeta.control.factory import make_agent, make_family_planner, make_terminal_value
from mbmeta.control.settings import AgentSettings, upgrade_agent_config
from mbmeta.envs import get_family
from mbmeta.planners import ICEMPlanner, make_planner
from mbmeta.planners.settings import cem, icem, mppi

OLD_RECORD = {  # the agent group of a config.json written before typed planner settings
    "planner": "icem",
    "planner_options": {"population": 33, "elites": 3},
    "horizon": 7,
    "context_size": 4,
    "propagation": "expectation",
}


def test_the_json_form_round_trips():
    settings = AgentSettings(planner=mppi(population=64, temperature=0.3), horizon=9, context_length=6)
    recorded = json.loads(json.dumps(settings.as_config()))
    assert recorded["planner"] == {"class_path": "mppi", "init_args": mppi(population=64, temperature=0.3).options()}
    assert recorded["context_length"] == 6
    assert AgentSettings.from_config(recorded) == settings


def test_an_old_record_reads_as_the_equivalent_settings():
    settings = AgentSettings.from_config(OLD_RECORD)
    assert settings.planner == icem(population=33, elites=3)
    assert (settings.horizon, settings.context_length) == (7, 4)


def test_upgrading_fills_the_planner_defaults_so_equal_settings_compare_equal():
    old = upgrade_agent_config({"planner": "cem", "planner_options": {"population": 100}})
    new = upgrade_agent_config({"planner": {"class_path": "cem", "init_args": {"population": 100}}})
    assert old == new == {"planner": cem(population=100).as_config()}
    assert upgrade_agent_config({"horizon": 5, "retired": 1}) == {"horizon": 5, "retired": 1}  # nothing to upgrade


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match=r"unknown agent setting\(s\) \['retired'\]"):
        AgentSettings.from_config({**OLD_RECORD, "retired": 1})


def test_planner_may_be_given_by_name_or_mapping_in_python():
    assert AgentSettings(planner="icem").planner == icem()
    assert AgentSettings(planner={"class_path": "icem", "init_args": {"beta": 1.0}}).planner == icem(beta=1.0)


def test_context_size_is_a_deprecated_alias():
    settings = AgentSettings(context_length=7)
    with pytest.warns(DeprecationWarning, match="context_length"):
        assert settings.context_size == 7


def test_the_factory_builds_the_planner_within_the_family_bounds():
    family = get_family("cartpole")
    planner = make_family_planner(family, AgentSettings(planner=icem(population=50, elites=5)))
    assert isinstance(planner, ICEMPlanner) and planner.population == 50
    assert planner.low.tolist() == family.action_space.low.tolist()
    assert planner.high.tolist() == family.action_space.high.tolist()


class _Dynamics:
    def adapt(self, context, mask=None, task=None):  # never called: the agent is only built here
        raise AssertionError


def test_the_agent_adapts_on_context_length_transitions():
    agent = make_agent(_Dynamics(), get_family("pendulum"), AgentSettings(context_length=6))
    assert agent.context_length == 6


def test_mpc_agent_accepts_the_old_keyword_with_a_warning():
    planner = make_planner("cem", low=[-1.0], high=[1.0], population=8, elites=2)
    with pytest.warns(DeprecationWarning, match="context_length"):
        agent = MPCAgent(_Dynamics(), planner, horizon=3, context_size=5)
    assert agent.context_length == 5


def landing_bonus(obs):
    """A terminal value for the tests below: ``obs [*S, O] -> [*S]``."""
    return obs[..., 0] * 2.0


NOT_CALLABLE = 3


def test_the_terminal_value_is_imported_from_its_path_and_weighted():
    family = get_family("pendulum")
    obs = torch.tensor([[1.5, 0.0, 0.0]])
    agent = make_agent(_Dynamics(), family, AgentSettings(terminal_value=f"{__name__}:landing_bonus"))
    assert agent.objective_settings["terminal_value"] is landing_bonus
    settings = AgentSettings(terminal_value=f"{__name__}:landing_bonus", terminal_weight=0.5)
    assert float(make_terminal_value(settings)(obs)[0]) == 1.5
    assert make_agent(_Dynamics(), family, AgentSettings()).objective_settings["terminal_value"] is None
    assert AgentSettings.from_config(settings.as_config()) == settings


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("landing_bonus", "agent.terminal_value must be an import path 'package.module:name'"),
        ("mbmeta.nope:f", "agent.terminal_value 'mbmeta.nope:f' cannot be imported"),
        (f"{__name__}:NOT_CALLABLE", "is not callable"),
    ],
)
def test_a_bad_terminal_value_is_refused_in_one_line(path, message):
    with pytest.raises(ValueError, match=message) as err:
        make_agent(_Dynamics(), get_family("pendulum"), AgentSettings(terminal_value=path))
    assert "\n" not in str(err.value)


def test_a_terminal_weight_that_is_not_finite_is_refused():
    settings = AgentSettings(terminal_value=f"{__name__}:landing_bonus", terminal_weight=float("nan"))
    with pytest.raises(ValueError, match="agent.terminal_weight must be a finite number, got nan"):
        make_agent(_Dynamics(), get_family("pendulum"), settings)

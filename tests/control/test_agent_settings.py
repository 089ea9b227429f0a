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


class BallOnly(torch.nn.Module):
    """A known physics computing the ball's entries only (9-13), not the paddle's."""

    computed = (9, 10, 11, 12, 13)

    def complete(self, obs, next_obs, state=None):
        return next_obs

    def loss(self, obs, next_obs):
        return obs.sum() * 0.0


def _juggler_model(physics: str | None = "mbmeta.envs.juggler_contact:BallContact"):
    from mbmeta.models.dynamics import MetaDynamicsModel

    return MetaDynamicsModel(
        obs_dim=14, action_dim=3, adaptation="none", ensemble_size=2, hidden_sizes=(8,), learn_reward=False,
        known_physics=physics,
    )  # fmt: skip


def test_the_agent_acts_with_another_physics_tied_to_the_models_fitted_one():
    model = _juggler_model()
    with torch.no_grad():
        model.physics.log_damping.fill_(2.0)
    settings = AgentSettings(physics="mbmeta.envs.juggler_contact:AdaptiveArmBallContact", context_length=30)
    agent = make_agent(model, get_family("juggler_bounce_servo"), settings)
    acting = agent.dynamics.physics
    assert type(acting).__name__ == "AdaptiveArmBallContact" and type(model.physics).__name__ == "BallContact"
    assert acting.log_damping is model.physics.log_damping  # tied: one fitted parameter, not a copy
    assert agent.dynamics.dynamics_net is model.dynamics_net
    with torch.no_grad():
        model.physics.log_stiffness.fill_(9.0)  # the model trained further: seen by the acting physics at once
    assert float(acting.log_stiffness.detach()) == 9.0
    assert AgentSettings.from_config(settings.as_config()) == settings


@pytest.mark.parametrize(
    ("physics", "path", "message"),
    [
        (None, "mbmeta.envs.juggler_contact:AdaptiveArmBallContact", "the model has no known physics to replace"),
        (
            "mbmeta.envs.juggler_contact:BallContact",
            "mbmeta.nope:X",
            "agent.physics: known_physics 'mbmeta.nope:X' cannot be",
        ),
        (
            "mbmeta.envs.juggler_contact:BallContact",
            f"{__name__}:BallOnly",
            "computes entries \\(9, 10, 11, 12, 13\\), the model's BallContact",
        ),
    ],
)
def test_a_physics_the_model_cannot_act_with_is_refused_in_one_line(physics, path, message):
    with pytest.raises(ValueError, match=message) as err:
        make_agent(_juggler_model(physics), get_family("juggler_bounce_servo"), AgentSettings(physics=path))
    assert "\n" not in str(err.value)

"""Typed planner settings: one per planner, in step with its constructor, building it within given bounds."""

import dataclasses
import inspect

import pytest
import torch

from mbmeta.planners import PLANNERS
from mbmeta.planners.settings import PLANNER_SETTINGS, PlannerSettings, cem, icem, planner_name, planner_settings

LOW, HIGH = [-2.0, -0.5], [2.0, 1.5]


def test_every_planner_has_settings():
    assert set(PLANNER_SETTINGS) == set(PLANNERS)
    for name, cls in PLANNER_SETTINGS.items():
        assert cls.__name__ == name  # the class name is what a config's class_path names
        assert issubclass(cls, PlannerSettings) and cls.planner_class is PLANNERS[name]


@pytest.mark.parametrize("name", sorted(PLANNER_SETTINGS))
def test_settings_fields_mirror_the_planner_constructor(name):
    cls = PLANNER_SETTINGS[name]
    parameters = list(inspect.signature(cls.planner_class.__init__).parameters.values())[1:]  # after self
    assert [p.name for p in parameters[:2]] == ["low", "high"]
    expected = [(p.name, p.default, p.annotation) for p in parameters[2:]]
    assert [(f.name, f.default, f.type) for f in dataclasses.fields(cls)] == expected


@pytest.mark.parametrize("name", sorted(PLANNER_SETTINGS))
def test_settings_build_their_planner_within_the_given_bounds(name):
    settings = PLANNER_SETTINGS[name](population=80)
    planner = settings.build(low=LOW, high=HIGH)
    assert type(planner) is PLANNERS[name]
    assert planner.population == 80
    assert torch.equal(planner.low, torch.tensor(LOW)) and torch.equal(planner.high, torch.tensor(HIGH))
    for option, value in settings.options().items():
        assert getattr(planner, option) == value


def test_config_form_round_trips():
    settings = icem(population=64, elites=8, beta=1.5)
    config = settings.as_config()
    assert config["class_path"] == "icem" and config["init_args"]["beta"] == 1.5
    assert planner_settings(config) == settings
    assert planner_settings({**config, "class_path": "mbmeta.planners.settings.icem"}) == settings


def test_other_spellings_of_a_planner():
    assert planner_settings("RS") == PLANNER_SETTINGS["random_shooting"]()
    assert planner_settings("ICEMPlanner") == icem()
    assert planner_name("mbmeta.planners.settings.mppi") == "mppi"
    assert planner_settings("cem", {"population": 20, "elites": 5}) == cem(population=20, elites=5)
    assert planner_settings(cem(population=20, elites=5), {"iterations": 2}) == cem(
        population=20, elites=5, iterations=2
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: cem(population=0), r"planner 'cem': population must be > 0, got 0"),
        (lambda: cem(population=10, elites=20), r"planner 'cem': elites must be <= population"),
        (lambda: icem(decay=0.5), r"planner 'icem': decay must be >= 1, got 0\.5"),
        (lambda: planner_settings("cem", {"popsize": 10}), r"planner 'cem' has no option\(s\) \['popsize'\]"),
        (lambda: planner_settings("pso"), r"unknown planner 'pso'; valid names are \['cem', 'icem', 'mppi'"),
        (lambda: planner_settings({"population": 3}), r"planner settings must be a planner name or"),
    ],
)
def test_bad_settings_are_refused_when_made(make, message):
    with pytest.raises(ValueError, match=message):
        make()

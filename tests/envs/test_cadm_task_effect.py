"""The task-effect check (``check_task_effect``, ``mbmeta envs --check``) and named test conditions of a family."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import mbmeta.envs
from mbmeta.envs import get_family
from mbmeta.envs.cadm.pendulum import CaDMPendulumEnv, CaDMPendulumFamily, pendulum_step
from mbmeta.envs.family import Condition, check_disjoint
from mbmeta.envs.task_effect import check_task_effect


class LengthIgnoringPendulumEnv(CaDMPendulumEnv):
    """A broken env: it takes the task but always steps with the nominal length (the mass still acts)."""

    def step(self, action: Any):
        a = float(self._checked_action(action)[0])
        self._theta, self._theta_dot, reward = pendulum_step(self._theta, self._theta_dot, a, self.task["mass"], 1.0)
        return self._get_obs(), reward, False, False, self._with_task({})


class TaskIgnoringPendulumEnv(CaDMPendulumEnv):
    """A broken env: nominal physics whatever the task."""

    def step(self, action: Any):
        a = float(self._checked_action(action)[0])
        self._theta, self._theta_dot, reward = pendulum_step(self._theta, self._theta_dot, a, 1.0, 1.0)
        return self._get_obs(), reward, False, False, self._with_task({})


class TaskDependentStartEnv(CaDMPendulumEnv):
    """A broken env: its start state depends on the task."""

    def reset_model(self) -> np.ndarray:
        super().reset_model()
        self._theta += self.task["length"]
        return self._get_obs()


def broken_family(env_class: type) -> CaDMPendulumFamily:
    family = CaDMPendulumFamily()
    family.make_env = lambda **kwargs: env_class(**kwargs)  # type: ignore[method-assign]
    return family


def test_every_parameter_of_every_registered_family_changes_the_physics():
    for family in mbmeta.envs.families():
        effects = check_task_effect(family)
        assert {e.parameter for e in effects} == set(family.parameter_names), family.name
        inert = [e.parameter for e in effects if not e.measurable]
        assert not inert, f"{family.name}: {inert} change nothing"


def test_a_family_whose_env_ignores_the_task_is_reported():
    effects = check_task_effect(broken_family(TaskIgnoringPendulumEnv))
    assert [e.parameter for e in effects] == ["mass", "length"]
    assert not any(e.measurable for e in effects)
    assert all(e.largest == 0.0 and e.first_step == 0.0 for e in effects)


def test_the_report_is_per_parameter():
    effects = {e.parameter: e for e in check_task_effect(broken_family(LengthIgnoringPendulumEnv))}
    assert effects["mass"].measurable and not effects["length"].measurable
    assert effects["mass"].base != effects["mass"].other
    assert effects["mass"].steps == 30


def test_a_task_dependent_start_is_refused():
    with pytest.raises(ValueError, match="start state depends on 'length'"):
        check_task_effect(broken_family(TaskDependentStartEnv))


def test_bad_arguments_are_refused():
    family = get_family("cadm_pendulum")
    with pytest.raises(ValueError, match="steps"):
        check_task_effect(family, steps=0)
    with pytest.raises(ValueError, match="no_such"):
        check_task_effect(family, parameters=["no_such"])


def test_the_tolerance_decides_measurable():
    family = get_family("cadm_pendulum")
    (effect,) = check_task_effect(family, parameters=["mass"], steps=3)
    assert effect.measurable
    (strict,) = check_task_effect(family, parameters=["mass"], steps=3, tolerance=effect.largest * 2)
    assert not strict.measurable and strict.largest == effect.largest


# ----- named conditions ----------------------------------------------------------------------------------------------
def test_conditions_are_splits_by_name_and_make_up_the_test_split():
    for family in mbmeta.envs.families():
        if not family.conditions:
            continue
        assert family.protocol_episodes > 0, family.name
        assert family.test == tuple(r for c in family.conditions for r in c.regions), family.name
        assert {c.group for c in family.conditions} == {"moderate", "extreme"}, family.name
        rng = np.random.default_rng(0)
        for condition in family.conditions:
            assert family.condition(condition.name) is condition
            for task in family.sample(rng, 50, condition.name):
                assert family.in_split(task, "test") and not family.in_split(task, "train")
        check_disjoint(family)


def test_families_without_conditions_are_unchanged():
    family = get_family("halfcheetah_mass")
    assert family.conditions == () and family.protocol_episodes == 0
    with pytest.raises(ValueError, match="valid splits"):
        family.sample(np.random.default_rng(0), 1, "c0")
    with pytest.raises(ValueError, match="no condition 'c0'"):
        family.condition("c0")


def test_unknown_split_names_the_conditions():
    with pytest.raises(ValueError, match="'c3'"):
        get_family("cadm_pendulum").sample(np.random.default_rng(0), 1, "c9")


def test_a_condition_needs_regions():
    with pytest.raises(ValueError, match="at least one region"):
        Condition("c0", "moderate", ())

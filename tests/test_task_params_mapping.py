"""TaskParams: a frozen, hashable, read-only Mapping[str, float] (the issue: `task.get` failed, `dict(task)` raised)."""

import copy
import dataclasses
import pickle
from collections.abc import Mapping

import numpy as np
import pytest

from mbmeta.types import TaskParams

TASK = TaskParams({"mass": 1.5, "length": 0.5})


def test_it_reads_like_a_dict():
    assert isinstance(TASK, Mapping)
    assert dict(TASK) == {"mass": 1.5, "length": 0.5}
    assert {**TASK} == {"mass": 1.5, "length": 0.5}
    assert TASK.get("mass") == 1.5 and TASK.get("damping", 1.0) == 1.0
    assert len(TASK) == 2 and list(TASK) == ["mass", "length"]
    assert "mass" in TASK and "damping" not in TASK
    assert list(TASK.keys()) == ["mass", "length"] and list(TASK.items()) == [("mass", 1.5), ("length", 0.5)]
    assert list(TASK.values()) == [1.5, 0.5]
    assert max(TASK.values()) == 1.5


def test_it_keeps_its_old_api():
    assert TASK.values == (("mass", 1.5), ("length", 0.5))  # the (name, value) pairs, a tuple
    assert isinstance(TASK.values, tuple)
    assert TASK.as_dict() == {"mass": 1.5, "length": 0.5}
    np.testing.assert_array_equal(TASK.as_array(), np.array([1.5, 0.5], dtype=np.float32))
    assert TaskParams.from_dict({"mass": 1.5, "length": 0.5}) == TASK
    assert TaskParams.from_dict(TASK) == TASK
    assert TaskParams((("mass", np.float32(1.5)), ("length", 0.5))) == TASK and TaskParams(TASK.values)["mass"] == 1.5
    assert type(TaskParams({"n": np.int64(2)})["n"]) is float


def test_an_unknown_name_is_a_key_error_naming_the_valid_ones():
    with pytest.raises(KeyError, match=r"task has no parameter 'damping'; it has \['mass', 'length'\]"):
        TASK["damping"]


def test_it_is_frozen_and_hashable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASK.values = ()
    with pytest.raises(TypeError):
        TASK["mass"] = 2.0  # read-only: no item assignment
    reordered = TaskParams({"length": 0.5, "mass": 1.5})
    assert reordered == TASK and hash(reordered) == hash(TASK)  # mapping equality: items, not their order
    assert {TASK: "a"}[TaskParams({"mass": 1.5, "length": 0.5})] == "a"
    assert TASK == {"mass": 1.5, "length": 0.5} and TASK != {"mass": 1.5} and TASK != TaskParams({"mass": 1.5})
    assert TASK != (("mass", 1.5), ("length", 0.5))


def test_it_survives_pickling_copying_and_its_repr():
    for clone in (pickle.loads(pickle.dumps(TASK)), copy.deepcopy(TASK), eval(repr(TASK))):  # noqa: S307
        assert clone == TASK and type(clone) is TaskParams and clone.values == TASK.values


def test_repeated_names_are_refused():
    with pytest.raises(ValueError, match="repeated parameter names"):
        TaskParams((("mass", 1.0), ("mass", 2.0)))

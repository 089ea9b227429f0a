"""Families from the user's own code: import paths, entry points, and finding them again in spawned workers."""

import importlib.metadata
import os
import pickle
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.control.vector_envs import family_env_fns
from mbmeta.envs import ENTRY_POINT_GROUP, MujocoFieldFamily, families, family_reference, get_family, registry

# A user's module: a family of Gymnasium's InvertedPendulum-v5 with its motor gear varied, written without env code.
FAMILY_MODULE = textwrap.dedent(
    """
    import torch

    from mbmeta.envs import Field, Interval, MujocoFieldFamily, TaskFamily


    def terminated(obs, action, next_obs):
        return ~torch.isfinite(next_obs).all(-1) | (next_obs[..., 1].abs() > 0.2)


    def reward(obs, action, next_obs):
        return (~terminated(obs, action, next_obs)).float()


    FAMILY = MujocoFieldFamily(
        "{name}",
        "InvertedPendulum-v5",
        [Field("gear", "actuator_gear", description="cart motor gear scale")],
        train={{"gear": Interval(0.5, 1.5)}},
        test={{"gear": [0.2, 2.5]}},
        reward=reward,
        terminated=terminated,
    )


    def reacher_reward(obs, action, next_obs):
        return -torch.linalg.vector_norm(next_obs[..., 8:10], dim=-1) - (action * action).sum(-1)


    REACHER = MujocoFieldFamily(
        "{name}_reacher",
        "Reacher-v5",
        [Field("gear", "actuator_gear")],
        train={{"gear": Interval(0.5, 1.5)}},
        test={{"gear": [0.2, 2.5]}},
        reward=reacher_reward,
    )


    class NotAFamily:
        pass


    class NeedsArguments(TaskFamily):
        def __init__(self, size):
            self.size = size
    """
)


@pytest.fixture(autouse=True)
def _restore_registry():
    """Each test starts from and leaves the registry as it was (families registered here do not leak)."""
    registry.families(installed=False)
    saved = (dict(registry._FAMILIES), dict(registry._REFERENCES), dict(registry._ENTRY_POINT_NAMES))
    loaded = registry._entry_points_loaded
    registry._entry_points_loaded = False  # entry points are read again, from the (possibly faked) metadata
    yield
    for store, copy in zip((registry._FAMILIES, registry._REFERENCES, registry._ENTRY_POINT_NAMES), saved, strict=True):
        store.clear()
        store.update(copy)
    registry._entry_points_loaded = loaded


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write a user's family module into a directory on sys.path; returns (module name, family name)."""
    tag = uuid.uuid4().hex[:8]
    module, name = f"user_robots_{tag}", f"pendulum_gear_{tag}"
    (tmp_path / f"{module}.py").write_text(FAMILY_MODULE.format(name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module, name
    sys.modules.pop(module, None)


def test_an_import_path_names_a_family_instance(user_module):
    module, name = user_module
    family = get_family(f"{module}:FAMILY")
    assert isinstance(family, MujocoFieldFamily) and family.name == name
    assert get_family(f"{module}:FAMILY") is family  # imported once
    assert get_family(name) is family  # and registered under its name
    assert family_reference(family) == f"{module}:FAMILY"


def test_an_import_path_is_found_in_the_current_directory(tmp_path, monkeypatch):
    # The console script `mbmeta` does not put the working directory on sys.path; the family module is found anyway.
    module = f"cwd_robots_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(FAMILY_MODULE.format(name=module))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path), os.getcwd())])
    try:
        assert get_family(f"{module}:FAMILY").name == module
    finally:
        sys.modules.pop(module, None)


@pytest.mark.parametrize(
    "attr, message",
    [
        ("NO_SUCH", r"has no attribute 'NO_SUCH'"),
        ("NotAFamily", r"is a type, not a TaskFamily"),
        ("NeedsArguments", r"cannot build NeedsArguments\(\) without arguments"),
    ],
)
def test_a_bad_import_path_is_a_one_line_error(user_module, attr, message):
    module, _ = user_module
    with pytest.raises(ValueError, match=message):
        get_family(f"{module}:{attr}")


def test_a_missing_module_is_named():
    message = r"cannot import module 'no_such_pkg_xyz\.robots'.*No module named 'no_such_pkg_xyz'.*PYTHONPATH"
    with pytest.raises(ValueError, match=message):
        get_family("no_such_pkg_xyz.robots:ArmFamily")


def test_an_unknown_name_lists_the_other_spellings():
    message = r"unknown task family 'reacher_gear'.*'pendulum'.*module:NAME.*mbmeta\.families"
    with pytest.raises(KeyError, match=message):
        get_family("reacher_gear")


def test_a_family_taking_another_familys_name_is_refused(user_module, tmp_path):
    module, name = user_module
    get_family(f"{module}:FAMILY")
    twin = f"twin_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{twin}.py").write_text(FAMILY_MODULE.format(name=name))
    try:
        with pytest.raises(ValueError, match=rf"is named '{name}', which is already another family's name"):
            get_family(f"{twin}:FAMILY")
    finally:
        sys.modules.pop(twin, None)


def _fake_entry_points(*entries):
    real = importlib.metadata.entry_points

    def entry_points(**params):
        if params.get("group") == ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints(entries)
        return real(**params)

    return entry_points


def test_an_installed_packages_entry_point_provides_a_family(user_module, monkeypatch):
    module, name = user_module
    entry = importlib.metadata.EntryPoint("pend", f"{module}:FAMILY", ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points(entry))
    family = get_family("pend")  # by the entry point's name
    assert family.name == name and get_family(name) is family
    assert family in families()
    assert registry.installed_families() == {name: f"{module}:FAMILY"}
    assert family_reference(family) == f"{module}:FAMILY"  # what a spawned worker imports


def test_mbmeta_envs_lists_entry_point_families(user_module, monkeypatch, capsys):
    from mbmeta.cli import main

    module, name = user_module
    entry = importlib.metadata.EntryPoint("pend", f"{module}:FAMILY", ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points(entry))
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert name in out and "InvertedPendulum-v5" in out and f"{module}:FAMILY" in out


def test_a_broken_entry_point_is_skipped_in_listings_and_named_when_asked_for(monkeypatch):
    entry = importlib.metadata.EntryPoint("broken", "no_such_pkg_xyz:FAMILY", ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points(entry))
    with pytest.warns(RuntimeWarning, match="skipping task family entry point 'broken'"):
        names = [f.name for f in families()]
    assert "pendulum" in names
    with pytest.raises(ValueError, match=r"cannot load task family 'entry point broken = no_such_pkg_xyz:FAMILY'"):
        get_family("broken")


def test_shipped_families_are_found_again_by_name():
    assert family_reference(get_family("cadm_ant")) == "cadm_ant"


def test_a_registered_family_is_found_again_by_the_module_attribute_holding_it(user_module):
    module, _ = user_module
    imported = __import__(module)
    registry.register_family(imported.FAMILY)  # the user registered it in their module, then names it by name
    assert family_reference(imported.FAMILY) == f"{module}:FAMILY"


def test_a_family_defined_in_the_running_script_works_in_one_process_and_is_refused_for_spawn(monkeypatch):
    # A family only the script being run holds (what a launcher without a __main__ guard would re-run per worker).
    family = MujocoFieldFamily(
        "script_family", "InvertedPendulum-v5", [registry_field()], train={"gear": [1.0]}, test={"gear": [2.0]}
    )
    main = type(sys)("__main__")
    main.FAMILY = family
    monkeypatch.setitem(sys.modules, "__main__", main)
    with pytest.raises(ValueError, match=r"cannot be found by a fresh process.*not in the script being run"):
        family_reference(family)
    fns = family_env_fns(family, 2)
    fns[0]().close()  # one process: fine
    with pytest.raises(ValueError, match="cannot be found by a fresh process"):
        pickle.dumps(fns[0])  # what AsyncVectorEnv does to start its spawned workers


def registry_field():
    from mbmeta.envs import Field

    return Field("gear", "actuator_gear")


def test_spawned_workers_import_the_family_by_its_path(user_module):
    # Two async (spawned) sub-environments build the family from its import path; the tasks reach their physics.
    module, _ = user_module
    family = get_family(f"{module}:FAMILY")
    tasks = [{"gear": 0.5}, {"gear": 1.5}]
    collection = collect_episodes(
        RandomPolicy(family.action_space, seed=0),
        2,
        family=f"{module}:FAMILY",
        tasks=tasks,
        num_envs=2,
        vectorization="async",
        env_kwargs={"max_episode_steps": 5},
    )
    recorded = sorted(collection.buffer.task(e)["gear"] for e in range(collection.buffer.num_episodes))
    assert recorded == [0.5, 1.5]


# A launcher as users wrote them before import paths existed: no `if __name__ == "__main__":` guard.
LAUNCHER = textwrap.dedent(
    """
    print("launcher started", flush=True)
    from mbmeta.cli import main

    raise SystemExit(main([
        "train", "--loop.family", "{module}:REACHER", "--loop.vectorization", "async", "--loop.num_envs", "2",
        "--loop.run_dir", "run", "--loop.iterations", "1", "--loop.initial_episodes", "2",
        "--loop.episodes_per_iteration", "2", "--loop.epochs_per_iteration", "1",
        "--model.ensemble_size", "1", "--model.hidden_sizes", "[16]", "--model.context_hidden", "[16]",
        "--data.context_length", "3", "--agent.context_length", "3", "--data.target_length", "2",
        "--data.samples_per_epoch", "64", "--data.val_samples", "16", "--data.batch_size", "16",
        "--agent.planner", "cem", "--agent.planner.population", "16", "--agent.planner.elites", "4",
        "--agent.planner.iterations", "1", "--agent.horizon", "3", "--env_kwargs", '{{"max_episode_steps": 10}}',
    ]))
    """
)


def test_an_async_run_of_an_import_path_family_from_an_unguarded_launcher_runs_once(user_module, tmp_path):
    # A real spawned run (2 workers) of the user's family; the workers import it by path and do not re-run the
    # launcher (before: every worker re-ran the script and tried to start a run of its own).
    from mbmeta.data.buffer import EpisodeBuffer

    module, name = user_module
    (tmp_path / "launcher.py").write_text(LAUNCHER.format(module=module))
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", "PYTHONPATH": root}
    proc = subprocess.run(
        [sys.executable, "launcher.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.count("launcher started") == 1
    buffer = EpisodeBuffer.load(tmp_path / "run" / "buffer.npz")
    assert buffer.family == f"{name}_reacher" and buffer.num_episodes == 4

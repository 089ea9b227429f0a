"""`runs/checks.py`: settings refused before any data is collected, and a resume with other settings refused.

Refusals already exercised end to end through ``run_training`` (``tests/reliability/test_bad_input.py``) are not
repeated here. Agent settings are built from ``AgentSettings()`` defaults only (their planner fields change shape).
"""

import dataclasses
import json

import pytest

from mbmeta.control.settings import AgentSettings
from mbmeta.envs import get_family
from mbmeta.runs.checks import check_same_config, check_settings, check_trainer, run_settings
from mbmeta.runs.settings import LoopSettings

SMALL_MODEL = {"ensemble_size": 2, "hidden_sizes": [8], "reward_hidden": [8], "context_hidden": [8]}


def check(loop=None, model=None, agent=None, trainer=None, env_kwargs=None):
    check_settings(
        dataclasses.replace(LoopSettings(), **(loop or {})),
        {**SMALL_MODEL, **(model or {})},
        dataclasses.replace(AgentSettings(), **(agent or {})),
        trainer or {},
        get_family("pendulum"),
        env_kwargs,
    )


def test_default_settings_pass():
    check()
    check(env_kwargs={"max_episode_steps": 10}, trainer={"accelerator": "cpu"})


@pytest.mark.parametrize(
    "group, change, message",
    [
        ("loop", {"vectorization": "threads"}, r"loop\.vectorization must be 'sync' or 'async', got 'threads'"),
        ("loop", {"iterations": True}, r"loop\.iterations must be an int >= 0, got True"),
        ("loop", {"num_envs": 2.0}, r"loop\.num_envs must be an int >= 1, got 2\.0"),
        ("loop", {"initial_noise": "high"}, r"loop\.initial_noise must be a number >= 0, got 'high'"),
        ("agent", {"particles": 0}, r"agent\.particles must be an int >= 1, got 0"),
        ("agent", {"horizon": 2.5}, r"agent\.horizon must be an int >= 1, got 2\.5"),
        ("agent", {"discount": 1.5}, r"agent\.discount must be in \(0, 1\], got 1\.5"),
        ("agent", {"discount": float("nan")}, r"agent\.discount must be in \(0, 1\], got nan"),
        ("agent", {"disagreement_penalty": float("nan")}, r"agent\.disagreement_penalty must be >= 0, got nan"),
        ("model", {"latent_dim": 0}, r"model settings .*latent_dim >= 1, got 0"),
        ("model", {"backward_loss_weight": 0.5, "adaptation": "gradient"}, r"model settings .*backward_loss_weight"),
        ("trainer", {"default_root_dir": "x", "max_epochs": 2}, r"\['default_root_dir', 'max_epochs'\] are set by"),
        ("trainer", {"num_nodes": 2}, r"strategy 'auto' on devices=1, num_nodes=2"),
        ("trainer", {"strategy": "fsdp"}, r"strategy 'fsdp' on devices=1"),
    ],
)
def test_a_bad_setting_is_refused_by_name(group, change, message):
    with pytest.raises(ValueError, match=message):
        check(**{group: change})


def test_an_unknown_environment_argument_is_refused_before_collecting():
    with pytest.raises(TypeError, match="no_such_argument"):
        check(env_kwargs={"no_such_argument": 1})


@pytest.mark.parametrize("trainer", [{"strategy": "ddp_fork", "devices": 2}, {"strategy": "ddp_notebook"}])
def test_forking_trainers_are_accepted(trainer):
    check_trainer(trainer)


def recorded(tmp_path, **loop):
    """A run directory's config.json written by a run with the given loop settings; returns its path."""
    path = tmp_path / "config.json"
    config = run_settings(dataclasses.replace(LoopSettings(), **loop), dict(SMALL_MODEL), {}, AgentSettings())
    path.write_text(json.dumps(config))
    return path


def current(**loop) -> dict:
    return run_settings(dataclasses.replace(LoopSettings(), **loop), dict(SMALL_MODEL), {}, AgentSettings())


def test_the_same_settings_resume(tmp_path):
    check_same_config(recorded(tmp_path), current())
    check_same_config(tmp_path / "absent.json", current())  # runs started before config.json existed


def test_iterations_run_dir_and_vectorization_may_change_on_resume(tmp_path):
    path = recorded(tmp_path, iterations=3, run_dir="runs/a", vectorization="sync")
    check_same_config(path, current(iterations=10, run_dir="elsewhere/a", vectorization="async"))


def test_every_other_difference_is_listed_with_both_values(tmp_path):
    path = recorded(tmp_path, seed=3)
    config = current(seed=4, num_envs=LoopSettings().num_envs + 1)
    config["model"]["hidden_sizes"] = (16, 16)  # a tuple, recorded as a list: compared as JSON
    batch_size = config["data"]["batch_size"]
    config["data"]["batch_size"] = 2 * batch_size
    with pytest.raises(ValueError) as err:
        check_same_config(path, config)
    message = str(err.value)
    for change in (
        f"data.batch_size: {batch_size} -> {2 * batch_size}",
        f"loop.num_envs: {LoopSettings().num_envs} -> {LoopSettings().num_envs + 1}",
        "loop.seed: 3 -> 4",
        "model.hidden_sizes: [8] -> [16, 16]",
    ):
        assert change in message, message
    assert message.index("data.batch_size") < message.index("loop.num_envs") < message.index("model.hidden_sizes")
    assert str(tmp_path) in message and "\n" not in message


def test_a_tuple_and_the_list_it_was_recorded_as_are_the_same_setting(tmp_path):
    config = current()
    config["model"]["hidden_sizes"] = tuple(config["model"]["hidden_sizes"])
    check_same_config(recorded(tmp_path), config)


def test_settings_added_later_are_ignored_at_their_default_only(tmp_path):
    path = recorded(tmp_path)
    old = json.loads(path.read_text())
    del old["agent"]["disagreement_penalty"], old["loop"]["initial_noise"]  # as written before they existed
    path.write_text(json.dumps(old))
    check_same_config(path, current())
    changed = current()
    changed["agent"]["disagreement_penalty"] = 0.5
    with pytest.raises(ValueError, match=r"agent\.disagreement_penalty: None -> 0\.5"):
        check_same_config(path, changed)


def test_a_corrupt_config_file_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"loop": {"seed"')
    with pytest.raises(ValueError, match=r"run config file '.*config\.json' is corrupt"):
        check_same_config(path, current())

"""Bad settings fail at once with an error naming the problem, before any data is collected."""

import dataclasses

import numpy as np
import pytest

from mbmeta.commands.train import build_parser
from mbmeta.commands.train import run as train_main
from mbmeta.control.settings import AgentSettings
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.runs.checks import check_trainer
from mbmeta.runs.loop import run_training
from mbmeta.training.fitting import fit_model

from .conftest import AGENT, DATA, MODEL, tiny_settings


def _settings(tmp_path, loop=None, agent=None, model=None, trainer=None, data=None):
    s = tiny_settings(tmp_path / "run", **(loop or {}))
    s["agent"] = AgentSettings.from_config({**AGENT, **(agent or {})})
    s["model"].update(model or {})
    s["trainer"].update(trainer or {})
    s["data"].update(data or {})
    return s


@pytest.mark.parametrize(
    "group, change, error, message",
    [
        ("loop", {"family": "pendullum"}, KeyError, r"unknown task family 'pendullum'; valid families are .*pendulum"),
        ("loop", {"iterations": -1}, ValueError, r"loop\.iterations must be an int >= 0, got -1"),
        ("loop", {"initial_episodes": 0}, ValueError, r"loop\.initial_episodes must be an int >= 1, got 0"),
        ("loop", {"initial_policy": "expert"}, ValueError, r"loop\.initial_policy must be 'random' or 'scripted'"),
        ("loop", {"initial_policy": "scripted"}, ValueError, r"family 'pendulum' has no scripted controller"),
        ("loop", {"initial_noise": -0.1}, ValueError, r"loop\.initial_noise must be a number >= 0, got -0\.1"),
        ("loop", {"initial_scale": 0.0}, ValueError, r"loop\.initial_scale must be a number in \(0, 1\], got 0\.0"),
        ("loop", {"initial_scale": 1.5}, ValueError, r"loop\.initial_scale must be a number in \(0, 1\], got 1\.5"),
        ("loop", {"episodes_per_iteration": 0}, ValueError, r"loop\.episodes_per_iteration must be an int >= 1"),
        ("loop", {"num_envs": -2}, ValueError, r"loop\.num_envs must be an int >= 1, got -2"),
        ("loop", {"epochs_per_iteration": 0}, ValueError, r"loop\.epochs_per_iteration must be an int >= 1"),
        ("agent", {"horizon": 0}, ValueError, r"agent\.horizon must be an int >= 1, got 0"),
        ("agent", {"context_length": -1}, ValueError, r"agent\.context_length must be an int >= 1"),
        ("agent", {"context_length": 7}, ValueError, r"agent\.context_length 7 differs from data\.context_length 5"),
        ("agent", {"discount": 0.0}, ValueError, r"agent\.discount must be in \(0, 1\]"),
        ("agent", {"disagreement_penalty": -1.0}, ValueError, r"agent\.disagreement_penalty must be >= 0, got -1"),
        ("model", {"adaptation": "magic"}, ValueError, r"model settings.*magic"),
        ("model", {"hidden_size": [8]}, ValueError, r"model settings.*hidden_size"),
        ("model", {"ensemble_size": 0}, ValueError, r"model settings.*ensemble_size"),
        ("trainer", {"max_epochs": 3}, ValueError, r"trainer options \['max_epochs'\] are set by the loop"),
        ("trainer", {"strategy": "ddp", "devices": 2}, ValueError, r"strategy 'ddp'.*ddp_spawn"),
        ("trainer", {"devices": 2}, ValueError, r"strategy 'auto' on devices=2.*repeat data collection"),
        ("trainer", {"gradient_clip_valu": 1.0}, ValueError, r"trainer settings.*gradient_clip_valu"),
        ("trainer", {"accelerator": "gpu"}, ValueError, r"trainer settings.*'accelerator': 'gpu'"),
        ("model", {"lr": -0.001}, ValueError, r"model settings.*lr must be a number > 0, got -0\.001"),
        ("model", {"weight_decay": -1.0}, ValueError, r"model settings.*weight_decay must be a number >= 0"),
        ("data", {"batch_size": 0}, ValueError, r"batch_size must be > 0 \(an int\), got 0"),
        ("data", {"context_length": 0}, ValueError, r"context_length must be > 0 \(an int\), got 0"),
        ("data", {"val_fraction": 1.0}, ValueError, r"val_fraction must lie in \[0, 1\), got 1\.0"),
        ("data", {"context_sourse": "episode"}, ValueError, r"data settings.*context_sourse"),
    ],
)
def test_bad_settings_fail_before_collecting(tmp_path, group, change, error, message):
    settings = _settings(tmp_path, **{group: change})
    with pytest.raises(error, match=message):
        run_training(**settings)
    # Nothing committed: the corrected command starts afresh instead of being refused as "different settings".
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").iterdir())


@pytest.mark.parametrize(
    "planner, message",
    [
        ("cme", r"unknown planner 'cme'; valid names are \['cem', 'icem'"),
        ({"class_path": "cem", "init_args": {"population": 0}}, r"planner 'cem': population must be > 0, got 0"),
        ({"class_path": "cem", "init_args": {"popsize": 10}}, r"planner 'cem' has no option\(s\) \['popsize'\]"),
    ],
)
def test_bad_planner_settings_fail_when_the_settings_are_made(planner, message):
    # Earlier than the loop's checks: the settings cannot even be made, so nothing can be collected with them.
    with pytest.raises(ValueError, match=message):
        AgentSettings.from_config({**AGENT, "planner": planner})


@pytest.mark.parametrize(
    "trainer",
    [{}, {"devices": 1}, {"strategy": "ddp_spawn", "devices": 2}, {"accelerator": "cpu", "devices": [0]}],
)
def test_single_process_and_spawning_trainers_are_accepted(trainer):
    check_trainer(trainer)


def test_loop_refuses_to_run_inside_a_multi_process_launcher(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="WORLD_SIZE > 1"):
        check_trainer({})


def test_fitting_an_empty_buffer_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="the buffer holds no episodes"):
        fit_model(
            None,
            EpisodeBuffer(),
            model=MODEL,
            data=DATA,
            trainer={},
            max_epochs=1,
            logger=False,
            seed=0,
            root_dir=tmp_path,
        )


def test_too_short_episodes_for_the_segments_is_a_clear_error(tmp_path):
    buffer = EpisodeBuffer()
    done = np.zeros(4, bool)
    done[-1] = True
    buffer.add_episode(np.zeros((4, 3)), np.zeros((4, 1)), np.zeros(4), np.ones((4, 3)), done, ~done & done, {"m": 1})
    with pytest.raises(ValueError, match="MetaDataModule"):
        fit_model(
            None, buffer, model=MODEL, data=DATA, trainer={}, max_epochs=1, logger=False, seed=0, root_dir=tmp_path
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--loop.no_such_option", "1"], "no_such_option"),
        (["--model.hidden_sizes", "wide"], "hidden_sizes"),
        (["--agent.horizon", "1.5"], "horizon"),
        (["--agent.planner", "icem", "--agent.planner.popsize", "300"], "popsize"),
        (["--agent.planner", "icem", "--agent.planner.population", "many"], "population"),
        (["--agent.planner", "cme"], "cme"),
        (["--loop.vectorization", "threads"], "vectorization"),
        (["--model.seed", "1"], "model.seed"),  # loop.seed seeds everything
    ],
)
def test_cli_rejects_unknown_keys_and_wrong_types(argv, message, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert message in capsys.readouterr().err


def test_cli_reports_bad_values_in_one_line_without_traceback(tmp_path, capsys):
    code = train_main(["--loop.run_dir", str(tmp_path / "run"), "--agent.horizon", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == "mbmeta train: error: agent.horizon must be an int >= 1, got 0"


def test_cli_unknown_family_lists_valid_names(tmp_path, capsys):
    assert train_main(["--loop.run_dir", str(tmp_path / "run"), "--loop.family", "pendullum"]) == 1
    err = capsys.readouterr().err
    assert "unknown task family 'pendullum'" in err and "cartpole" in err


def test_settings_dataclasses_are_what_the_loop_checks():
    # Guard: every positive-int budget of LoopSettings is validated by check_settings.
    from mbmeta.runs.settings import LoopSettings

    # keep_checkpoints_every and min_transitions (>= 0, 0 off) are checked by LoopSettings itself:
    # test_kept_checkpoints.py, test_min_transitions.py
    others = {"seed", "iterations", "keep_checkpoints_every", "min_transitions"}
    ints = {f.name for f in dataclasses.fields(LoopSettings) if f.type in ("int", int)} - others
    assert ints == {"initial_episodes", "episodes_per_iteration", "num_envs", "epochs_per_iteration"}

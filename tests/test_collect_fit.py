"""Your own data end to end: `mbmeta collect` writes a buffer, `mbmeta fit` fits it, its checkpoint plans."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mbmeta.cli import main
from mbmeta.commands.run_config import LIGHT_AGENT
from mbmeta.data import EpisodeBuffer
from mbmeta.envs import get_family

FIT = [
    "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
    "--model.hidden_sizes", "[16]", "--model.ensemble_size", "2", "--model.context_hidden", "[16]",
    "--model.reward_hidden", "[16]", "--data.samples_per_epoch", "256", "--data.batch_size", "32",
    "--data.context_length", "4", "--data.target_length", "2", "--data.context_source", "episode",
]  # fmt: skip


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "pendulum.npz"
    argv = ["collect", "--family", "pendulum", "--episodes", "4", "--num_envs", "2", "--out", str(out)]
    assert main([*argv, "--env_kwargs", '{"max_episode_steps": 60}']) == 0
    return out


@pytest.fixture(scope="module")
def fitted(collected, tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    assert main(["fit", "--data.buffer_path", str(collected), "--trainer.default_root_dir", str(root), *FIT]) == 0
    return root / "checkpoints" / "last.ckpt"


def test_collect_writes_a_buffer_of_train_task_episodes(collected):
    buffer = EpisodeBuffer.load(collected)
    family = get_family("pendulum")
    assert (buffer.num_episodes, buffer.family, buffer.task_names) == (4, "pendulum", family.parameter_names)
    assert set(buffer.episode_lengths) == {60}
    assert all(family.in_split(buffer.task(e), "train") for e in range(4))
    assert (np.abs(buffer.action) <= 2.0).all() and buffer.action.std() > 0.5  # uniform random torques


def test_fit_on_the_collected_buffer_writes_a_checkpoint_that_evaluates_with_light_settings(fitted, tmp_path, capsys):
    assert fitted.is_file()
    out = tmp_path / "eval"
    argv = ["evaluate", "--ckpt", str(fitted), "--tasks", "1", "--episodes_per_task", "1", "--video_tasks", "0"]
    assert main([*argv, "--error_horizon", "2", "--out", str(out)]) == 0  # family: from the fit run's buffer
    results = json.loads((out / "results.json").read_text())
    assert results["family"] == "pendulum"
    light = {**LIGHT_AGENT.as_config(), "context_length": 4}  # K from the fit run's config.yaml
    assert results["agent"] == json.loads(json.dumps(light))
    assert "light defaults" in capsys.readouterr().out


def test_collect_appends_episodes_of_the_checkpoints_agent(collected, fitted, tmp_path):
    out = tmp_path / "more.npz"
    out.write_bytes(collected.read_bytes())
    argv = ["collect", "--ckpt", str(fitted), "--episodes", "1", "--out", str(out), "--append"]
    assert main([*argv, "--agent.planner.population", "16", "--env_kwargs", '{"max_episode_steps": 20}']) == 0
    before, after = EpisodeBuffer.load(collected), EpisodeBuffer.load(out)
    assert after.num_episodes == before.num_episodes + 1 and after.episode_lengths[-1] == 20
    assert np.array_equal(after.obs[: before.num_transitions], before.obs)  # the stored episodes are kept


def test_collect_runs_your_own_policy(tmp_path):
    out = tmp_path / "push.npz"
    argv = ["collect", "--family", "pendulum", "--policy", "collect_policies:push", "--episodes", "2"]
    assert main([*argv, "--out", str(out), "--env_kwargs", '{"max_episode_steps": 10}']) == 0
    assert (EpisodeBuffer.load(out).action == 2.0).all()


def test_appended_episodes_are_new_ones_not_repeats(tmp_path):
    out = tmp_path / "two.npz"
    argv = ["collect", "--family", "pendulum", "--episodes", "1", "--out", str(out), "--env_kwargs"]
    argv += ['{"max_episode_steps": 10}']
    assert main(argv) == 0 and main([*argv, "--append"]) == 0
    buffer = EpisodeBuffer.load(out)
    assert not np.array_equal(buffer.episode(0)["action"], buffer.episode(1)["action"])


def test_an_existing_buffer_is_never_overwritten(collected, tmp_path, capsys):
    out = tmp_path / "kept.npz"
    out.write_bytes(collected.read_bytes())
    assert main(["collect", "--family", "pendulum", "--episodes", "1", "--out", str(out)]) == 1
    assert "exists; pass --append" in capsys.readouterr().err
    assert out.read_bytes() == collected.read_bytes()


def test_collect_scales_random_actions_as_the_loops_initial_scale(tmp_path):
    out = tmp_path / "gentle.npz"
    argv = ["collect", "--family", "pendulum", "--episodes", "2", "--scale", "0.1", "--out", str(out)]
    assert main([*argv, "--env_kwargs", '{"max_episode_steps": 50}']) == 0
    action = EpisodeBuffer.load(out).action
    assert np.abs(action).max() <= 0.2 + 1e-6 and action.std() > 0.05  # within 0.1 of the +-2 torque range


def test_collect_samples_a_validation_split(tmp_path):
    out = tmp_path / "validation.npz"
    argv = [
        "collect",
        "--family",
        "juggler_bounce_servo",
        "--split",
        "validation",
        "--episodes",
        "2",
        "--out",
        str(out),
    ]
    assert main([*argv, "--env_kwargs", '{"max_episode_steps": 5}']) == 0
    buffer, family = EpisodeBuffer.load(out), get_family("juggler_bounce_servo")
    assert all(family.in_split(buffer.task(e), "validation") for e in range(2))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--family", "pendulum", "--policy", "scripted"], "has no scripted controller"),
        (["--family", "pendulum", "--scale", "0"], "--scale must be in (0, 1], got 0.0"),
        (["--family", "pendulum", "--policy", "no_such_module:f"], "cannot import 'no_such_module'"),
        (["--family", "pendulum", "--episodes", "0"], "--episodes must be >= 1"),
        (["--episodes", "1"], "--family is required"),
        (["--family", "pendulum", "--split", "val"], "--split must be train, test or validation, got 'val'"),
        (["--family", "pendulum", "--split", "validation"], "'pendulum': unknown split 'validation'"),
    ],
)
def test_bad_collect_settings_are_one_line(argv, message, tmp_path, capsys):
    assert main(["collect", *argv, "--out", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x.npz").exists()


def test_fit_resumes_from_last_in_its_run_directory(collected, fitted, tmp_path):
    import shutil

    from mbmeta.training.checkpoint import load_checkpoint

    root = tmp_path / "fit"
    shutil.copytree(fitted.parent.parent, root)
    first = load_checkpoint(root / "checkpoints" / "last.ckpt")
    argv = ["fit", "--data.buffer_path", str(collected), "--trainer.default_root_dir", str(root), *FIT]
    assert main([*argv, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0
    resumed = load_checkpoint(root / "checkpoints" / "last.ckpt")
    assert (first["epoch"], resumed["epoch"]) == (0, 1)
    assert resumed["global_step"] == 2 * first["global_step"]  # continued, not restarted

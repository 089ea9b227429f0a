"""End to end on a tiny budget: `mbmeta train` → `evaluate` → `transfer`, and `mbmeta fit` (LightningCLI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wandb_records import wandb_run_record  # tests/wandb_records.py

import mbmeta
from mbmeta.cli import main
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.training.checkpoint import load_module

TINY = [
    "--loop.family", "pendulum",
    "--loop.iterations", "1",
    "--loop.initial_episodes", "3",
    "--loop.episodes_per_iteration", "2",
    "--loop.num_envs", "2",
    "--loop.epochs_per_iteration", "1",
    "--model.adaptation", "context",
    "--model.ensemble_size", "2",
    "--model.hidden_sizes", "[32, 32]",
    "--model.context_hidden", "[32]",
    "--model.reward_hidden", "[32]",
    "--data.samples_per_epoch", "512",
    "--data.batch_size", "64",
    "--data.val_fraction", "0.34",
    "--data.pad_context", "true",
    "--data.context_source", "episode",  # the default, "preceding", is what quickstart's test runs
]  # fmt: skip
TINY_AGENT = [
    "--agent.planner", "cem",
    "--agent.planner.population", "16",
    "--agent.planner.elites", "4",
    "--agent.planner.iterations", "2",
    "--agent.horizon", "5",
]  # fmt: skip


TINY_WANDB = ["--wandb.tags", "[tiny]", "--wandb.project", "mbmeta-tests"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    assert main(["train", *TINY, *TINY_AGENT, "--loop.run_dir", str(run_dir), *TINY_WANDB]) == 0
    return run_dir


def test_train_writes_buffer_checkpoint_state_and_wandb_run(trained_run):
    buffer = EpisodeBuffer.load(trained_run / "buffer.npz")
    assert buffer.num_episodes == 3 + 2  # random episodes + one MPC iteration
    assert buffer.family == "pendulum"
    state = json.loads((trained_run / "state.json").read_text())
    assert state["iteration"] == 1 and state["episodes"] == 5
    module = load_module(trained_run / "model.ckpt")
    assert module.hparams.adaptation == "context"
    assert bool(module.dynamics.normaliser.fitted)
    # W&B ran offline and wrote its run files locally, named and grouped by the run directory
    (wandb_run,) = (trained_run / "wandb").glob("offline-run-*")
    run = wandb_run_record(wandb_run)
    assert (run.display_name, run.project, list(run.tags)) == (trained_run.name, "mbmeta-tests", ["tiny"])
    assert run.run_group.startswith(f"{trained_run.name}-")  # the run directory and its W&B id: ties restarts


def test_train_keeps_a_learning_curve_of_its_iterations(trained_run):
    from mbmeta.runs.learning_curve import read_learning_curve

    buffer = EpisodeBuffer.load(trained_run / "buffer.npz")
    returns = [float(buffer.episode(e)["reward"].sum()) for e in range(buffer.num_episodes)]
    rows = read_learning_curve(trained_run)
    assert [(r["iteration"], r["policy"], r["episodes"]) for r in rows] == [(0, "random", 3), (1, "mpc", 2)]
    # the buffer holds the random episodes first, then the MPC ones (in the order they finished)
    assert rows[0]["return_mean"] == pytest.approx(np.mean(returns[:3]), rel=1e-5)
    assert rows[1]["return_mean"] == pytest.approx(np.mean(returns[3:]), rel=1e-5)
    assert rows[1]["transitions"] == buffer.num_transitions
    assert (trained_run / "learning_curve.png").stat().st_size > 1000


def test_rerunning_a_finished_run_adds_nothing(trained_run):
    before = EpisodeBuffer.load(trained_run / "buffer.npz").num_episodes
    assert main(["train", *TINY, *TINY_AGENT, "--loop.run_dir", str(trained_run), *TINY_WANDB]) == 0
    assert EpisodeBuffer.load(trained_run / "buffer.npz").num_episodes == before
    # Offline, each start is its own W&B run (syncing one id twice would replace the first), in the run's group.
    offline_runs = sorted((trained_run / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2 and offline_runs[0].name.split("-")[-1] != offline_runs[1].name.split("-")[-1]


def test_evaluate_writes_results_plot_and_video(trained_run, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", "--ckpt", str(trained_run / "model.ckpt"), "--tasks", "2", "--episodes_per_task", "1"]
    argv += ["--out", str(out), "--error_horizon", "3"]  # no --agent.*: the run's settings; a video per task
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["family"] == "pendulum" and results["split"] == "test" and results["task_design"] == "balanced"
    assert results["agent"]["horizon"] == 5 and results["agent"]["planner"]["init_args"]["population"] == 16
    stats = results["plan_stats"]["context"]
    assert stats["plan/sequences_per_env_step"] == 16 * 2  # CEM population × iterations, as trained
    assert stats["plan/ms_per_call"] > 0 and stats["plan/fallback_fraction"] == 0.0
    episodes = results["episodes"]
    per_step = sum(e["episode_return"] for e in episodes) / sum(e["length"] for e in episodes)
    assert stats["plan/realised_return_mean"] == pytest.approx(5 * per_step)  # over the horizon, beside the planned
    assert len(episodes) == 2 and {e["method"] for e in episodes} == {"context"}
    from mbmeta.envs import get_family

    family = get_family("pendulum")
    for e in episodes:
        assert family.in_split(family.validate(e["task"]), "test")
        assert e["length"] == 200 and np.isfinite(e["episode_return"])
    assert len(results["prediction_error"]["context"]) == 3
    by_task = results["prediction_error_by_task"]["context"]  # one curve per test task, in the same units
    assert len(by_task) == 2 and all(len(curve) == 3 and min(curve) >= 0 for curve in by_task.values())
    assert (out / "results.csv").read_text().count("\n") == 3  # header + 2 episodes
    assert (out / "results.csv").read_text().splitlines()[0].endswith(",terminated,success")
    rate = results["success_rate"]["context"]["overall"]  # pendulum defines success (upright at the end)
    assert rate == np.mean([e["success"] for e in episodes]) and all(isinstance(e["success"], bool) for e in episodes)
    assert (out / "prediction_error.png").stat().st_size > 1000
    assert (out / "video_context_task0.gif").stat().st_size > 1000
    assert (out / "video_context_task1.gif").stat().st_size > 1000
    assert "overall" in capsys.readouterr().out
    assert list((out / "wandb").glob("offline-run-*"))  # the evaluation was logged to W&B (offline)


def test_evaluate_writes_results_before_filming_the_first_two_tasks(trained_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "eval-default"
    filmed = []

    def record_video(module, family, task, path, **kwargs):
        assert (out / "results.json").is_file() and (out / "results.csv").is_file()  # numbers are safe first
        filmed.append((path.name, kwargs["method"]))
        path.write_bytes(b"GIF89a")
        return path, -12.5

    monkeypatch.setattr("mbmeta.evaluation.video.record_video", record_video)
    argv = ["evaluate", "--ckpt", str(trained_run / "model.ckpt"), "--tasks", "3", "--episodes_per_task", "1"]
    argv += ["--out", str(out), "--error_horizon", "3", "--wandb.tags", "[smoke]", "--labels", "ctx"]
    assert main(argv) == 0
    assert filmed == [("video_ctx_task0.gif", "ctx"), ("video_ctx_task1.gif", "ctx")]  # 2 of the 3 tasks
    printed = capsys.readouterr().out
    assert "video 1/2" in printed and "video 2/2" in printed and "return -12.5" in printed
    assert "evaluating ctx: 3/3 episodes, mean return" in printed  # progress in a log, not only on a terminal
    assert "wandb sync" in printed  # how to upload the offline run
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    run = wandb_run_record(run_dir)
    assert (run.display_name, run.run_group, list(run.tags)) == ("evaluate-eval-default", "eval-default", ["smoke"])


def test_evaluate_films_every_task_when_asked():
    from mbmeta.commands.evaluate import build_parser

    assert build_parser().parse_args(["--ckpt", "m.ckpt", "--video_tasks", "all"]).video_tasks == "all"
    assert build_parser().parse_args(["--ckpt", "m.ckpt"]).video_tasks == 2


def test_transfer_compares_zero_shot_finetuned_and_scratch(trained_run, tmp_path):
    out = tmp_path / "transfer"
    argv = ["transfer", "--ckpt", str(trained_run / "model.ckpt"), "--task", '{"mass": 0.4, "length": 1.6}']
    argv += ["--episodes", "1", "--epochs", "1", "--eval_episodes", "1", "--out", str(out), *TINY_AGENT]
    assert main(argv) == 0
    rows = json.loads((out / "transfer.json").read_text())["rows"]
    assert [(r["method"], r["episodes"]) for r in rows] == [("zero-shot", 0), ("finetune", 1), ("scratch", 1)]
    assert json.loads((out / "transfer.json").read_text())["software"]["mbmeta"] == mbmeta.__version__
    assert all(np.isfinite(r["returns"]).all() for r in rows)
    assert all(len(r["lengths"]) == 1 and len(r["successes"]) == 1 for r in rows)  # balance time / success per episode
    # fine-tuning cut the segments the run trained on (its config.json's data group)
    run_data = json.loads((trained_run / "config.json").read_text())["data"]
    used = json.loads((out / "transfer.json").read_text())["data"]
    segment_fields = ("context_length", "target_length", "pad_context", "min_context", "context_source")
    assert used == {k: run_data[k] for k in segment_fields} and used["context_source"] == "episode"
    (wandb_run,) = (out / "wandb").glob("offline-run-*")  # the comparison went to W&B too
    assert (wandb_run_record(wandb_run).display_name, wandb_run_record(wandb_run).run_group) == ("transfer-transfer",
                                                                                               "transfer")  # fmt: skip


def test_transfer_fits_where_the_trainer_flags_say(trained_run, tmp_path, capsys):
    argv = ["transfer", "--ckpt", str(trained_run / "model.ckpt"), "--task", '{"mass": 0.4, "length": 1.6}']
    argv += ["--episodes", "1", "--epochs", "1", "--out", str(tmp_path / "t"), *TINY_AGENT]
    # the accelerator reaches Lightning's Trainer (which names the bad value) instead of being replaced by "cpu"
    assert main([*argv, "--trainer", '{"accelerator": "no_such_accelerator"}']) == 1
    assert "no_such_accelerator" in capsys.readouterr().err


def test_lightning_cli_fit_on_saved_buffer(trained_run, tmp_path):
    cmd = [sys.executable, "-m", "mbmeta", "fit", "--config", "configs/fit_pendulum.yaml"]
    cmd += ["--data.buffer_path", str(trained_run / "buffer.npz"), "--trainer.max_epochs", "1"]
    cmd += ["--model.hidden_sizes", "[16]", "--model.ensemble_size", "2"]
    cmd += ["--data.samples_per_epoch", "256", "--model.adaptation", "recurrent", "--data.context_source", "episode"]
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "MBMETA_FIT_ROOT_DIR": str(tmp_path)}  # the run directory (logger and checkpoints)
    printed = subprocess.run([*cmd, "--print_config"], capture_output=True, text=True, cwd=repo, timeout=300, env=env)
    assert printed.returncode == 0, printed.stderr
    assert "adaptation: recurrent" in printed.stdout and "context_source: episode" in printed.stdout
    proc = subprocess.run([*cmd, "--wandb.tags", "[fit]"], capture_output=True, text=True, cwd=repo, timeout=600,
                          env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one stable checkpoint beside the run's config, and the command says where
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ckpt")) == [Path("checkpoints/last.ckpt")]
    assert (tmp_path / "config.yaml").is_file()
    assert f"checkpoint: {tmp_path / 'checkpoints' / 'last.ckpt'}" in proc.stdout.splitlines()
    assert load_module(tmp_path / "checkpoints" / "last.ckpt").hparams.adaptation == "recurrent"
    (wandb_run,) = (tmp_path / "wandb").glob("offline-run-*")
    run = wandb_run_record(wandb_run)
    assert (run.display_name, run.run_group, list(run.tags)) == (tmp_path.name, tmp_path.name, ["fit"])

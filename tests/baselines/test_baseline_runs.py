"""Baselines with real stable-baselines3 on tiny budgets: the command's files (curve, results in the evaluate format,
model), reloading the model, scratch mode, resuming after an interruption, and the one-line errors."""

import csv
import json
import sys

import numpy as np
import pytest

pytest.importorskip("stable_baselines3", reason="the baselines extra is not installed: pip install -e '.[baselines]'")

from mbmeta.baselines.curve import CURVE_COLUMNS, read_curve  # noqa: E402
from mbmeta.baselines.policy import SB3Policy  # noqa: E402
from mbmeta.baselines.runner import BaselineSettings, load_model, train_baseline  # noqa: E402
from mbmeta.commands import baseline  # noqa: E402
from mbmeta.envs import get_family  # noqa: E402
from mbmeta.evaluation.episodes import evaluate_policy, evaluation_tasks  # noqa: E402
from mbmeta.evaluation.reports import write_results  # noqa: E402

TINY_PPO = {"n_steps": 128, "batch_size": 64, "n_epochs": 2}
NO_WANDB = {"mode": "disabled"}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mbmeta baseline: error: "), err
    return err[0]


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """`mbmeta baseline` with PPO, multitask on the pendulum: 512 steps, evaluated every 200 on 3 test tasks."""
    out = tmp_path_factory.mktemp("ppo") / "ppo-s0"
    argv = ["--family", "pendulum", "--algo", "ppo", "--mode", "multitask", "--total_steps", "512"]
    argv += ["--eval_every", "200", "--eval_tasks", "3", "--final_episodes", "2", "--seed", "0"]
    argv += ["--hparams", json.dumps(TINY_PPO), "--out", str(out), "--wandb.tags", "[test]"]
    assert baseline.run(argv) == 0
    return out


def test_the_learning_curve_has_its_columns_and_increasing_steps(ppo_run):
    rows = _csv(ppo_run / "learning_curve.csv")
    assert tuple(rows[0]) == CURVE_COLUMNS
    steps = [int(r["env_steps"]) for r in rows]
    assert steps[0] == 0 and steps == sorted(set(steps))  # the untrained policy first, then strictly increasing
    assert steps[1:] == [200, 400, 512]  # every 200 steps, then the end of training
    assert all(int(r["episodes"]) == 3 for r in rows)  # 3 test tasks x 1 episode
    assert all(float(r["length_mean"]) == 200 for r in rows)  # the pendulum never terminates


def test_the_results_csv_is_the_evaluate_format(ppo_run, tmp_path):
    pendulum = get_family("pendulum")
    rows = _csv(ppo_run / "results.csv")
    records = json.loads((ppo_run / "results.json").read_text())["episodes"]
    write_results([], tmp_path)  # the header evaluate writes, with the family's task columns
    expected = ["method", "task_id", "task.length", "task.mass", "seed", "episode_return", "length", "terminated"]
    assert list(rows[0]) == [*expected, "success"]
    assert len(rows) == len(records) == 3 * 2
    tasks = evaluation_tasks(pendulum, "test", 3)
    for row in rows:
        assert row["method"] == "ppo-multitask"
        task = tasks[int(row["task_id"])].as_dict()
        assert (float(row["task.mass"]), float(row["task.length"])) == pytest.approx((task["mass"], task["length"]))
        assert pendulum.in_split(tasks[int(row["task_id"])], "test")
    assert [r["seed"] for r in rows] == ["0", "1"] * 3


def test_the_saved_model_reloads_and_evaluates_the_same(ppo_run):
    pendulum = get_family("pendulum")
    model = load_model(ppo_run)
    records = evaluate_policy(
        SB3Policy(model), pendulum, evaluation_tasks(pendulum, "test", 3), method="ppo-multitask", episodes_per_task=2
    )
    saved = [float(r["episode_return"]) for r in _csv(ppo_run / "results.csv")]
    assert [round(r.episode_return, 4) for r in records] == pytest.approx(saved, abs=1e-3)
    action, _ = model.predict(np.zeros((5, pendulum.obs_dim), np.float32), deterministic=True)
    assert action.shape == (5, pendulum.action_dim)


def test_the_run_logs_to_wandb_offline_and_a_finished_run_is_not_trained_again(ppo_run, capsys):
    assert list((ppo_run / "wandb").glob("offline-run-*"))
    before = (ppo_run / "model.zip").stat().st_mtime_ns
    argv = ["--family", "pendulum", "--algo", "ppo", "--mode", "multitask", "--total_steps", "512"]
    argv += ["--eval_every", "200", "--eval_tasks", "3", "--final_episodes", "2", "--seed", "0"]
    argv += ["--hparams", json.dumps(TINY_PPO), "--out", str(ppo_run), "--wandb.tags", "[test]"]
    assert baseline.run(argv) == 0
    assert "finished run: nothing to do" in capsys.readouterr().out
    assert (ppo_run / "model.zip").stat().st_mtime_ns == before


def test_sac_from_scratch_keeps_one_test_task(tmp_path):
    juggler = get_family("juggler_balance")
    settings = BaselineSettings(
        family="juggler_balance", algo="sac", mode="scratch", task_index=2, total_steps=300, eval_every=150,
        eval_tasks=8, eval_episodes=1, final_episodes=2, hparams={"learning_starts": 100, "buffer_size": 1000},
    )  # fmt: skip
    result = train_baseline(settings, tmp_path / "sac", wandb_init=NO_WANDB, log=lambda text: None)
    task = evaluation_tasks(juggler, "test", 8)[2].as_dict()
    assert {tuple(sorted(r.task.items())) for r in result.records} == {tuple(sorted(task.items()))}
    assert [p.env_steps for p in result.curve] == [0, 150, 300]
    assert all(p.episodes == 1 for p in result.curve)
    # the juggler's episodes end when the ball is lost: length is the balance time, success a full episode
    assert all(1 <= r.length <= 500 and r.success == (r.length == 500) for r in result.records)
    assert type(load_model(tmp_path / "sac")).__name__ == "SAC"


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    settings = BaselineSettings(
        family="pendulum", algo="ppo", total_steps=768, eval_every=256, eval_tasks=2, final_episodes=1,
        checkpoint_every=256, hparams=TINY_PPO,
    )  # fmt: skip
    out = tmp_path / "run"

    def interrupt_at_512(text: str) -> None:
        if text.strip().startswith("512 steps"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_baseline(settings, out, wandb_init=NO_WANDB, log=interrupt_at_512)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["env_steps"] == 256 and (out / "checkpoint" / "model-256.zip").is_file()
    assert not (out / "model.zip").exists()
    lines = []
    result = train_baseline(settings, out, wandb_init=NO_WANDB, log=lines.append)
    assert result.resumed_from == 256 and "from its checkpoint at 256" in lines[0]
    steps = [p.env_steps for p in read_curve(out / "learning_curve.csv")]
    assert steps == [0, 256, 512, 768]  # the point at 512 was dropped with the interruption and measured again
    assert [p.name for p in (out / "checkpoint").iterdir()] == ["state.json"]  # finished: checkpoint files removed
    assert (out / "model.zip").is_file() and len(result.records) == 2


def test_other_settings_in_the_same_directory_are_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({**BaselineSettings().as_config(), "seed": 1}))
    assert baseline.run(["--out", str(tmp_path)]) == 1
    assert "holds a baseline run with other settings (seed: 1 there, 0 now)" in _one_error_line(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--algo", "dqn"], "unknown algo 'dqn'; valid algos are ppo, sac"),
        (["--mode", "meta"], "unknown mode 'meta'; valid modes are multitask, scratch"),
        (["--total_steps", "-5"], "total_steps must be >= 1, got -5"),
        (["--eval_every", "0"], "eval_every must be >= 1, got 0"),
        (["--eval_task_design", "lhs"], "eval_task_design must be one of balanced, even, got 'lhs'"),
        (["--family", "no_such_family"], "no_such_family"),
        (["--mode", "scratch", "--task_index", "8"], "task_index 8 is out of range: 8 test tasks are evaluated"),
        (["--hparams", '{"n_step": 64}'], "PPO has no hyperparameter(s) ['n_step']"),
    ],
)
def test_bad_settings_are_one_line(argv, message, tmp_path, capsys):
    assert baseline.run([*argv, "--out", str(tmp_path / "run"), "--wandb.mode", "disabled"]) == 1
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "run" / "model.zip").exists()


def test_without_stable_baselines3_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "stable_baselines3" or m.startswith("stable_baselines3.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # `import stable_baselines3` raises ImportError
    assert baseline.run(["--out", str(tmp_path / "run")]) == 1
    line = _one_error_line(capsys)
    assert "stable-baselines3, which is not installed" in line and "pip install -e '.[baselines]'" in line

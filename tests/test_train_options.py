"""`mbmeta train`'s trainer and W&B options reach the loop: dotted `--trainer.*` flags beside the JSON mapping."""

from __future__ import annotations

import pytest

from mbmeta.commands import train


@pytest.fixture
def loop_arguments(monkeypatch, tmp_path):
    seen = {}

    def run_training(loop, **kwargs):
        seen.update(kwargs)
        return tmp_path / "model.ckpt"

    monkeypatch.setattr("mbmeta.runs.loop.run_training", run_training)
    return seen


def test_dotted_trainer_flags_reach_the_loop(loop_arguments, tmp_path):
    argv = ["--loop.run_dir", str(tmp_path), "--trainer.accelerator", "cpu", "--trainer.gradient_clip_val", "1.0"]
    assert train.run(argv) == 0
    assert loop_arguments["trainer"] == {"accelerator": "cpu", "gradient_clip_val": 1.0}


def test_dotted_flags_add_to_a_mapping_given_before_them(loop_arguments, tmp_path):
    argv = ["--loop.run_dir", str(tmp_path), "--trainer", '{"devices": 1, "accelerator": "gpu"}']
    assert train.run([*argv, "--trainer.accelerator", "cpu"]) == 0
    assert loop_arguments["trainer"] == {"devices": 1, "accelerator": "cpu"}


def test_the_reserved_max_epochs_names_its_replacement(tmp_path, capsys):
    assert train.run(["--loop.run_dir", str(tmp_path / "run"), "--trainer.max_epochs", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert "max_epochs" in err and "epochs_per_iteration" in err and len(err.splitlines()) == 1


def test_wandb_flags_reach_the_loop_and_only_given_ones_override(loop_arguments, tmp_path, monkeypatch):
    argv = ["--loop.run_dir", str(tmp_path), "--wandb.project", "p", "--wandb.tags", "[a, b]"]
    assert train.run([*argv, "--wandb.entity", "team"]) == 0
    assert loop_arguments["wandb"] == {"project": "p", "tags": ["a", "b"], "entity": "team", "log_model": True}


def test_checkpoints_are_artifacts_only_online(tmp_path):
    from mbmeta.evaluation.reports import log_checkpoint_artifact

    class Run:
        def __init__(self, offline):
            self.offline, self.logged = offline, []

        def log_artifact(self, artifact):
            self.logged.append(artifact)

    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"weights")
    offline, online = Run(offline=True), Run(offline=False)
    assert not log_checkpoint_artifact(offline, ckpt, name="model-run 1") and offline.logged == []
    assert log_checkpoint_artifact(online, ckpt, name="model-run 1")
    (artifact,) = online.logged
    assert (artifact.name, artifact.type) == ("model-run-1", "model")
    assert list(artifact.manifest.entries) == ["model.ckpt"]


def test_quickstart_names_its_wandb_runs_from_the_flags(monkeypatch, tmp_path):
    from wandb_records import wandb_run_record  # tests/wandb_records.py

    from mbmeta.commands import quickstart

    def run_training(loop, *, logger, **kwargs):
        logger.experiment.finish()  # the W&B run quickstart configured, as the loop would start it
        raise KeyboardInterrupt  # stop after the first method

    monkeypatch.setattr("mbmeta.runs.loop.run_training", run_training)
    out = tmp_path / "qs"
    argv = ["--out", str(out), "--methods", "context", "--wandb.project", "p", "--wandb.tags", "[q]"]
    assert quickstart.run(argv) == 130
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    run = wandb_run_record(run_dir)
    assert (run.project, run.display_name, run.run_group, list(run.tags)) == ("p", "context", "qs", ["q"])

"""Scale-out on Lightning's and Gymnasium's own engines: DDP fitting across processes, async collection."""

import subprocess
import sys

import pytest
import torch

from mbmeta.commands.fit import MetaCLI, trainer_defaults
from mbmeta.runs.loop import run_training
from mbmeta.training.callbacks import DivergenceCallback
from mbmeta.training.checkpoint import load_checkpoint, load_module
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.module import MetaDynamicsModule

from .conftest import DATA, MODEL, subprocess_env, tiny_settings
from .runs import assert_same_run


def _fit_argv(buffer, root_dir, *extra):
    argv = [sys.executable, "-m", "mbmeta", "fit", "--data.buffer_path", str(buffer)]
    argv += [f"--data.{k}={v}" for k, v in DATA.items()]
    argv += ["--data.samples_per_epoch=256", "--model.hidden_sizes=[16, 16]", "--model.ensemble_size=2"]
    argv += ["--model.context_hidden=[16]", "--model.reward_hidden=[16]", "--trainer.max_epochs=2"]
    argv += [f"--trainer.default_root_dir={root_dir}", "--trainer.enable_progress_bar=false"]
    return argv + list(extra)


def test_fit_with_ddp_on_two_cpu_processes(tiny_run, tmp_path):
    argv = _fit_argv(
        tiny_run / "buffer.npz",
        tmp_path / "out",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
    )
    proc = subprocess.run(argv, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output  # a second process really trained
    checkpoints = sorted((tmp_path / "out").rglob("*.ckpt"))
    assert len(checkpoints) == 1, checkpoints
    # 256 samples / 32 per batch = 8 batches per epoch, shared by 2 ranks: 4 optimiser steps per epoch each.
    assert load_checkpoint(checkpoints[0])["global_step"] == 2 * 4
    load_module(checkpoints[0])


def test_fit_always_has_the_divergence_callback(tiny_run, tmp_path):
    cli = MetaCLI(
        MetaDynamicsModule,
        MetaDataModule,
        run=False,
        args=["--data.buffer_path", str(tiny_run / "buffer.npz"), "--trainer.logger=false"],
        trainer_defaults={**trainer_defaults(str(tmp_path)), "logger": False},
    )
    assert any(isinstance(c, DivergenceCallback) for c in cli.trainer.callbacks)


@pytest.mark.slow
def test_async_collection_gives_the_same_run_as_sync(tmp_path, tiny_run):
    run_training(**tiny_settings(tmp_path / "async", vectorization="async"))
    assert_same_run(tmp_path / "async", tiny_run)


@pytest.mark.slow
def test_loop_fits_with_ddp_spawn_on_two_processes(tmp_path):
    settings = tiny_settings(tmp_path / "spawn")
    settings["trainer"].update({"strategy": "ddp_spawn", "devices": 2, "accelerator": "cpu"})
    ckpt = run_training(**settings)
    trained = load_module(ckpt).state_dict()
    # The weights the spawned processes trained came back to the loop (they differ from the initial weights).
    initial = MetaDynamicsModule(3, 1, 2, seed=settings["loop"].seed + 1000, **MODEL).state_dict()
    changed = [k for k in initial if k.endswith("weight") and not torch.equal(initial[k], trained[k])]
    assert changed and all(torch.isfinite(v).all() for v in trained.values() if v.is_floating_point())

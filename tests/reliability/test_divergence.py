"""A NaN loss stops fitting with a clear message, and the last good checkpoint and buffer are kept."""

import json

import pytest
import pytorch_lightning as pl
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.runs.loop import run_training
from mbmeta.training.callbacks import DivergenceCallback, DivergenceError
from mbmeta.training.checkpoint import load_module
from mbmeta.training.fitting import fit_model

from .conftest import DATA, LOOP, MODEL, tiny_settings


class PoisonWeights(pl.Callback):
    """Makes one weight NaN at a given training step of the n-th fit (what a diverging optimiser step does)."""

    def __init__(self, fit_number: int, step: int = 1):
        self.fit_number, self.step, self.fits = fit_number, step, 0

    def on_fit_start(self, trainer, pl_module):
        self.fits += 1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.fits == self.fit_number and trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).view(-1)[0] = float("nan")


def _fit(buffer, tmp_path, callbacks, check_every=10, **trainer):
    return fit_model(
        None,
        buffer,
        model=dict(MODEL),
        data={**DATA, "samples_per_epoch": 32 * 8},
        trainer={"enable_progress_bar": False, "callbacks": [*callbacks, DivergenceCallback(check_every)], **trainer},
        max_epochs=2,
        logger=False,
        seed=0,
        root_dir=tmp_path,
    )


@pytest.mark.parametrize("check_every", [1, 3, 100])
def test_nan_loss_stops_fitting_with_a_clear_message(tiny_run, tmp_path, check_every):
    buffer = EpisodeBuffer.load(tiny_run / "buffer.npz")
    with pytest.raises(DivergenceError, match=r"fitting diverged: the training loss became NaN/inf at step 1") as err:
        _fit(buffer, tmp_path, [PoisonWeights(fit_number=1, step=1)], check_every)
    assert "lower learning rate" in str(err.value)


def test_finite_fit_passes_the_callback(tiny_run, tmp_path):
    module, trainer = _fit(EpisodeBuffer.load(tiny_run / "buffer.npz"), tmp_path, [])
    assert trainer.global_step == 16
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_divergence_is_caught_before_a_lightning_checkpoint_saves_the_weights(tiny_run, tmp_path):
    # ModelCheckpoint saves at the end of every epoch; the poisoned epoch must never reach a saved file.
    buffer = EpisodeBuffer.load(tiny_run / "buffer.npz")
    saver = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpts", save_top_k=-1, every_n_epochs=1)
    with pytest.raises(DivergenceError):
        _fit(buffer, tmp_path, [saver, PoisonWeights(fit_number=1, step=9)], 100, enable_checkpointing=True)
    saved = sorted((tmp_path / "ckpts").glob("*.ckpt"))
    assert [p.name for p in saved] == ["epoch=0-step=8.ckpt"]
    assert all(torch.isfinite(p).all() for p in load_module(saved[0]).parameters())


def test_loop_keeps_the_last_good_checkpoint_when_a_fit_diverges(tmp_path):
    settings = tiny_settings(tmp_path, iterations=2)
    settings["trainer"]["callbacks"] = [PoisonWeights(fit_number=2)]
    with pytest.raises(DivergenceError, match=r"iteration 2 of .*Kept: the checkpoint of iteration 1"):
        run_training(**settings)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["iteration"] == 1
    assert state["episodes"] == LOOP["initial_episodes"] + LOOP["episodes_per_iteration"]
    module = load_module(tmp_path / "model.ckpt")
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert load_module(tmp_path / state["checkpoint"]).state_dict().keys() == module.state_dict().keys()
    assert EpisodeBuffer.load(tmp_path / "buffer.npz").num_episodes == state["episodes"]
    # Fixed (here: no more poison), the same command resumes and completes.
    settings = tiny_settings(tmp_path, iterations=2)
    run_training(**settings)
    assert json.loads((tmp_path / "state.json").read_text())["iteration"] == 2

"""Lightning callbacks that keep long fits safe.

:class:`DivergenceCallback` stops fitting as soon as the loss or the weights stop being finite, with an error that
says where and what to try, before any checkpoint callback can save the broken weights.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor


class DivergenceError(RuntimeError):
    """Fitting produced a non-finite loss or non-finite weights."""


class DivergenceCallback(pl.Callback):
    """Raise :class:`DivergenceError` when the training loss or any weight becomes NaN/inf.

    The per-batch check stays on the device (a running ``all finite`` flag); it is read on the host only every
    ``check_every_n_steps`` batches, before every validation run and at the end of every training epoch. The
    pre-validation and end-of-epoch checks run before Lightning's checkpoint callbacks (which Lightning always
    orders last), so a diverged model is never saved by them; the last checkpoint written stays the last good one.

    Args:
        check_every_n_steps: how often (in training batches) to read the flag on the host; 1 stops at the first bad
            batch at the cost of one device-to-host sync per step.
    """

    def __init__(self, check_every_n_steps: int = 10) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.check_every_n_steps = int(check_every_n_steps)
        self._finite: Tensor | None = None  # device flag: every loss since the last check was finite
        self._first_bad_step: Tensor | None = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Remember the step this batch belongs to (Lightning advances ``global_step`` before the batch ends)."""
        self._step = trainer.global_step

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Fold this batch's loss into the device flag; read the flag every ``check_every_n_steps`` batches."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, Tensor):
            ok = torch.isfinite(loss.detach()).all()
            if self._finite is None:
                self._finite = ok
                self._first_bad_step = torch.full_like(ok, -1, dtype=torch.long)
            step = torch.full_like(self._first_bad_step, getattr(self, "_step", trainer.global_step))
            # Remember the first step whose loss was bad, without leaving the device.
            self._first_bad_step = torch.where(self._finite & ~ok, step, self._first_bad_step)
            self._finite = self._finite & ok
        if (batch_idx + 1) % self.check_every_n_steps == 0:
            self.check(trainer, pl_module, "training")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Check before validation (and so before any checkpoint saved at its end)."""
        if not trainer.sanity_checking:
            self.check(trainer, pl_module, "training")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Check at the end of every epoch (before end-of-epoch checkpoints)."""
        self.check(trainer, pl_module, "training")

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Reset the flag and refuse to start from non-finite weights."""
        self._finite, self._first_bad_step = None, None
        bad = _non_finite_parameters(pl_module)
        if bad:
            raise DivergenceError(
                f"the model's weights are already NaN/inf before fitting ({', '.join(bad[:5])}); "
                "start from the last good checkpoint"
            )

    def check(self, trainer: pl.Trainer, pl_module: pl.LightningModule, phase: str) -> None:
        """Raise :class:`DivergenceError` if a loss since the last check, or any weight, is NaN/inf."""
        loss_ok = True if self._finite is None else bool(self._finite)
        bad = [] if not loss_ok else _non_finite_parameters(pl_module)
        if loss_ok and not bad:
            return
        if not loss_ok:
            first = int(self._first_bad_step) if self._first_bad_step is not None else trainer.global_step
            what = f"the {phase} loss became NaN/inf at step {first}"
        else:
            what = f"weights became NaN/inf ({', '.join(bad[:5])})"
        lr = getattr(getattr(pl_module, "hparams", None), "lr", None)
        hint = f" (lr is {lr:g})" if isinstance(lr, float) else ""
        raise DivergenceError(
            f"fitting diverged: {what} (epoch {trainer.current_epoch}). Stopped before saving the broken weights; "
            f"the last good checkpoint is kept. Try a lower learning rate{hint}, gradient clipping "
            "(trainer gradient_clip_val) or check the data for extreme values."
        )


def _non_finite_parameters(module: torch.nn.Module) -> list[str]:
    """Names of parameters with a NaN/inf entry (one host sync for all of them)."""
    named = [(n, p) for n, p in module.named_parameters()]
    if not named:
        return []
    flags = torch.stack([torch.isfinite(p.detach()).all() for _, p in named]).cpu()
    return [n for (n, _), ok in zip(named, flags.tolist(), strict=True) if not ok]

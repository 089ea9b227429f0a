"""LightningModule that meta-trains a :class:`~mbmeta.models.dynamics.MetaDynamicsModel`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import Tensor

from mbmeta.models.checkpoint import OPTIMISER_HPARAMS, CheckpointError, load_checkpoint, load_weights, model_hparams
from mbmeta.models.dynamics import FinetuneMode, MetaDynamicsModel
from mbmeta.types import MetaBatch


class MetaDynamicsModule(pl.LightningModule):
    """Meta-trains a dynamics model on batches of (context, target) segments.

    Deliberate deviation from DESIGN.md: the model is described by plain typed arguments (method name, sizes,
    learning rate…) rather than ``class_path`` components. Plain arguments keep ``save_hyperparameters`` and
    ``load_from_checkpoint`` self-contained (no importable component specs inside the checkpoint) and give a flat
    command line (``--model.adaptation gradient --model.inner_steps 3``).

    Each step adapts on the context and scores teacher-forced one-step predictions of the targets (see
    :meth:`MetaDynamicsModel.loss`). Logged: ``train/*`` and ``val/*`` loss terms and the open-loop prediction error
    at every horizon ``val/mse_h1 .. val/mse_hM`` (normalised observation units; in training computed on the steps
    Lightning logs, every ``trainer.log_every_n_steps``).

    The normaliser is fitted in :meth:`on_fit_start` from ``trainer.datamodule.statistics()`` unless it was fitted
    already (:meth:`fit_normaliser`, or restored from a checkpoint); its statistics and ``fitted`` flag are buffers, so
    ``load_from_checkpoint`` rebuilds the model whole.

    Args:
        obs_dim: O.
        action_dim: A.
        task_dim: T (the number of task parameters; needed by ``oracle``).
        adaptation: ``none`` (PETS ensemble), ``context`` (CaDM), ``gradient`` (GrBAL), ``recurrent`` (ReBAL),
            ``oracle`` (true task parameters; an upper bound).
        ensemble_size: E.
        hidden_sizes: dynamics MLP widths.
        activation: ``silu`` (swish), ``relu``, ``elu``, ``gelu`` or ``tanh``.
        probabilistic: Gaussian outputs trained with NLL; otherwise deterministic with MSE.
        learn_reward: also learn a reward model ``r(s, a, s', z)``.
        reward_hidden: reward MLP widths.
        latent_dim: context size Z of ``context`` / ``recurrent``.
        context_hidden: context-encoder widths of ``context``.
        context_per_member: ``context`` with one encoder per ensemble member (``z`` per member, so the members also
            disagree about the task where their encoders do) instead of CaDM's one shared encoder.
        backward_loss_weight: CaDM backward-dynamics loss weight (0 = off; CaDM uses 0.5).
        inner_steps: inner SGD steps of ``gradient``.
        adapt_last_layers: ``gradient`` adapts only the last this-many layers of each net (0: all; e.g. 1 is
            ANIL-style and trains far faster, as per-environment weight copies are made of that layer only).
        inner_lr: inner SGD step size of ``gradient`` (normalised units).
        learn_inner_lr: learn the inner step size.
        first_order: first-order MAML for ``gradient``.
        inner_grad_clip: L2 bound on ``gradient``'s inner gradient per environment and member (None: unclipped).
        gru_hidden: GRU state size of ``recurrent``.
        max_logvar: initial upper log-variance bound.
        min_logvar: initial lower log-variance bound.
        logvar_bound_weight: weight of the log-variance bound penalty.
        reward_loss_weight: weight of the reward loss.
        known_physics: import path ``"package.module:Class"`` of physics the model is told instead of learning it
            (:class:`~mbmeta.types.KnownPhysics`; e.g. ``mbmeta.envs.juggler_contact:BallContact`` for
            ``juggler_bounce_servo``), or None. See :class:`~mbmeta.models.dynamics.MetaDynamicsModel`.
        physics_loss_weight: weight of the known physics' loss.
        physics_lr: Adam learning rate of the known physics' parameters (a few scalars, often in log space: they
            need larger steps than the networks' weights).
        lr: Adam learning rate.
        weight_decay: decoupled weight decay (AdamW) on weight matrices; biases, log-variance bounds and the inner
            step size are not decayed.
        seed: seed of the weight initialisation.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        task_dim: int = 0,
        adaptation: Literal["none", "context", "gradient", "recurrent", "oracle"] = "context",
        ensemble_size: int = 5,
        hidden_sizes: tuple[int, ...] = (200, 200, 200, 200),
        activation: str = "silu",
        probabilistic: bool = True,
        learn_reward: bool = True,
        reward_hidden: tuple[int, ...] = (200, 200),
        latent_dim: int = 10,
        context_hidden: tuple[int, ...] = (256, 128, 64),
        context_per_member: bool = False,
        backward_loss_weight: float = 0.0,
        inner_steps: int = 1,
        adapt_last_layers: int = 0,
        inner_lr: float = 0.01,
        learn_inner_lr: bool = False,
        first_order: bool = False,
        inner_grad_clip: float | None = None,
        gru_hidden: int = 128,
        max_logvar: float = 0.5,
        min_logvar: float = -10.0,
        logvar_bound_weight: float = 0.01,
        reward_loss_weight: float = 1.0,
        known_physics: str | None = None,
        physics_loss_weight: float = 1.0,
        physics_lr: float = 0.01,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (isinstance(lr, int | float) and lr > 0):
            raise ValueError(f"MetaDynamicsModule: lr must be a number > 0, got {lr!r}")
        if not (isinstance(physics_lr, int | float) and physics_lr > 0):
            raise ValueError(f"MetaDynamicsModule: physics_lr must be a number > 0, got {physics_lr!r}")
        if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
            raise ValueError(f"MetaDynamicsModule: weight_decay must be a number >= 0, got {weight_decay!r}")
        self.save_hyperparameters()
        self.model = MetaDynamicsModel(
            obs_dim,
            action_dim,
            task_dim=task_dim,
            adaptation=adaptation,
            ensemble_size=ensemble_size,
            hidden_sizes=tuple(hidden_sizes),
            activation=activation,
            probabilistic=probabilistic,
            learn_reward=learn_reward,
            reward_hidden=tuple(reward_hidden),
            latent_dim=latent_dim,
            context_hidden=tuple(context_hidden),
            context_per_member=context_per_member,
            backward_loss_weight=backward_loss_weight,
            inner_steps=inner_steps,
            adapt_last_layers=adapt_last_layers,
            inner_lr=inner_lr,
            learn_inner_lr=learn_inner_lr,
            first_order=first_order,
            inner_grad_clip=inner_grad_clip,
            gru_hidden=gru_hidden,
            max_logvar=max_logvar,
            min_logvar=min_logvar,
            logvar_bound_weight=logvar_bound_weight,
            reward_loss_weight=reward_loss_weight,
            known_physics=known_physics,
            physics_loss_weight=physics_loss_weight,
            seed=seed,
        )

    @property
    def dynamics(self) -> MetaDynamicsModel:
        """The trained model (implements ``mbmeta.types.MetaDynamics``)."""
        return self.model

    def fit_normaliser(self, statistics: Mapping[str, Tensor]) -> None:
        """Fit the normaliser from data statistics (keys as :meth:`mbmeta.models.normaliser.Normaliser.fit`)."""
        self.model.normaliser.fit({k: torch.as_tensor(v).to(self.device) for k, v in statistics.items()})

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | os.PathLike[str],
        map_location: str | torch.device | None = "cpu",
        hparams_file: Any = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> MetaDynamicsModule:
        """Rebuild a module from a checkpoint without executing pickled code (replaces Lightning's loader).

        Lightning's inherited loader unpickles arbitrary objects when ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set;
        this one always reads with ``weights_only=True`` (:func:`mbmeta.models.checkpoint.load_checkpoint`),
        builds the module from the saved hyperparameters (``kwargs`` override them, as in Lightning) and loads the
        weights strictly. The module is returned in training mode, as Lightning's loader returns it.

        Raises:
            FileNotFoundError: no file at ``checkpoint_path``.
            CheckpointError: the file is unreadable, unsafe or does not fit this model code (names the file).
            ValueError: ``hparams_file`` or ``strict=False`` (not supported: mbmeta checkpoints carry their
                hyperparameters and must fit exactly).
        """
        if hparams_file is not None or strict is False:
            raise ValueError("MetaDynamicsModule.load_from_checkpoint: hparams_file and strict=False are not supported")
        checkpoint = load_checkpoint(checkpoint_path, map_location)
        saved = checkpoint["hyper_parameters"]
        hparams = {
            **model_hparams(checkpoint, checkpoint_path),
            **{k: saved[k] for k in OPTIMISER_HPARAMS if k in saved},
        }
        try:
            module = cls(**{**hparams, **kwargs})
        except Exception as err:  # a damaged value can fail in any layer's constructor
            raise CheckpointError(
                f"checkpoint {str(checkpoint_path)!r}: its hyperparameters do not build a model: {err}"
            ) from err
        load_weights(module, checkpoint["state_dict"], checkpoint_path)
        return module.to(map_location) if map_location is not None else module

    def configure_finetune(self, mode: FinetuneMode) -> None:
        """Set which weights train: ``all``, ``frozen_encoder`` or ``last_layer`` (call before ``Trainer.fit``)."""
        self.model.configure_finetune(mode)

    def on_fit_start(self) -> None:
        """Fit the normaliser from the datamodule's statistics unless it is fitted already."""
        if bool(self.model.normaliser.fitted):
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "statistics"):
            raise RuntimeError(
                "MetaDynamicsModule: the normaliser is not fitted and the trainer has no datamodule with "
                "statistics(); call module.fit_normaliser(statistics) before Trainer.fit"
            )
        self.fit_normaliser(datamodule.statistics())

    def _log_terms(self, stage: str, terms: Mapping[str, Tensor], batch: MetaBatch) -> None:
        self.log_dict(
            {f"{stage}/{k}": v for k, v in terms.items()},
            batch_size=batch.context.obs.shape[0],
            on_step=stage == "train",
            on_epoch=stage != "train",
            sync_dist=stage != "train",  # epoch means over every DDP rank's share of the validation data
            prog_bar=False,
        )

    def training_step(self, batch: MetaBatch, batch_idx: int) -> Tensor:
        """Loss of one batch; multi-step errors only on the steps Lightning logs (they cost M extra passes)."""
        log_every = max(1, getattr(self.trainer, "log_every_n_steps", 1))
        total, terms = self.model.loss(batch, multi_step=self.global_step % log_every == 0)
        self._log_terms("train", terms, batch)
        return total

    def validation_step(self, batch: MetaBatch, batch_idx: int) -> None:
        """Loss terms and open-loop errors ``val/mse_h1..M`` (epoch means)."""
        _, terms = self.model.loss(batch, multi_step=True)
        self._log_terms("val", terms, batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW over the trainable weights; no decay for biases, log-variance bounds and the inner step size.

        The known physics' parameters are a group of their own, undecayed, at ``physics_lr``.
        """
        decay, no_decay, physics = [], [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith("physics."):
                physics.append(p)
            else:
                (decay if name.rsplit(".", 1)[-1].startswith("weight") else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.hparams.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
            {"params": physics, "weight_decay": 0.0, "lr": self.hparams.physics_lr},
        ]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=self.hparams.lr)

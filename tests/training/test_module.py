import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.models import MetaDynamicsModel, transition_statistics
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import MetaBatch, Transition

OBS, A, T, K, M = 2, 1, 1, 6, 4
SMALL = dict(
    ensemble_size=2, hidden_sizes=(16, 16), reward_hidden=(8,), latent_dim=3, context_hidden=(8,), gru_hidden=8
)


def oscillator(gain: torch.Tensor, steps: int, g: torch.Generator) -> Transition:
    """Driven oscillator with a per-row hidden gain: fields [B, steps, ...]."""
    state = torch.randn(gain.shape[0], 2, generator=g)
    actions = torch.rand(gain.shape[0], steps, 1, generator=g) * 2 - 1
    obs, nxt = [], []
    for t in range(steps):
        v = state[:, 1] + 0.2 * (gain * actions[:, t, 0] - state[:, 0])
        new = torch.stack([state[:, 0] + 0.2 * v, v], -1)
        obs.append(state)
        nxt.append(new)
        state = new
    obs, nxt = torch.stack(obs, 1), torch.stack(nxt, 1)
    return Transition(obs, actions, nxt, -(nxt[..., 0] ** 2), torch.zeros(obs.shape[:2], dtype=torch.bool))


def random_batch(n: int, g: torch.Generator) -> MetaBatch:
    gain = torch.rand(n, generator=g) + 0.5
    traj = oscillator(gain, K + M, g)
    return MetaBatch(
        Transition(*(f[:, :K] for f in traj)),
        Transition(*(f[:, K:] for f in traj)),
        gain[:, None],
        torch.ones(n, K, dtype=torch.bool),
    )


class Segments(Dataset):
    def __init__(self, batch: MetaBatch) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return self.batch.task.shape[0]

    def __getitem__(self, i):
        b = self.batch
        return MetaBatch(
            Transition(*(f[i] for f in b.context)), Transition(*(f[i] for f in b.target)), b.task[i], b.context_mask[i]
        )


def tiny_trainer(tmp_path, steps: int = 4, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        log_every_n_steps=1,
        **kwargs,
    )


def fitted_module(adaptation: str, data: MetaBatch, **kwargs) -> MetaDynamicsModule:
    module = MetaDynamicsModule(OBS, A, T, adaptation=adaptation, **{**SMALL, **kwargs})
    ctx = data.context
    module.fit_normaliser(transition_statistics(ctx, data.task))
    return module


def test_hyperparameters_are_plain_and_dynamics_is_the_model():
    module = MetaDynamicsModule(OBS, A, T, adaptation="gradient", inner_steps=2, **SMALL)
    assert module.hparams.adaptation == "gradient" and module.hparams.inner_steps == 2
    assert isinstance(module.dynamics, MetaDynamicsModel) and module.dynamics.adaptation_name == "gradient"


@pytest.mark.parametrize("adaptation", ["none", "context", "gradient", "recurrent", "oracle"])
def test_checkpoint_round_trip_gives_identical_predictions(tmp_path, adaptation):
    g = torch.Generator().manual_seed(0)
    data = random_batch(64, g)
    module = fitted_module(adaptation, data, learn_inner_lr=adaptation == "gradient")
    trainer = tiny_trainer(tmp_path)
    trainer.fit(module, DataLoader(Segments(data), batch_size=16))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    loaded = MetaDynamicsModule.load_from_checkpoint(path)
    assert bool(loaded.dynamics.normaliser.fitted)
    assert loaded.hparams == module.hparams
    for key, value in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    probe = random_batch(3, g)
    obs = probe.target.obs.expand(2, -1, -1, -1)
    action = probe.target.action.expand(2, -1, -1, -1)
    with torch.no_grad():
        a = module.dynamics.adapt(probe.context, task=probe.task)(obs, action)
        b = loaded.dynamics.adapt(probe.context, task=probe.task)(obs, action)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.var, b.var) and torch.equal(a.reward, b.reward)


def oscillator_buffer(episodes: int = 8, length: int = 30) -> EpisodeBuffer:
    g = torch.Generator().manual_seed(1)
    buffer = EpisodeBuffer(family="oscillator", env_id="test/Oscillator-v0")
    for e in range(episodes):
        gain = 0.5 + 0.25 * (e % 4)
        t = oscillator(torch.tensor([gain]), length, g)
        truncated = torch.zeros(length, dtype=torch.bool)
        truncated[-1] = True
        buffer.add_episode(
            t.obs[0].numpy(),
            t.action[0].numpy(),
            t.reward[0].numpy(),
            t.next_obs[0].numpy(),
            t.terminated[0].numpy(),
            truncated.numpy(),
            {"gain": gain},
        )
    return buffer


def test_fit_with_datamodule_fits_normaliser_and_logs_every_horizon(tmp_path):
    dm = MetaDataModule.from_buffer(
        oscillator_buffer(),
        context_length=K,
        target_length=M,
        batch_size=16,
        samples_per_epoch=64,
        val_fraction=0.25,
        val_samples=32,
        pad_context=True,
    )
    module = MetaDynamicsModule(dm.obs_dim, dm.action_dim, dm.task_dim, adaptation="context", **SMALL)
    assert not bool(module.dynamics.normaliser.fitted)
    trainer = tiny_trainer(tmp_path, steps=4, limit_val_batches=1)
    trainer.fit(module, datamodule=dm)
    n = module.dynamics.normaliser
    assert bool(n.fitted)
    for key, value in dm.statistics().items():
        expected = torch.where(value < n.min_std, torch.ones_like(value), value) if key.endswith("std") else value
        torch.testing.assert_close(getattr(n, key), expected.float(), msg=key)
    metrics = trainer.callback_metrics
    for h in range(1, M + 1):
        assert torch.isfinite(metrics[f"val/mse_h{h}"]), h
        assert f"train/mse_h{h}" in metrics
    assert {"val/loss", "val/dynamics_nll", "val/reward_mse", "train/loss"} <= set(metrics)


def test_fit_without_statistics_raises(tmp_path):
    data = random_batch(16, torch.Generator().manual_seed(2))
    module = MetaDynamicsModule(OBS, A, T, **SMALL)
    with pytest.raises(RuntimeError, match="fit_normaliser"):
        tiny_trainer(tmp_path, steps=1).fit(module, DataLoader(Segments(data), batch_size=8))


def test_finetune_last_layer_trains_only_the_last_layers(tmp_path):
    data = random_batch(64, torch.Generator().manual_seed(3))
    module = fitted_module("context", data)
    module.configure_finetune("last_layer")
    before = {k: v.clone() for k, v in module.dynamics.named_parameters()}
    tiny_trainer(tmp_path, steps=3).fit(module, DataLoader(Segments(data), batch_size=16))
    changed = {k for k, v in module.dynamics.named_parameters() if not torch.equal(v, before[k])}
    trainable = {k for k, v in module.dynamics.named_parameters() if v.requires_grad}
    assert changed and changed <= trainable
    assert "dynamics_net.layers.2.weight" in changed and "adapter.encoder.layers.0.weight" not in changed


def test_finetune_frozen_encoder_keeps_encoder(tmp_path):
    data = random_batch(64, torch.Generator().manual_seed(4))
    module = fitted_module("context", data)
    module.configure_finetune("frozen_encoder")
    before = {k: v.clone() for k, v in module.dynamics.adapter.named_parameters()}
    tiny_trainer(tmp_path, steps=3).fit(module, DataLoader(Segments(data), batch_size=16))
    assert all(torch.equal(v, before[k]) for k, v in module.dynamics.adapter.named_parameters())

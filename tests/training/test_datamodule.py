import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.training.datamodule import MetaDataModule
from mbmeta.types import MetaBatch


def make_buffer(num_episodes=12, length=40, obs_dim=3, action_dim=2, num_tasks=4, seed=0):
    """Episode e has task value e % num_tasks; obs[..., 0] = episode, obs[..., 1] = step."""
    rng = np.random.default_rng(seed)
    buf = EpisodeBuffer(family="toy", env_id="mbmeta/Toy-v0")
    for e in range(num_episodes):
        obs = rng.standard_normal((length + 1, obs_dim))
        obs[:, 0] = e
        obs[:, 1] = np.arange(length + 1)
        trunc = np.zeros(length, bool)
        trunc[-1] = True
        buf.add_episode(
            obs[:-1],
            rng.uniform(-1, 1, (length, action_dim)),
            rng.standard_normal(length),
            obs[1:],
            np.zeros(length, bool),
            trunc,
            {"mass": 0.5 + e % num_tasks, "length": 1.0},
        )
    return buf


def test_yields_meta_batches_with_the_right_shapes_and_dtypes():
    buf = make_buffer()
    dm = MetaDataModule.from_buffer(buf, context_length=5, target_length=7, batch_size=16, samples_per_epoch=64)
    assert (dm.obs_dim, dm.action_dim, dm.task_dim) == (3, 2, 2)
    batches = list(dm.train_dataloader())
    assert len(batches) == 4
    batch = batches[0]
    assert isinstance(batch, MetaBatch)
    assert batch.context.obs.shape == (16, 5, 3) and batch.context.next_obs.shape == (16, 5, 3)
    assert batch.context.action.shape == (16, 5, 2) and batch.context.reward.shape == (16, 5)
    assert batch.target.obs.shape == (16, 7, 3) and batch.target.terminated.shape == (16, 7)
    assert batch.task.shape == (16, 2)
    for t in (batch.context.obs, batch.context.action, batch.context.reward, batch.target.next_obs, batch.task):
        assert t.dtype == torch.float32
    assert batch.target.terminated.dtype == torch.bool
    # targets follow the context in the same episode
    assert torch.equal(batch.target.obs[:, 0, 1], batch.context.obs[:, -1, 1] + 1)
    assert torch.equal(batch.target.obs[:, 0, 0], batch.context.obs[:, 0, 0])


def test_loads_from_file_and_links_dims(tmp_path):
    path = tmp_path / "buf.npz"
    make_buffer(obs_dim=4, action_dim=1).save(path)
    dm = MetaDataModule(str(path), context_length=3, target_length=2, batch_size=8, samples_per_epoch=16)
    assert (dm.obs_dim, dm.action_dim, dm.task_dim, dm.task_names) == (4, 1, 2, ("mass", "length"))
    assert dm.hparams.buffer_path == str(path)
    assert next(iter(dm.train_dataloader())).context.obs.shape == (8, 3, 4)


def test_missing_buffer_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_buffer.npz"):
        MetaDataModule(str(tmp_path / "no_such_buffer.npz"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"context_length": 0}, "context_length must be > 0"),
        ({"target_length": -2}, "target_length must be > 0"),
        ({"batch_size": 0}, "batch_size must be > 0"),
        ({"val_fraction": 1.5}, "val_fraction must lie in"),
        ({"split_by": "tsk"}, "unknown split_by"),
        ({"context_length": 30, "target_length": 20}, r"training split: .*K=30.*M=20.*has 40 steps"),
        ({"context_source": "other"}, "context_source must be one of"),
        ({"context_length": 16, "target_length": 10, "context_source": "episode"}, r"2K \+ M - 1.*= 41"),
    ],
)
def test_bad_arguments_raise_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MetaDataModule.from_buffer(make_buffer(), **kwargs)


def test_not_enough_episodes_or_tasks_for_the_split():
    with pytest.raises(ValueError, match="cannot split 1 episodes.*buffer has 1 episodes"):
        MetaDataModule.from_buffer(make_buffer(num_episodes=1), val_fraction=0.1)
    with pytest.raises(ValueError, match="cannot split 1 distinct tasks"):
        MetaDataModule.from_buffer(make_buffer(num_tasks=1), val_fraction=0.1, split_by="task")
    with pytest.raises(ValueError, match="holds no episodes"):
        MetaDataModule.from_buffer(EpisodeBuffer())
    with pytest.raises(TypeError, match="unknown arguments"):
        MetaDataModule.from_buffer(make_buffer(), contex_length=3)


def test_statistics_come_from_the_training_split_only():
    buf = make_buffer()
    dm = MetaDataModule.from_buffer(buf, val_fraction=0.25, context_length=3, target_length=3)
    stats = dm.statistics()
    expected = buf.statistics(dm.train_episodes)
    assert set(stats) == set(expected)
    for key in stats:
        assert stats[key].dtype == torch.float32
        torch.testing.assert_close(stats[key], expected[key])
    # obs[..., 0] is the episode index: its train mean is the mean of the training episodes, not of all
    assert stats["obs_mean"][0].item() == pytest.approx(float(np.mean(dm.train_episodes)))
    assert stats["obs_mean"][0].item() != pytest.approx(float(np.mean(np.arange(buf.num_episodes))))


def batches_equal(a, b):
    leaves_a, leaves_b = torch.utils._pytree.tree_leaves(a), torch.utils._pytree.tree_leaves(b)
    return all(torch.equal(x, y) for x, y in zip(leaves_a, leaves_b, strict=True))


def test_validation_is_fixed_and_training_is_fresh_each_epoch_but_seeded():
    kwargs = {"context_length": 4, "target_length": 4, "batch_size": 8, "samples_per_epoch": 16, "val_samples": 20}
    dm = MetaDataModule.from_buffer(make_buffer(), seed=3, **kwargs)
    val_a, val_b = list(dm.val_dataloader()), list(dm.val_dataloader())
    assert [v.task.shape[0] for v in val_a] == [8, 8, 4]
    assert all(batches_equal(x, y) for x, y in zip(val_a, val_b, strict=True))
    loader = dm.train_dataloader()
    epoch0, epoch1 = list(loader), list(loader)
    assert not batches_equal(epoch0[0], epoch1[0])
    twin = MetaDataModule.from_buffer(make_buffer(), seed=3, **kwargs)
    twin_loader = twin.train_dataloader()
    assert all(batches_equal(x, y) for x, y in zip(epoch0, list(twin_loader), strict=True))
    twin_loader.sampler.set_epoch(1)  # what Lightning does: a resumed run continues the same stream
    assert all(batches_equal(x, y) for x, y in zip(epoch1, list(twin_loader), strict=True))
    other = MetaDataModule.from_buffer(make_buffer(), seed=4, **kwargs)
    assert not batches_equal(epoch0[0], next(iter(other.train_dataloader())))


def test_validation_episodes_never_appear_in_training_batches():
    for split_by in ("episode", "task"):
        dm = MetaDataModule.from_buffer(
            make_buffer(num_episodes=16), split_by=split_by, val_fraction=0.25, context_length=3, target_length=3
        )
        val_eps = set(dm.val_episodes.tolist())
        train_batch = next(iter(dm.train_dataloader()))
        assert not set(train_batch.context.obs[:, 0, 0].long().tolist()) & val_eps
        val_batch = next(iter(dm.val_dataloader()))
        assert set(val_batch.context.obs[:, 0, 0].long().tolist()) <= val_eps
        if split_by == "task":
            train_tasks = {tuple(t) for t in train_batch.task.tolist()}
            assert not train_tasks & {tuple(t) for t in val_batch.task.tolist()}


def test_pad_context_needs_a_mask_field_or_provides_it():
    buf = make_buffer()
    if "context_mask" not in MetaBatch._fields:
        with pytest.raises(ValueError, match="context_mask"):
            MetaDataModule.from_buffer(buf, pad_context=True)
    else:
        dm = MetaDataModule.from_buffer(buf, pad_context=True, context_length=6, target_length=2, batch_size=64)
        batch = next(iter(dm.train_dataloader()))
        assert batch.context_mask.shape == (64, 6) and batch.context_mask.dtype == torch.bool


def test_episode_contexts_reach_the_batches_and_keep_their_task():
    dm = MetaDataModule.from_buffer(
        make_buffer(), context_length=5, target_length=3, batch_size=128, pad_context=True, context_source="episode"
    )
    batch = next(iter(dm.train_dataloader()))
    real = batch.context_mask
    episode = batch.target.obs[:, :1, 0]  # obs[..., 0] is the episode number
    assert torch.equal(batch.context.obs[..., 0][real], episode.expand_as(real)[real])  # same episode as the targets
    # the newest slot is always real (min_context = 1); the window spans K steps up to it (padded slots are zeros)
    last, t0 = batch.context.obs[:, -1, 1], batch.target.obs[:, 0, 1]
    after = last - 4 >= t0 + 3
    assert ((last < t0) | after).all()  # clear of the targets
    assert after.float().mean() > 0.2  # not only windows before the targets
    # real slots as an agent has them at step t0: min(t0, K), the oldest ones padded
    assert torch.equal(real, t0[:, None] - 5 + torch.arange(5) >= 0)


class _MeanModel(pl.LightningModule):
    """Predicts target next_obs - obs by a learned constant: enough to drive a real Trainer over the datamodule."""

    def __init__(self, obs_dim):
        super().__init__()
        self.delta = torch.nn.Parameter(torch.zeros(obs_dim))
        self.seen_val = 0

    def loss(self, batch):
        delta = batch.target.next_obs - batch.target.obs
        return ((delta - self.delta) ** 2).mean()

    def training_step(self, batch, batch_idx):
        assert isinstance(batch, MetaBatch)
        loss = self.loss(batch)
        self.log("train_loss", loss, batch_size=batch.task.shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        self.seen_val += batch.task.shape[0]
        self.log("val_loss", self.loss(batch), batch_size=batch.task.shape[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


@pytest.mark.parametrize("val_fraction", [0.2, 0.0])
def test_runs_under_a_real_trainer(tmp_path, val_fraction):
    dm = MetaDataModule.from_buffer(
        make_buffer(),
        context_length=3,
        target_length=3,
        batch_size=32,
        samples_per_epoch=256,
        val_samples=64,
        val_fraction=val_fraction,
    )
    model = _MeanModel(dm.obs_dim)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 16
    assert model.seen_val == (128 if val_fraction else 0)  # 2 epochs x 64 fixed validation segments
    # the learned constant approaches the mean step delta of the training data (delta of obs[:, 1] is exactly 1)
    assert model.delta[1].item() == pytest.approx(1.0, abs=0.05)

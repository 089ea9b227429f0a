"""The same seed gives the same buffer and the same weights on CPU; another seed gives others."""

import numpy as np
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.runs.loop import run_training
from mbmeta.training.checkpoint import load_checkpoint

from .conftest import tiny_settings
from .runs import assert_same_run


def test_same_seed_same_buffer_and_weights(tmp_path, tiny_run):
    run_training(**tiny_settings(tmp_path / "again"))
    assert_same_run(tmp_path / "again", tiny_run)


def test_other_seed_other_buffer_and_weights(tmp_path, tiny_run):
    run_training(**tiny_settings(tmp_path / "other", seed=4))
    a, b = EpisodeBuffer.load(tmp_path / "other" / "buffer.npz"), EpisodeBuffer.load(tiny_run / "buffer.npz")
    assert not np.array_equal(a.tasks, b.tasks) or not np.array_equal(a.obs[: len(b.obs)], b.obs[: len(a.obs)])
    wa = load_checkpoint(tmp_path / "other" / "model.ckpt")["state_dict"]
    wb = load_checkpoint(tiny_run / "model.ckpt")["state_dict"]
    assert any(not torch.equal(wa[k], wb[k]) for k in wa if wa[k].is_floating_point() and wa[k].numel() > 1)

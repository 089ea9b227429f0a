"""`training/finetune.py`: fine-tuning a copy on a new task's episodes, and training the same architecture anew."""

import numpy as np
import pytest
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.training.finetune import finetune, train_from_scratch
from mbmeta.training.module import MetaDynamicsModule

DATA = {"context_length": 4, "target_length": 3, "batch_size": 16, "samples_per_epoch": 48}
LAST_LAYERS = {
    "model.dynamics_net.layers.2.weight",
    "model.dynamics_net.layers.2.bias",
    "model.reward_net.layers.1.weight",
    "model.reward_net.layers.1.bias",
    "model.head.max_logvar",
    "model.head.min_logvar",
}


def new_task_buffer(episodes: int = 2, seed: int = 0) -> EpisodeBuffer:
    """Random-walk episodes of 30 steps (O=3, A=1) on one task."""
    rng = np.random.default_rng(seed)
    buffer = EpisodeBuffer()
    for _ in range(episodes):
        action = rng.uniform(-1, 1, (30, 1)).astype(np.float32)
        obs = np.cumsum(np.concatenate([rng.normal(size=(1, 3)), 0.1 * action.repeat(3, 1)]), 0).astype(np.float32)
        done = np.zeros(30, bool)
        done[-1] = True
        buffer.add_episode(obs[:-1], action, -np.abs(obs[1:, 0]), obs[1:], ~done & done, done, {"mass": 2.0})
    return buffer


def pretrained(seed: int = 0, **overrides) -> MetaDynamicsModule:
    sizes = dict(ensemble_size=2, hidden_sizes=(16, 16), reward_hidden=(8,), context_hidden=(8,), latent_dim=3)
    module = MetaDynamicsModule(3, 1, 1, adaptation="context", seed=seed, **{**sizes, **overrides})
    stats = new_task_buffer(seed=99).statistics()  # "pretraining" statistics, unlike the new task's
    module.fit_normaliser({k: v * 2 if k.endswith("_std") else v + 1 for k, v in stats.items()})
    return module.eval()


def weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    "mode, may_change",
    [
        ("all", lambda name: not name.startswith("model.normaliser.")),
        ("frozen_encoder", lambda name: not name.startswith(("model.normaliser.", "model.adapter."))),
        ("last_layer", lambda name: name in LAST_LAYERS),
    ],
)
def test_finetune_trains_only_the_chosen_weights_of_a_copy(mode, may_change):
    module = pretrained()
    before = weights(module)
    tuned = finetune(module, new_task_buffer(), mode=mode, epochs=1, data=DATA)
    assert tuned is not module and not tuned.training
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())  # the original is untouched
    changed = {k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(may_change(name) for name in changed), sorted(changed)
    if mode == "all":
        assert any(name.startswith("model.adapter.") for name in changed)  # the encoder trains too


def test_finetune_lowers_the_learning_rate_unless_given_one():
    module = pretrained(lr=3e-3)
    assert finetune(module, new_task_buffer(), epochs=1, data=DATA).hparams.lr == pytest.approx(1e-3)
    assert finetune(module, new_task_buffer(), epochs=1, lr=5e-4, data=DATA).hparams.lr == 5e-4
    assert module.hparams.lr == 3e-3


def test_an_unknown_finetune_mode_is_a_one_line_error():
    with pytest.raises(ValueError) as err:
        finetune(pretrained(), new_task_buffer(), mode="encoder", epochs=1, data=DATA)
    assert str(err.value) == "fine-tune mode must be one of all, frozen_encoder, last_layer; got 'encoder'"


def test_train_from_scratch_uses_the_hyperparameters_of_like_and_the_new_data():
    like = pretrained(seed=0, lr=2e-3, latent_dim=5)
    buffer = new_task_buffer()
    scratch = train_from_scratch(like, buffer, epochs=1, data=DATA, seed=7)
    assert {k: v for k, v in scratch.hparams.items() if k != "seed"} == {
        k: v for k, v in like.hparams.items() if k != "seed"
    }
    assert scratch.hparams.seed == 7 and not scratch.training
    statistics = buffer.statistics()  # its normaliser comes from the new data, not from like's
    torch.testing.assert_close(scratch.dynamics.normaliser.obs_mean, statistics["obs_mean"])
    assert not torch.equal(scratch.dynamics.normaliser.obs_mean, like.dynamics.normaliser.obs_mean)

"""The key learning test: adaptation must beat the plain ensemble on held-out tasks of a hidden-parameter family.

Family (synthetic_family.py): a driven oscillator whose actuator gain is hidden per segment. Training gains
{0.5, 0.8, 1.1, 1.4, 1.7, 2.0}; held-out gains {0.3, 0.65, 0.95, 1.25, 1.55, 1.85, 2.2}: unseen values between the
training ones and beyond both ends. Every method is trained by a real pl.Trainer on the same data, seed and budget;
the score is the open-loop error at horizon M on the held-out segments (normalised observation units).

The default selection runs a quick budget (400 steps per method, ~20 s CPU for all five); the ``slow`` version trains
longer and also checks the extrapolating gains (0.3 and 2.2, outside the training range) on their own.
"""

import functools

import pytest
import pytorch_lightning as pl
import torch
from synthetic_family import ACTION_DIM, OBS_DIM, TASK_DIM, SegmentDataset, make_batch
from torch.utils.data import DataLoader

from mbmeta.models import transition_statistics
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import MetaBatch, Transition

K, M = 16, 8
QUICK_STEPS, FULL_STEPS = 400, 1000
TRAIN_GAINS = torch.tensor([0.5, 0.8, 1.1, 1.4, 1.7, 2.0])
TEST_GAINS = torch.tensor([0.3, 0.65, 0.95, 1.25, 1.55, 1.85, 2.2])
METHODS = ("none", "oracle", "context", "recurrent", "gradient", "context-per-member")
VARIANTS = {"context-per-member": ("context", {"context_per_member": True})}
"""Methods that are an adaptation with other settings: name -> (adaptation, extra module arguments)."""
ORACLE_TOLERANCE = 0.05
"""The oracle may trail the best adapter by at most 5% of the unadapted model's error (an absolute tie band)."""


def train(method: str, train_batch, stats, steps: int) -> MetaDynamicsModule:
    adaptation, extra = VARIANTS.get(method, (method, {}))
    module = MetaDynamicsModule(
        OBS_DIM,
        ACTION_DIM,
        TASK_DIM,
        adaptation=adaptation,
        ensemble_size=2,
        hidden_sizes=(32, 32),
        learn_reward=False,
        latent_dim=4,
        context_hidden=(32, 32),
        gru_hidden=32,
        inner_lr=0.1,
        learn_inner_lr=True,
        lr=1e-2,
        seed=0,
        **extra,
    )
    module.fit_normaliser(stats)
    loader = DataLoader(
        SegmentDataset(train_batch), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(1)
    )
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=100,
    )
    trainer.fit(module, loader)
    return module


@functools.cache
def evaluate(steps: int) -> dict[str, dict[str, torch.Tensor]]:
    """Train every method for `steps` steps; open-loop errors [M] on all held-out gains and the extrapolating ones."""
    g = torch.Generator().manual_seed(0)
    train_batch = make_batch(TRAIN_GAINS, 4096, K, M, g)
    test_batch = make_batch(TEST_GAINS, 1024, K, M, g)
    outside = (test_batch.task[:, 0] < TRAIN_GAINS.min()) | (test_batch.task[:, 0] > TRAIN_GAINS.max())
    extrapolating = MetaBatch(
        *(type(f)(*(x[outside] for x in f)) if isinstance(f, Transition) else f[outside] for f in test_batch)
    )
    all_train = Transition(
        *(torch.cat(pair, dim=1) for pair in zip(train_batch.context, train_batch.target, strict=True))
    )
    stats = transition_statistics(all_train, train_batch.task)
    out = {"all": {}, "extrapolating": {}}
    for method in METHODS:
        module = train(method, train_batch, stats, steps)
        out["all"][method] = module.dynamics.multi_step_error(test_batch)
        out["extrapolating"][method] = module.dynamics.multi_step_error(extrapolating)
    for split, errors in out.items():
        print(steps, split, {m: round(e[-1].item(), 5) for m, e in errors.items()})
    return out


def check_unadapted_error_is_substantial(errors):
    # the hidden gain must matter, or the comparisons below would be vacuous
    assert errors["none"][-1] > 5 * errors["oracle"][-1]
    assert (errors["none"].diff() > 0).all()  # open-loop error grows with the horizon


def check_adaptation_halves_error(errors, method):
    assert errors[method][-1] <= 0.5 * errors["none"][-1], (method, errors[method][-1], errors["none"][-1])


def check_oracle_is_best_or_tied(errors):
    best_adapter = min(errors[m][-1] for m in ("context", "recurrent", "gradient"))
    assert errors["oracle"][-1] <= best_adapter + ORACLE_TOLERANCE * errors["none"][-1]


def test_unadapted_error_is_substantial():
    check_unadapted_error_is_substantial(evaluate(QUICK_STEPS)["all"])


@pytest.mark.parametrize("method", ["context", "recurrent", "gradient", "context-per-member"])
def test_adaptation_halves_held_out_error(method):
    check_adaptation_halves_error(evaluate(QUICK_STEPS)["all"], method)


def test_oracle_is_best_or_tied():
    check_oracle_is_best_or_tied(evaluate(QUICK_STEPS)["all"])


@pytest.mark.slow
@pytest.mark.parametrize("split", ["all", "extrapolating"])
def test_full_budget(split):
    errors = evaluate(FULL_STEPS)[split]
    check_unadapted_error_is_substantial(errors)
    for method in ("context", "recurrent", "gradient", "context-per-member"):
        check_adaptation_halves_error(errors, method)
    check_oracle_is_best_or_tied(errors)

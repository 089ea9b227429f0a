"""`evaluation/prediction.py`: the units, shape and per-task split of the open-loop prediction error, and test data.

The toy data move every observation by exactly +0.5 per step (values that float32 holds exactly), and the toy model
predicts ``delta_mean + b * delta_std`` whatever its input (all weights zero, last bias ``b``): with ``b = 0`` it is
exact, with ``b = 1`` it is off by ``delta_std`` per step, so its error at horizon h is ``(h delta_std / scale)^2``.
"""

import numpy as np
import pytest
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluation_tasks
from mbmeta.evaluation.prediction import observation_scale, prediction_error, prediction_error_by_task
from mbmeta.evaluation.prediction import test_data as collect_test_data  # (a `test_` name would be collected)
from mbmeta.evaluation.reports import task_label
from mbmeta.training.module import MetaDynamicsModule

STEP, DELTA_STD = 0.5, 0.25


def drifting_buffer(lengths_and_tasks) -> EpisodeBuffer:
    """Episodes whose observations move by +STEP per step in every dimension (3 dims; dim 1 starts elsewhere)."""
    buffer = EpisodeBuffer()
    for episode, (length, mass) in enumerate(lengths_and_tasks):
        start = np.array([episode, 4.0 * episode - 2.0, -episode], dtype=np.float32)
        obs = start + STEP * np.arange(length + 1, dtype=np.float32)[:, None]
        done = np.zeros(length, bool)
        done[-1] = True
        action = np.full((length, 1), 0.5, np.float32)
        buffer.add_episode(obs[:-1], action, np.zeros(length), obs[1:], ~done & done, done, {"mass": mass})
    return buffer


def constant_model(buffer: EpisodeBuffer, bias: float, obs_std: float = 7.0) -> MetaDynamicsModule:
    """A deterministic model predicting Δ = STEP + bias * DELTA_STD; its own obs_std is unlike the data's."""
    module = MetaDynamicsModule(3, 1, 1, adaptation="none", probabilistic=False, ensemble_size=2, hidden_sizes=(8,))
    stats = buffer.statistics()
    stats.update(delta_mean=torch.full((3,), STEP), delta_std=torch.full((3,), DELTA_STD))
    stats["obs_std"] = torch.full((3,), obs_std)
    module.fit_normaliser(stats)
    with torch.no_grad():
        for p in module.dynamics.dynamics_net.parameters():
            p.zero_()
        module.dynamics.dynamics_net.layers[-1].bias.fill_(bias)
    return module.eval()


def test_observation_scale_is_the_data_std_and_one_where_constant():
    buffer = EpisodeBuffer()
    obs = np.stack([np.arange(6.0), np.full(6, 3.0), np.arange(6.0) ** 2], axis=1).astype(np.float32)
    done = np.zeros(5, bool)
    done[-1] = True
    buffer.add_episode(obs[:-1], np.zeros((5, 1)), np.zeros(5), obs[1:], ~done & done, done, {"mass": 1.0})
    scale = observation_scale(buffer)
    assert scale.dtype == torch.float32 and scale.shape == (3,)
    expected = obs[:-1].astype(np.float64).std(axis=0)
    expected[1] = 1.0  # a constant dimension: unit scale, as the normaliser does
    np.testing.assert_allclose(scale.numpy(), expected, rtol=1e-6)


def test_an_exact_model_has_zero_error_at_every_horizon():
    buffer = drifting_buffer([(30, 1.0), (30, 2.0)])
    error = prediction_error(constant_model(buffer, bias=0.0), buffer, context_length=4, horizon=6, segments=32)
    assert error.shape == (6,)
    assert np.all(error == 0.0)


def test_the_error_grows_as_the_drift_in_units_of_the_data_std():
    buffer = drifting_buffer([(30, 1.0), (30, 2.0)])
    error = prediction_error(constant_model(buffer, bias=1.0), buffer, context_length=4, horizon=6, segments=32)
    scale = observation_scale(buffer).double().numpy()  # the data's std, not the model's obs_std of 7
    horizons = np.arange(1, 7)[:, None]
    np.testing.assert_allclose(error, ((horizons * DELTA_STD / scale) ** 2).mean(axis=1), rtol=1e-5)


def test_per_task_errors_leave_out_tasks_without_a_long_enough_episode():
    buffer = drifting_buffer([(30, 1.0), (25, 2.0), (9, 3.0), (30, 1.0)])  # K + H = 10: task 3 cannot be measured
    by_task = prediction_error_by_task(constant_model(buffer, bias=1.0), buffer, context_length=4, horizon=6)
    assert set(by_task) == {"mass=1", "mass=2"}
    scale = observation_scale(buffer).double().numpy()  # the whole buffer's units, shared by every task
    expected = ((np.arange(1, 7)[:, None] * DELTA_STD / scale) ** 2).mean(axis=1)
    for curve in by_task.values():
        np.testing.assert_allclose(curve, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="no episode is long enough"):  # nothing measurable: a clear error
        prediction_error(constant_model(buffer, bias=1.0), buffer, context_length=4, horizon=40)


def test_test_data_adds_episodes_until_every_task_has_a_measurable_one():
    family = get_family("juggler_balance")  # random actions drop the ball after ~15-45 steps
    tasks = evaluation_tasks(family, "test", 8, seed=0)
    plain = collect_test_data(family, tasks, seed=7919)
    assert plain.num_episodes == 8 and (plain.episode_lengths < 20).any()  # some task has no 20-step episode

    data = collect_test_data(family, tasks, seed=7919, min_length=20)  # K + H = 10 + 10, as evaluate asks
    long_enough = {task_label(data.task(int(e)).as_dict()) for e in np.flatnonzero(data.episode_lengths >= 20)}
    assert long_enough == {task_label(t.as_dict()) for t in tasks}
    assert np.array_equal(data.episode_lengths[:8], plain.episode_lengths)  # the first round is the plain data

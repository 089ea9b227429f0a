"""The task code's training range (``mbmeta.models.latent_range``): measured as the agent adapts, clamped into by
``adapt(latent_range=...)`` and the MPC agent, refused with a one-line error where it cannot apply."""

import numpy as np
import pytest
import torch
from synthetic_family import ACTION_DIM, OBS_DIM, TASK_DIM, make_batch, simulate

from mbmeta.control.agent import MPCAgent
from mbmeta.control.factory import make_agent
from mbmeta.control.latent_range import context_windows, measure_latent_range
from mbmeta.control.settings import AgentSettings
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.models import MetaDynamicsModel, transition_statistics
from mbmeta.models.latent_range import LatentRange
from mbmeta.planners import make_planner
from mbmeta.types import Transition

K = 3


def small_model(adaptation: str, **kwargs) -> MetaDynamicsModel:
    model = MetaDynamicsModel(
        OBS_DIM, ACTION_DIM, TASK_DIM, adaptation=adaptation, ensemble_size=2, hidden_sizes=(16,),
        reward_hidden=(8,), latent_dim=3, context_hidden=(16,), gru_hidden=8, **kwargs,
    )  # fmt: skip
    batch = make_batch(torch.tensor([0.5, 1.0, 1.5]), 32, 4, 2, torch.Generator().manual_seed(1))
    model.normaliser.fit(transition_statistics(batch.context, batch.task))
    return model


def small_buffer(lengths=(5, 2, 4), gains=(0.5, 1.5, 1.0)) -> EpisodeBuffer:
    buffer = EpisodeBuffer(OBS_DIM, ACTION_DIM, task_names=["gain"])
    g = torch.Generator().manual_seed(2)
    for length, gain in zip(lengths, gains, strict=True):
        t = simulate(torch.tensor([gain]), length, g)
        done = np.zeros(length, dtype=bool)
        buffer.add_episode(t.obs[0], t.action[0], t.reward[0], t.next_obs[0], done, done, {"gain": gain})
    return buffer


def test_context_windows_hold_each_steps_earlier_transitions_of_its_own_episode():
    rows, mask, episode = context_windows(small_buffer(lengths=(3, 2), gains=(0.5, 1.5)), 2)
    assert episode.tolist() == [0, 0, 0, 1, 1]
    assert mask.tolist() == [[False, False], [False, True], [True, True], [False, False], [False, True]]
    assert rows[mask].tolist() == [0, 0, 1, 3]  # step 1: row 0; step 2: rows 0, 1; episode 1's step 1: row 3


@pytest.mark.parametrize("adaptation", ["context", "recurrent", "oracle"])
def test_the_range_is_that_of_z_over_every_steps_own_adaptation(adaptation):
    model, buffer = small_model(adaptation), small_buffer()
    measured = measure_latent_range(model, buffer, K, chunk=4)  # chunks smaller than the buffer
    codes = []
    with torch.no_grad():
        for e in range(buffer.num_episodes):  # step by step, as an agent adapts before each action
            ep = buffer.episode(e)
            task = torch.tensor([[buffer.tasks[e, 0]]], dtype=torch.float32)
            padded = {
                n: np.concatenate([np.zeros((K, *ep[n].shape[1:]), ep[n].dtype), ep[n]]) for n in Transition._fields
            }
            for t in range(len(ep["obs"])):  # step t adapts on rows t-K..t-1 of its episode, padding masked
                fields = (torch.as_tensor(padded[n][t : t + K])[None] for n in Transition._fields)
                mask = torch.as_tensor(np.arange(t - K, t) >= 0)[None]
                z = model.adapt(Transition(*fields), mask, task=task).adaptation.z
                codes.append(z.reshape(-1, model.adapter.latent_dim))
    codes = torch.cat(codes)
    torch.testing.assert_close(measured.low, codes.amin(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(measured.high, codes.amax(0), atol=1e-5, rtol=0)
    assert bool((measured.high > measured.low).all())


def test_the_oracle_range_is_the_training_tasks_range():
    model = small_model("oracle")
    measured = measure_latent_range(model, small_buffer(gains=(0.5, 1.5, 1.0)), K)
    expected = model.normalise_task(torch.tensor([[0.5], [1.5]]))
    torch.testing.assert_close(measured.low, expected[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(measured.high, expected[1], atol=1e-6, rtol=0)


def test_adapt_clamps_z_into_the_range_and_leaves_z_inside_it_unchanged():
    model = small_model("context")
    context = make_batch(torch.tensor([3.0]), 4, K, 1, torch.Generator().manual_seed(5)).context
    z = model.adapt(context).adaptation.z
    middle = (z.amin(0) + z.amax(0)) / 2
    bounds = LatentRange(middle - 1e-3, middle + 1e-3)
    clamped = model.adapt(context, latent_range=bounds).adaptation.z
    assert bool((clamped >= bounds.low - 1e-7).all() and (clamped <= bounds.high + 1e-7).all())
    assert not torch.equal(clamped, z)
    wide = LatentRange(z.amin(0) - 1, z.amax(0) + 1)
    torch.testing.assert_close(model.adapt(context, latent_range=wide).adaptation.z, z, atol=0, rtol=0)


def test_a_model_without_a_code_is_refused():
    model = small_model("none")
    with pytest.raises(ValueError, match="adaptation 'none' has no task code z"):
        measure_latent_range(model, small_buffer(), K)
    with pytest.raises(ValueError, match="'none' has no task code z to clamp"):
        model.adapt(make_batch(torch.tensor([1.0]), 2, K, 1, torch.Generator()).context, latent_range=_range(3))


def _range(z: int, low: float = -1.0, high: float = 1.0) -> LatentRange:
    return LatentRange(torch.full((z,), low), torch.full((z,), high))


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        (torch.zeros(2), torch.zeros(3), r"low and high must both be \[Z\]"),
        (torch.ones(2), torch.zeros(2), "low must be <= high"),
        (torch.tensor([0.0, float("nan")]), torch.ones(2), "must be finite"),
    ],
)
def test_a_bad_range_is_refused(low, high, message):
    with pytest.raises(ValueError, match=message):
        LatentRange(low, high)


def test_the_range_round_trips_through_its_json_form_and_checks_z():
    bounds = LatentRange(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 2.0]))
    again = LatentRange.from_dict(bounds.as_dict())
    assert torch.equal(again.low, bounds.low) and torch.equal(again.high, bounds.high)
    with pytest.raises(ValueError, match=r"needs \{'low'"):
        LatentRange.from_dict({"low": [0.0]})
    with pytest.raises(ValueError, match=r"z must be \[\.\.\., Z=2\]"):
        bounds.clamp(torch.zeros(4, 3))
    assert bounds.clamp(torch.tensor([[5.0, -5.0]])).tolist() == [[1.0, 0.0]]


def _agent(model, **kwargs) -> MPCAgent:
    planner = make_planner("cem", low=[-1.0], high=[1.0], population=16, elites=4, iterations=2)
    reward = lambda obs, action, next_obs: -(next_obs[..., 0] ** 2)  # noqa: E731
    return MPCAgent(model, planner, reward, horizon=4, context_length=K, seed=0, **kwargs)


def _codes_after(agent: MPCAgent, gain: float) -> torch.Tensor:
    """The z the agent planned with after observing K steps of an oscillator with this gain."""
    model, seen = agent.dynamics, []
    adapt = model.adapt

    def recording_adapt(*args, **kwargs):
        adapted = adapt(*args, **kwargs)
        seen.append(adapted.adaptation.z)
        return adapted

    model.adapt = recording_adapt
    t = simulate(torch.tensor([gain]), K, torch.Generator().manual_seed(9))
    agent.reset(seed=0)
    for i in range(K):
        agent.observe(t.obs[0, i].numpy(), t.action[0, i].numpy(), t.next_obs[0, i].numpy(), float(t.reward[0, i]))
    agent.act(t.next_obs[0, -1].numpy())
    del model.adapt
    return seen[-1]


def test_the_agent_plans_with_the_clamped_code():
    model = small_model("context")
    free_low, free_high = _codes_after(_agent(model), 0.3), _codes_after(_agent(model), 3.0)
    assert not torch.allclose(free_low, free_high)
    bounds = LatentRange(torch.minimum(free_low, free_high)[0], torch.maximum(free_low, free_high)[0])
    middle = (bounds.low + bounds.high) / 2
    pinned = LatentRange(middle, middle)  # zero width: the context no longer moves z
    for gain in (0.3, 3.0):
        torch.testing.assert_close(
            _codes_after(_agent(model, latent_range=bounds), gain)[0], _codes_after(_agent(model), gain)[0]
        )  # inside the range: unchanged
        assert torch.equal(_codes_after(_agent(model, latent_range=pinned), gain)[0], middle)


def test_the_agent_refuses_a_range_that_cannot_apply():
    with pytest.raises(ValueError, match="latent_range needs a model with a task code z; 'none' has none"):
        _agent(small_model("none"), latent_range=_range(3))
    with pytest.raises(ValueError, match="latent_range is for Z=2, the model's code has Z=3"):
        _agent(small_model("context"), latent_range=_range(2))


def test_bound_latent_settings_need_a_measured_range():
    from mbmeta.envs import get_family

    family, model = get_family("pendulum"), MetaDynamicsModel(3, 1, adaptation="context", hidden_sizes=(8,))
    settings = AgentSettings(bound_latent=True)
    with pytest.raises(ValueError, match="agent.bound_latent needs the range of the model's task code"):
        make_agent(model, family, settings)
    assert make_agent(model, family, settings, latent_range=_range(10)).latent_range is not None
    assert make_agent(model, family, AgentSettings(), latent_range=_range(10)).latent_range is None

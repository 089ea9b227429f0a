"""The juggler ball as known physics (``mbmeta.envs.juggler_contact``) against MuJoCo's own transitions.

Why these exist: issue 20's bounce needs a model that predicts strikes; the learned network is told the ball's
physics through :class:`BallContact` (experiments/juggler_diagnosis, step 10). These tests hold it to MuJoCo: free
flight as MuJoCo integrates it, a rebound that damping lowers, and a fit from generic values that cuts the error on
recorded contacts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mbmeta.envs
import mbmeta.envs.juggler_contact as contact_module
from mbmeta.envs.juggler import BALL_RADIUS, GRAVITY, inverse_kinematics, paddle_pose
from mbmeta.envs.juggler_contact import AdaptiveBallContact, BallContact
from mbmeta.models.known_physics import build_known_physics
from mbmeta.types import Transition

FAMILY = mbmeta.envs.get_family("juggler_bounce_servo")
PATH = "mbmeta.envs.juggler_contact:BallContact"


def _still_arm_obs(ball_x: float, ball_z: float, vx: float, vz: float) -> torch.Tensor:
    """``[14]`` observation: the arm still with its paddle level at (0.5, 0.6), the ball as given, no spin."""
    q = inverse_kinematics(0.5, 0.6, 0.0)
    obs = np.concatenate([q, np.zeros(3), paddle_pose(q), [ball_x, ball_z, vx, vz, 0.0]])
    return torch.tensor(obs, dtype=torch.float64)


def _record(
    episodes: int, seed: int, restitution: float | None = None, scale: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """``obs, next_obs [N, 14]`` of random-action episodes (actions within ``scale`` of the box) on train tasks, or
    on the nominal ball with the given restitution scale."""
    rng = np.random.default_rng(seed)
    env = FAMILY.make_env()
    obs_rows, next_rows = [], []
    tasks = FAMILY.sample(rng, episodes, "train")
    if restitution is not None:
        tasks = [FAMILY.validate({**FAMILY.nominal(), "restitution_scale": restitution})] * episodes
    try:
        for i, task in enumerate(tasks):
            obs, _ = env.reset(seed=seed + i, options={"task": task})
            for _ in range(60):
                next_obs, _, terminated, truncated, _ = env.step(rng.uniform(-scale, scale, 3))
                obs_rows.append(obs), next_rows.append(next_obs)
                obs = next_obs
                if terminated or truncated:
                    break
    finally:
        env.close()
    return torch.tensor(np.array(obs_rows)), torch.tensor(np.array(next_rows))


def _contact_rows(obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    dv = next_obs[:, 11:13] - obs[:, 11:13]
    flying = (dv[:, 0].abs() < 0.02) & ((dv[:, 1] + GRAVITY * BallContact.dt).abs() < 0.02)
    return ~flying & (obs[:, 10] > 0.06) & (next_obs[:, 10] > 0.06)


def test_it_is_a_known_physics_of_the_world_frame_observation():
    physics = build_known_physics(PATH, FAMILY.obs_dim)
    assert FAMILY.ball_frame == "world" and physics.computed == tuple(range(6, 14))


def test_a_ball_away_from_the_paddle_flies_as_mujoco_integrates_it():
    obs = _still_arm_obs(0.1, 1.2, 0.8, 2.0)  # 0.4 m to the side of the paddle's end
    next_obs = BallContact().complete(obs, obs)
    t, h = BallContact.dt, BallContact.dt / 40
    # semi-implicit Euler at 1 ms: the parabola plus g·h·t/2 (MuJoCo's ball, checked in the next test)
    expected = [0.1 + 0.8 * t, 1.2 + 2.0 * t - 0.5 * GRAVITY * t * (t + h), 0.8, 2.0 - GRAVITY * t, 0.0]
    np.testing.assert_allclose(next_obs[9:14].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(next_obs[6:9].numpy(), paddle_pose(obs[:3].numpy()), atol=1e-12)
    assert torch.equal(next_obs[:6], obs[:6])


def test_free_flight_matches_mujoco():
    obs, next_obs = _record(6, seed=3)
    flying = ~_contact_rows(obs, next_obs) & (obs[:, 10] > 0.06)
    with torch.no_grad():
        ball = BallContact().complete(obs[flying], next_obs[flying])
    torch.testing.assert_close(ball[:, 9:14], next_obs[flying, 9:14], rtol=0, atol=1e-6)


def test_the_gate_changes_nothing(monkeypatch):
    """Swinging the whole action box (the fastest paddle), the rows the gate flies unsimulated come out the same."""
    obs, next_obs = _record(30, seed=3, scale=1.0)
    physics = BallContact()
    with torch.no_grad():
        gated = physics.complete(obs, next_obs)
        monkeypatch.setattr(contact_module, "NEAR", 1e3)  # every row simulated
        full = physics.complete(obs, next_obs)
    torch.testing.assert_close(gated, full, rtol=0, atol=1e-9)


def _rebound_ratio(damping: float, impact: float = 2.8) -> float:
    """Fastest rebound over impact speed of a ball dropped on the still level paddle (4 ms steps for 60 ms)."""
    physics = BallContact(stiffness=3e4, damping=damping, substeps=4)
    physics.dt = 0.004  # the same 1 ms substeps, observed every 4 ms
    obs = _still_arm_obs(0.5, 0.6 + BALL_RADIUS + 0.001, 0.0, -impact)
    fastest = 0.0
    with torch.no_grad():
        for _ in range(15):
            obs = physics.complete(obs, obs)
            fastest = max(fastest, float(obs[12]))
    return fastest / impact


def test_a_dropped_ball_rebounds_less_the_more_the_contact_damps():
    ratios = [_rebound_ratio(b) for b in (1.0, 60.0, 120.0, 240.0)]
    assert 0.9 < ratios[0] <= 1.0  # almost elastic, never gaining energy
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] > 0.1


def test_fitting_from_generic_values_cuts_the_error_on_recorded_contacts():
    obs, next_obs = _record(40, seed=0)
    rows = _contact_rows(obs, next_obs)
    assert int(rows.sum()) >= 60
    physics = BallContact()

    def velocity_rms() -> float:
        with torch.no_grad():
            ball = physics.complete(obs[rows], next_obs[rows])
        return float((ball[:, 11:13] - next_obs[rows, 11:13]).square().sum(-1).mean().sqrt())

    before = velocity_rms()
    optimiser = torch.optim.Adam(physics.parameters(), lr=0.05)
    for _ in range(40):
        optimiser.zero_grad()
        physics.loss(obs, next_obs).backward()
        optimiser.step()
    after = velocity_rms()
    assert after < 0.8 * before
    assert 0.1 < physics.parameters_dict()["friction"] < 1.0


def test_loss_without_contacts_is_zero_and_differentiable():
    obs = _still_arm_obs(0.1, 1.2, 0.8, 2.0)[None]
    physics = BallContact()
    loss = physics.loss(obs, physics.complete(obs, obs).detach())
    loss.backward()
    assert float(loss.detach()) == 0.0 and physics.log_stiffness.grad is not None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("stiffness", 0.0, "stiffness must be > 0"), ("substeps", 0, "substeps must be an int >= 1")],
)
def test_bad_settings_are_refused(name, value, message):
    with pytest.raises(ValueError, match=message):
        BallContact(**{name: value})


FITTED = {"stiffness": 31700.0, "damping": 113.0, "friction_rate": 386.0, "friction": 0.318}  # step 10's fit


def test_adaptation_picks_more_damping_for_a_deader_ball_and_cuts_the_error():
    physics = AdaptiveBallContact(**FITTED)
    contexts, errors = [], {}
    for restitution in (0.5, 1.7):  # test-split balls: restitution 0.25 and 0.85
        obs, next_obs = _record(12, seed=5, restitution=restitution)
        rows = _contact_rows(obs, next_obs)
        c = int(rows.sum())
        context = Transition(obs[rows][None], torch.zeros(1, c, 3), next_obs[rows][None], torch.zeros(1, c),
                             torch.zeros(1, c, dtype=torch.bool))  # fmt: skip
        state = physics.adapt(context, None)
        with torch.no_grad():
            adapted = physics.complete(obs[rows][None, None], next_obs[rows][None, None], state)[0, 0]
            plain = physics.complete(obs[rows], next_obs[rows])
        errors[restitution] = [
            float((x[:, 11:13] - next_obs[rows, 11:13]).norm(dim=-1).mean()) for x in (adapted, plain)
        ]
        contexts.append(float(state[0, 0]))
    assert contexts[0] > 0.3 > -0.3 > contexts[1]  # more damping for the deader ball, less for the livelier one
    for adapted, plain in errors.values():
        assert adapted < 0.8 * plain


def test_adaptation_without_contacts_keeps_the_fitted_damping():
    physics = AdaptiveBallContact(**FITTED)
    obs = _still_arm_obs(0.1, 1.2, 0.8, 2.0)[None, None].expand(2, 3, 14)
    next_obs = physics.complete(obs, obs).detach()
    context = Transition(obs, torch.zeros(2, 3, 3), next_obs, torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool))
    assert torch.equal(physics.adapt(context, None), torch.zeros(2, 1, dtype=obs.dtype))


def _arm_context(gain: float, b: int = 2, k: int = 12, seed: int = 0):
    """A context whose true joints move ``gain`` times the network's step about coasting, and that network."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.stack([_still_arm_obs(0.1, 1.2, 0.8, 2.0)] * (b * k)).view(b, k, 14).clone()
    obs[..., 0:6] += 0.1 * torch.randn(b, k, 6, generator=g, dtype=obs.dtype)
    step = 0.05 * torch.randn(b, k, 6, generator=g, dtype=obs.dtype)
    coast = torch.cat([obs[..., 0:3] + obs[..., 3:6] * BallContact.dt, obs[..., 3:6]], -1)
    network = obs.clone()
    network[..., 0:6] = coast + step
    next_obs = obs.clone()
    next_obs[..., 0:6] = coast + gain * step
    t = torch.full(obs.shape[:-1], BallContact.dt, dtype=obs.dtype)
    next_obs[..., 9:11], next_obs[..., 11:13] = contact_module.flight(obs[..., 9:11], obs[..., 11:13], t, t[0, 0] / 40)
    context = Transition(obs, torch.zeros(b, k, 3, dtype=obs.dtype), next_obs, torch.zeros(b, k, dtype=obs.dtype),
                         torch.zeros(b, k, dtype=torch.bool))  # fmt: skip
    return context, lambda o, a: network


def test_the_arm_gain_is_fitted_to_the_context_and_applied_before_the_paddle():
    physics = contact_module.AdaptiveArmBallContact(**FITTED)
    context, predict = _arm_context(0.6)
    state = physics.adapt(context, None, predict=predict)
    assert state.shape == (2, 2)
    nearest = contact_module.ARM_GAINS[(contact_module.ARM_GAINS - 0.6).abs().argmin()]
    torch.testing.assert_close(state[:, 1].exp(), torch.full((2,), float(nearest), dtype=state.dtype))
    assert torch.equal(state[:, 0], torch.zeros(2, dtype=state.dtype))  # no contact in the context: damping ×1
    obs, network = context.obs[None], predict(None, None)[None]  # [E=1, B, K, 14]
    with torch.no_grad():
        out = physics.complete(obs, network, state)
    true_step = (context.next_obs[..., 0:6] - context.obs[..., 0:6])[None]
    got_step = out[..., 0:6] - obs[..., 0:6]
    assert (got_step - true_step).abs().max() < 0.1 * (network[..., 0:6] - context.next_obs[..., 0:6]).abs().max()
    torch.testing.assert_close(out[..., 6:9], torch.tensor(paddle_pose(out[..., 0:3].numpy())), atol=1e-9, rtol=0)


def test_the_arm_gain_stays_one_without_a_prediction_or_valid_steps():
    physics = contact_module.AdaptiveArmBallContact(**FITTED)
    context, predict = _arm_context(1.6)
    assert torch.equal(physics.adapt(context, None)[:, 1], torch.zeros(2, dtype=context.obs.dtype))
    mask = torch.tensor([[True] * 12, [False] * 12])
    state = physics.adapt(context, mask, predict=predict)
    assert float(state[0, 1].exp()) > 1.4 and float(state[1, 1]) == 0.0
    obs, network = context.obs[None], predict(None, None)[None]
    # a one-column state (as AdaptiveBallContact's) leaves the joints as the network predicts them
    with torch.no_grad():
        out = physics.complete(obs, network, state[:, 0:1])
    assert torch.equal(out[..., 0:6], network[..., 0:6])

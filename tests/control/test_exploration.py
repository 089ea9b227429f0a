"""Initial data from a scripted controller with noise (``loop.initial_policy: scripted``)."""

import numpy as np
import pytest

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.control.exploration import NoisyControllerPolicy
from mbmeta.envs import get_family
from mbmeta.envs.juggler import OBS_NAMES

JUGGLER = get_family("juggler_balance")


def juggler_space():
    env = JUGGLER.make_env()
    space = env.action_space
    env.close()
    return space


def test_without_noise_it_is_the_controller_and_balances_the_whole_episode():
    space = juggler_space()
    policy = NoisyControllerPolicy(JUGGLER.make_controller, space, noise=0.0, seed=0)
    env_kwargs = {"max_episode_steps": 200}
    scripted = collect_episodes(policy, 2, family=JUGGLER, num_envs=2, seed=0, env_kwargs=env_kwargs)
    random = collect_episodes(RandomPolicy(space, seed=0), 2, family=JUGGLER, num_envs=2, seed=0, env_kwargs=env_kwargs)
    assert [e.length for e in scripted.episodes] == [200, 200]
    assert not any(e.terminated for e in scripted.episodes)
    assert max(e.length for e in random.episodes) < 60  # random actions drop the ball (why the option exists)
    # the same actions as one controller driven by hand on the first observations
    controller = JUGGLER.make_controller()
    obs = scripted.buffer.episode(0)["obs"][:5]
    expected = []
    for o in obs:
        expected.append(controller.act(o))
    np.testing.assert_allclose(scripted.buffer.episode(0)["action"][:5], np.stack(expected), rtol=1e-6, atol=1e-6)


def test_noise_levels_are_per_episode_within_bounds_and_reset_with_the_environment():
    space = juggler_space()
    resets = []

    class Counting:
        def __init__(self):
            self.inner = JUGGLER.make_controller()

        def act(self, obs):
            return self.inner.act(obs)

        def reset(self):
            resets.append(1)
            self.inner.reset()

    policy = NoisyControllerPolicy(Counting, space, noise=0.5, seed=1)
    policy.reset(3)
    assert len(resets) == 3 and ((policy.levels >= 0) & (policy.levels <= 0.5)).all()
    before = policy.levels.copy()
    policy.reset_envs(np.array([False, True, False]))
    assert len(resets) == 4
    assert policy.levels[0] == before[0] and policy.levels[2] == before[2] and policy.levels[1] != before[1]
    actions = policy.act(np.zeros((3, len(OBS_NAMES)), dtype=np.float32))
    assert actions.shape == (3, space.shape[0]) and actions.dtype == np.float32
    assert (actions >= space.low).all() and (actions <= space.high).all()


def test_bad_noise_is_refused():
    with pytest.raises(ValueError, match="noise must be >= 0"):
        NoisyControllerPolicy(JUGGLER.make_controller, juggler_space(), noise=-1.0)

"""The baselines' task wrapper: multitask draws a new train-split task at every reset and the env runs it; scratch
keeps one test task; an env that reports another task is refused. No stable-baselines3 needed."""

import gymnasium as gym
import numpy as np
import pytest

from mbmeta.baselines.envs import TaskResetWrapper, task_env_fns
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluation_tasks


@pytest.fixture(scope="module")
def juggler():
    return get_family("juggler_balance")


def test_multitask_draws_a_train_task_at_every_reset_and_the_env_runs_it(juggler):
    env = task_env_fns(juggler, 1, seed=3)[0]()
    try:
        drawn = []
        for _ in range(4):
            obs, info = env.reset()
            task = env.task
            assert juggler.in_split(task, "train") and not juggler.in_split(task, "test")
            assert info["task"] == pytest.approx(task.as_dict())
            # the physics is the drawn task's: the ball's mass in the MuJoCo model is nominal x scale
            ball_mass = env.unwrapped.model.body_mass[env.unwrapped.model.body("ball").id]
            assert ball_mass == pytest.approx(0.1 * task.as_dict()["ball_mass_scale"])
            _, _, _, _, info = env.step(np.zeros(3))
            assert info["task"] == pytest.approx(task.as_dict())
            assert obs.dtype == np.float32 and env.observation_space.dtype == np.float32
            drawn.append(task)
        assert len(set(drawn)) == 4 and env.tasks_drawn == 4
    finally:
        env.close()


def test_multitask_environments_and_seeds_draw_different_sequences(juggler):
    def first_tasks(seed, restart=0):
        envs = task_env_fns(juggler, 2, seed=seed, restart=restart)
        out = []
        for fn in envs:
            env = fn()
            env.reset()
            out.append(env.task)
            env.close()
        return out

    a, b = first_tasks(0)
    assert a != b  # two environments of one run
    assert first_tasks(0) == [a, b]  # reproducible
    assert first_tasks(1)[0] != a and first_tasks(0, restart=512)[0] != a  # another seed, a resumed run


def test_scratch_keeps_one_test_task_across_episodes(juggler):
    task = evaluation_tasks(juggler, "test", 8)[5]
    env = task_env_fns(juggler, 1, task=task, seed=0)[0]()
    try:
        for _ in range(3):
            _, info = env.reset()
            assert env.task == task and info["task"] == pytest.approx(task.as_dict())
            for _ in range(30):  # random actions drop the ball: the episode ends, the next reset keeps the task
                _, _, terminated, truncated, info = env.step(env.action_space.sample())
                assert info["task"] == pytest.approx(task.as_dict())
                if terminated or truncated:
                    break
        assert juggler.in_split(env.task, "test")
    finally:
        env.close()


class _WrongTask(gym.Wrapper):
    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "task": {k: v * 2 for k, v in info["task"].items()}}


def test_an_env_reporting_another_task_is_refused():
    pendulum = get_family("pendulum")
    env = TaskResetWrapper(_WrongTask(pendulum.make_env()), pendulum, seed=0)
    with pytest.raises(RuntimeError, match="not the task set"):
        env.reset()
    env.close()

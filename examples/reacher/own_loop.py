"""The trained Reacher agent in your own Gymnasium loop: `python own_loop.py runs/reacher/model.ckpt`."""

import sys

import numpy as np
from reacher_family import FAMILY

from mbmeta.control import MPCAgent
from mbmeta.planners import CEMPlanner


def run(checkpoint: str, task: dict, episodes: int = 1, seed: int = 0) -> list[float]:
    """Returns of ``episodes`` episodes on ``task`` with the agent adapting online to the unknown physics."""
    env = FAMILY.make_env()
    low, high = env.action_space.low, env.action_space.high
    planner = CEMPlanner(low, high, population=200, elites=20, iterations=3)
    agent = MPCAgent.from_checkpoint(
        checkpoint, planner, FAMILY.reward, FAMILY.terminated, horizon=10, context_length=10
    )  # K = 10: as trained
    returns = []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode, options={"task": task})  # info["task"] == task
        agent.reset()
        total, done = 0.0, False
        while not done:
            action = agent.act(obs)  # adapts to the last transitions, plans, returns a numpy action
            next_obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(obs, action, next_obs, reward, terminated)
            obs, total, done = next_obs, total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


if __name__ == "__main__":
    returns = run(sys.argv[1], task={"gear": 0.3, "damping": 3.0}, episodes=2)
    print(f"returns {np.round(returns, 1).tolist()} on a weak, stiff arm (gear 0.3, damping 3.0)")

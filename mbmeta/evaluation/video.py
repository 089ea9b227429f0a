"""Film one episode of the MPC agent as a GIF (offscreen MuJoCo rendering)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mbmeta.control.factory import make_agent
from mbmeta.control.settings import AgentSettings
from mbmeta.envs.family import TaskFamily
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import TaskParams


def record_video(
    module: MetaDynamicsModule,
    family: TaskFamily,
    task: TaskParams,
    path: str | Path,
    *,
    agent: AgentSettings | None = None,
    seed: int = 0,
    size: int = 240,
    fps: int = 20,
) -> Path:
    """Film one episode of the MPC agent on ``task`` as a GIF (offscreen rendering; needs ``MUJOCO_GL=egl``)."""
    import imageio.v3 as iio

    mpc = make_agent(module.dynamics, family, agent or AgentSettings(), seed=seed)
    env = family.make_env(render_mode="rgb_array", width=size, height=size)
    oracle = module.hparams.adaptation == "oracle"
    task_row = task.as_array()[None]
    try:
        obs, _ = env.reset(seed=seed, options={"task": task})
        mpc.reset(1)
        frames = [env.render()]
        done = False
        while not done:
            action = mpc.act(obs[None], task=task_row if oracle else None)[0]
            next_obs, reward, terminated, truncated, _ = env.step(action)
            mpc.observe(obs[None], action[None], next_obs[None], reward=np.array([reward]))
            frames.append(env.render())
            obs, done = next_obs, terminated or truncated
    finally:
        env.close()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    return path

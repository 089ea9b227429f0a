"""A base for CaDM's classic-control envs: closed-form dynamics in numpy, a MuJoCo model only to draw them.

CaDM's Pendulum and CartPole are gym 0.16's classic-control envs (adapted in ``cadm/envs/classic_control.py`` from
the sunblaze "modifiable" envs): explicit update formulas, no simulator. Their step is reproduced formula for formula
in numpy. A small MJCF picture of the system gives the ``rgb_array`` renders the other families have (Gymnasium's
classic-control renderer needs pygame) and holds the task's physical values (its :func:`apply_task` writes them),
so the env keeps the contract every family has: ``env.unwrapped.model`` follows the task.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.spaces import Box

from mbmeta.envs.task_env import TaskEnvMixin
from mbmeta.types import TaskParams

ASSETS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets")


class ClassicReferenceEnv(TaskEnvMixin, MujocoEnv):
    """A CaDM classic-control env: numpy state, the task, a ``[-1, 1]`` action box and a MuJoCo picture.

    Subclasses set ``family``, ``apply_task`` (writes the picture), ``task_fields``, ``metadata`` and implement
    ``step``, ``reset_model``, ``_get_obs``, :meth:`set_state` and :meth:`_picture_state`; they read the physics
    from :attr:`task`.

    Args:
        asset: MJCF file name in ``mbmeta/envs/assets`` (its timestep is the env's ``dt``).
        observation_space: the observation box.
        task: initial task (the nominal one if None).
        render_mode: ``None``, ``"human"``, ``"rgb_array"`` or ``"depth_array"``.
        width: render width in pixels.
        height: render height in pixels.
        default_camera_config: MuJoCo free-camera settings (a side view by default).
    """

    task_fields: tuple[str, ...] = ()

    def __init__(
        self,
        asset: str,
        observation_space: Box,
        task: TaskParams | Mapping[str, float] | None = None,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        default_camera_config: dict[str, Any] | None = None,
    ) -> None:
        camera = {"distance": 6.0, "azimuth": 90.0, "elevation": 0.0, "lookat": np.zeros(3)}
        MujocoEnv.__init__(
            self,
            os.path.join(ASSETS, asset),
            1,
            observation_space=observation_space,
            render_mode=render_mode,
            width=width,
            height=height,
            default_camera_config=default_camera_config or camera,
        )
        self._init_task(self.task_fields, task)

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set the system's state: positions ``qpos`` and velocities ``qvel`` in the picture's joint order."""
        raise NotImplementedError

    def _picture_state(self) -> tuple[np.ndarray, np.ndarray]:
        """``(qpos, qvel)`` of the picture for the current state."""
        raise NotImplementedError

    def render(self) -> Any:
        """Draw the current state (written into the picture's ``qpos`` first)."""
        qpos, qvel = self._picture_state()
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        mujoco.mj_kinematics(self.model, self.data)
        return super().render()

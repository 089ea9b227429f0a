"""Gymnasium's Reacher-v5 as a task family: its motor gear and joint damping vary (docs/bring_your_own_robot.md)."""

import torch

from mbmeta.envs import Field, Interval, MujocoFieldFamily


def reacher_reward(obs, action, next_obs):
    """Reacher-v5's reward, batched: minus the fingertip-to-target distance after the step, minus the action²."""
    return -torch.linalg.vector_norm(next_obs[..., 8:10], dim=-1) - (action * action).sum(-1)


FAMILY = MujocoFieldFamily(
    "reacher_gear",
    "Reacher-v5",
    [
        Field("gear", "actuator_gear", description="scale of both motors' gear (nominal 200)"),
        Field("damping", "dof_damping", index=["joint0", "joint1"], description="scale of the joints' damping"),
    ],
    train={"gear": Interval(0.5, 1.5), "damping": Interval(0.5, 1.5)},
    test={"gear": [0.3, 2.0], "damping": [0.5, 3.0]},
    reward=reacher_reward,
)

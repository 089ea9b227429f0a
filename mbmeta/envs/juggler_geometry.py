"""The juggler's fixed description, shared by its environments and its scripted controller.

The MJCF path, the arm's geometry, the two families' goals, the observation layout and the arm's kinematics: what
:mod:`mbmeta.envs.juggler` (environments, rewards, tasks) and :mod:`mbmeta.envs.juggler_controller` both need, so
that neither imports the other (``juggler`` builds the controller on request, so the controller must not import
``juggler``). Everything here is also importable from :mod:`mbmeta.envs.juggler`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).parent / "assets" / "juggler.xml"

# Geometry of the MJCF, used by the rewards, the reset poses and the scripted controller's kinematics.
SHOULDER = (0.0, 0.5)  # world (x, z) of the shoulder hinge
LINK_LENGTHS = (0.4, 0.4)  # upper arm, forearm
PADDLE_OFFSET = (0.0, 0.07)  # paddle-surface centre in the hand frame (along the paddle, along its normal)
PADDLE_HALF_LENGTH = 0.15
BALL_RADIUS = 0.04
GRAVITY = 9.81

# Servo actuation: rad of joint target per unit of action, about the home pose. 0.1 rad: the whole action box is the
# gentle range balancing needs (0.3 rad let full-range random actions throw the ball within ~1 s and let the planner
# pick actions far outside a gentle data set; experiments/juggler_diagnosis).
SERVO_SPAN = 0.1
MOTOR_LIMITS = (30.0, 15.0, 5.0)  # N·m: the shoulder, elbow and wrist motors' gears (torque at |action| = 1)
BOUNCE_SERVO_SPAN = 1.0  # the bounce's rad per unit action: strikes need large, fast paddle motions
BALANCE_TARGET = (0.5, 0.7)  # ball-centre target (x, z) of juggler_balance
BOUNCE_APEX = (0.5, 1.5)  # target x and apex height (ball centre) of juggler_bounce
# Above the highest point where the arm can hold the ball still at x = 0.5 (about 1.23 m), so that a still ball
# earns at most exp(-0.27 / 0.25) = 0.34 per step and bouncing (about 1 per step in flight) is worth more.
BOUNCE_HOME_HEIGHT = 0.6  # paddle-surface height of the bounce reset pose

OBS_NAMES: tuple[str, ...] = (
    "q_shoulder",
    "q_elbow",
    "q_wrist",
    "qvel_shoulder",
    "qvel_elbow",
    "qvel_wrist",
    "paddle_x",
    "paddle_z",
    "paddle_angle",
    "ball_x",
    "ball_z",
    "ball_vx",
    "ball_vz",
    "ball_spin",
)
OBS_INDEX = {name: i for i, name in enumerate(OBS_NAMES)}
I_PADDLE_X, I_PADDLE_Z, I_PADDLE_ANGLE = OBS_INDEX["paddle_x"], OBS_INDEX["paddle_z"], OBS_INDEX["paddle_angle"]
I_BALL_X, I_BALL_Z, I_BALL_VX, I_BALL_VZ = (OBS_INDEX[n] for n in ("ball_x", "ball_z", "ball_vx", "ball_vz"))

NOMINAL_RESTITUTION = 0.5  # of the XML's damping (119 s^-1)


# ----- kinematics (shared with the scripted controller) -----------------------------------------------------
def paddle_pose(q: np.ndarray) -> np.ndarray:
    """Forward kinematics: joint angles ``[..., 3]`` -> paddle-surface centre and angle ``[..., 3]`` (x, z, φ)."""
    q = np.asarray(q, dtype=np.float64)
    a1 = q[..., 0]
    a2 = a1 + q[..., 1]
    phi = a2 + q[..., 2]
    (l1, l2), (u, w) = LINK_LENGTHS, PADDLE_OFFSET
    x = SHOULDER[0] + l1 * np.cos(a1) + l2 * np.cos(a2) + u * np.cos(phi) - w * np.sin(phi)
    z = SHOULDER[1] + l1 * np.sin(a1) + l2 * np.sin(a2) + u * np.sin(phi) + w * np.cos(phi)
    return np.stack([x, z, phi], axis=-1)


def inverse_kinematics(x: float, z: float, phi: float) -> np.ndarray:
    """Joint angles ``[3]`` putting the paddle-surface centre at (x, z) with angle φ, elbow up.

    Unreachable points are pulled onto the workspace boundary (the arm stretches towards them).
    """
    (l1, l2), (u, w) = LINK_LENGTHS, PADDLE_OFFSET
    wx = x - u * np.cos(phi) + w * np.sin(phi) - SHOULDER[0]
    wz = z - u * np.sin(phi) - w * np.cos(phi) - SHOULDER[1]
    cos_elbow = (wx * wx + wz * wz - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)
    q2 = -np.arccos(np.clip(cos_elbow, -1.0, 1.0))  # negative: elbow above the shoulder-wrist line
    q1 = np.arctan2(wz, wx) - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
    return np.array([q1, q2, phi - q1 - q2])


# ----- the ball in the paddle frame (numpy or torch, batched over leading dims) ----------------------------------
def _namespace(x):
    import torch

    return torch if isinstance(x, torch.Tensor) else np


def paddle_kinematics(q, qvel):
    """Paddle-surface centre, angle and their rates: ``q [..., 3], qvel [..., 3] -> [..., 6]`` (x, z, φ, ẋ, ż, φ̇).

    Works on NumPy arrays and torch tensors alike (the planner calls it on batched tensors).
    """
    xp = _namespace(q)
    a1 = q[..., 0]
    a2 = a1 + q[..., 1]
    phi = a2 + q[..., 2]
    w1 = qvel[..., 0]
    w2 = w1 + qvel[..., 1]
    wphi = w2 + qvel[..., 2]
    (l1, l2), (u, w) = LINK_LENGTHS, PADDLE_OFFSET
    c1, s1, c2, s2, cp, sp = xp.cos(a1), xp.sin(a1), xp.cos(a2), xp.sin(a2), xp.cos(phi), xp.sin(phi)
    x = SHOULDER[0] + l1 * c1 + l2 * c2 + u * cp - w * sp
    z = SHOULDER[1] + l1 * s1 + l2 * s2 + u * sp + w * cp
    vx = -l1 * s1 * w1 - l2 * s2 * w2 - (u * sp + w * cp) * wphi
    vz = l1 * c1 * w1 + l2 * c2 * w2 + (u * cp - w * sp) * wphi
    return xp.stack([x, z, phi, vx, vz, wphi], -1)


def ball_in_paddle_frame(obs):
    """The ball seen from the paddle: ``obs [..., 14] -> [..., 5]`` (s, n, v_s, v_n, spin).

    ``s`` and ``n`` are the ball centre's offset from the paddle-surface centre along the paddle and along its normal
    (a ball resting at the centre has s = 0, n = ball radius); ``v_s``, ``v_n`` the ball's velocity minus the
    paddle-surface centre's, in the same axes; ``spin`` is unchanged. Invertible given the joints
    (:func:`ball_in_world_frame`). NumPy or torch.
    """
    xp = _namespace(obs)
    pk = paddle_kinematics(obs[..., 0:3], obs[..., 3:6])
    cp, sp = xp.cos(pk[..., 2]), xp.sin(pk[..., 2])
    dx, dz = obs[..., 9] - pk[..., 0], obs[..., 10] - pk[..., 1]
    dvx, dvz = obs[..., 11] - pk[..., 3], obs[..., 12] - pk[..., 4]
    return xp.stack(
        [dx * cp + dz * sp, -dx * sp + dz * cp, dvx * cp + dvz * sp, -dvx * sp + dvz * cp, obs[..., 13]], -1
    )


def ball_in_world_frame(joints, ball):
    """Inverse of :func:`ball_in_paddle_frame`: ``joints [..., 6]`` (q, q̇), ``ball [..., 5]`` -> ``[..., 5]``.

    Returns the world-frame ball (x, z, vx, vz, spin). NumPy or torch.
    """
    xp = _namespace(joints)
    pk = paddle_kinematics(joints[..., 0:3], joints[..., 3:6])
    cp, sp = xp.cos(pk[..., 2]), xp.sin(pk[..., 2])
    s, n, vs, vn = ball[..., 0], ball[..., 1], ball[..., 2], ball[..., 3]
    x = pk[..., 0] + s * cp - n * sp
    z = pk[..., 1] + s * sp + n * cp
    vx = pk[..., 3] + vs * cp - vn * sp
    vz = pk[..., 4] + vs * sp + vn * cp
    return xp.stack([x, z, vx, vz, ball[..., 4]], -1)


BALL_FRAMES = ("world", "paddle")
PADDLE_FRAME_OBS_NAMES: tuple[str, ...] = (*OBS_NAMES[:9], "ball_s", "ball_n", "ball_vs", "ball_vn", "ball_spin")


def to_paddle_frame_obs(obs):
    """``[..., 14]`` observation with the ball in the world frame -> the same with the ball in the paddle frame.

    Entries 9-13 become (s, n, v_s, v_n, spin) of :func:`ball_in_paddle_frame` (:data:`PADDLE_FRAME_OBS_NAMES`); the
    rest is unchanged. NumPy or torch.
    """
    xp = _namespace(obs)
    return xp.concatenate([obs[..., :9], ball_in_paddle_frame(obs)], -1)


def to_world_frame_obs(obs):
    """Inverse of :func:`to_paddle_frame_obs`: ``[..., 14] -> [..., 14]`` with the ball back in the world frame."""
    xp = _namespace(obs)
    return xp.concatenate([obs[..., :9], ball_in_world_frame(obs[..., :6], obs[..., 9:14])], -1)

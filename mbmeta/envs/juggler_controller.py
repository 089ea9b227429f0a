"""A scripted controller for the juggler families.

The controller reads only the observation (``OBS_NAMES``) and knows the *nominal* robot: it
never sees the task. Two layers:

- an outer layer turns the ball state into a paddle reference (position, angle and their rates):

  * balance: ball-on-beam. The paddle-surface centre stays below the target point; the paddle tilts against the
    ball's offset and velocity along it (``φ = k_p·(x_ball - x*) + k_d·vx_ball``), so the ball rolls back.
  * bounce: the *mirror law* (Buehler, Koditschek and Kindlmann, 1990). The paddle height mirrors the ball's
    height about a plane, ``z_paddle = z_plane - κ·b`` (b: ball height above the plane), so it meets the falling
    ball on the plane moving up at ``κ·|v|``; κ is set from the ball's flight energy so that the rebound reaches
    the target apex given the restitution, which the controller estimates from the apexes it achieves. The paddle
    follows the ball's x and tilts to send the ball back towards the target x.

- an inner layer tracks the reference in joint space (inverse kinematics) with computed-torque PD control on the
  nominal MuJoCo model (mass matrix, gravity, and for balance the ball's weight).

As a collection policy (one controller per environment, optional action noise) it is
:class:`mbmeta.control.exploration.NoisyControllerPolicy`; ``mbmeta juggler-video``
(:mod:`mbmeta.commands.juggler_video`) films it. It imports only the juggler's shared description
(:mod:`mbmeta.envs.juggler_geometry`), never :mod:`mbmeta.envs.juggler`, which builds it on request.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from mbmeta.envs.juggler_geometry import (
    BALANCE_TARGET,
    BALL_RADIUS,
    BOUNCE_APEX,
    BOUNCE_HOME_HEIGHT,
    GRAVITY,
    I_BALL_VX,
    I_BALL_VZ,
    I_BALL_X,
    I_BALL_Z,
    I_PADDLE_Z,
    MODEL_PATH,
    NOMINAL_RESTITUTION,
    OBS_NAMES,
    SERVO_SPAN,
    inverse_kinematics,
    paddle_pose,
    to_world_frame_obs,
)

_REACH = 0.2  # m, the deepest the paddle goes below the mirror plane while the ball flies
_BRAKE = 15.0  # m/s², the paddle's deceleration after an impact
_RETURN_RATE = 2.5  # 1/s, ball vx wanted after an impact per metre of offset from the target x
FAMILY_NAMES = {"balance": "juggler_balance", "bounce": "juggler_bounce"}
SERVO_FAMILY_NAMES = {"juggler_balance_servo": "balance"}


class JugglerController:
    """Scripted controller for ``juggler_balance`` or ``juggler_bounce``: ``act(obs [14]) -> action [3]``.

    Args:
        mode: ``"balance"`` or ``"bounce"`` (or the family names ``"juggler_balance"`` / ``"juggler_bounce"``).
        stiffness: natural frequency (rad/s) of the joint-space tracking loop.
        dt: control period in seconds (the environments' 0.02).
        actuation: ``"torque"`` (computed torque, the inner loop below) or ``"servo"`` (balance only: the joint
            targets of the wanted paddle pose, ``(q_ref − home) / SERVO_SPAN``, for servo-actuated environments).
        ball_frame: the frame the observation gives the ball in, ``"world"`` or ``"paddle"``.
    """

    def __init__(
        self, mode: str, stiffness: float = 14.0, dt: float = 0.02, actuation: str = "torque", ball_frame: str = "world"
    ):
        mode = SERVO_FAMILY_NAMES.get(mode, mode)
        mode = {v: k for k, v in FAMILY_NAMES.items()}.get(mode, mode)
        if actuation not in ("torque", "servo"):
            raise ValueError(f"actuation must be 'torque' or 'servo', got {actuation!r}")
        if actuation == "servo" and mode != "balance":
            raise ValueError(f"servo actuation is scripted for balance only, got mode {mode!r}")
        if ball_frame not in ("world", "paddle"):
            raise ValueError(f"ball_frame must be 'world' or 'paddle', got {ball_frame!r}")
        self.actuation, self.ball_frame = actuation, ball_frame
        if mode not in FAMILY_NAMES:
            raise ValueError(f"unknown juggler mode {mode!r}; valid modes are {sorted(FAMILY_NAMES)}")
        self.mode = mode
        self.dt = dt
        self._kp = stiffness**2
        self._kd = 2.0 * stiffness  # critically damped
        # integral action absorbs what the nominal model gets wrong under a task (gear, ball weight)
        self._ki = stiffness**3 / 8.0
        self._model = mujoco.MjModel.from_xml_path(str(MODEL_PATH))  # nominal: the controller never sees the task
        self._data = mujoco.MjData(self._model)
        self._gear = self._model.actuator_gear[:, 0].copy()
        self._hand = self._model.body("hand").id
        self._ball_mass = float(self._model.body_mass[self._model.body("ball").id])
        self.reset()

    def reset(self) -> None:
        """Forget what was learnt about the current episode (call at every env reset)."""
        self._integral = np.zeros(3)
        self._restitution = NOMINAL_RESTITUTION  # estimate, corrected after each apex (bounce)
        self._rising = False
        self._apex_seen = 0.0
        self._prev_vz = 0.0
        self._impact: tuple[float, float] | None = None  # (paddle height, paddle speed) at the last impact
        self._since_impact = 0.0
        self.apexes: list[float] = []  # ball-centre apex heights reached so far (bounce)

    # ----- outer layer: paddle references -------------------------------------------------------------------
    def _balance_reference(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Ball on a tilting beam accelerates at (5/7)·g·sin(φ) towards the low side: the gains give the ball's
        # offset a natural frequency of ~2.5 rad/s and a damping ratio of ~0.8, far below the arm loop's.
        tx, tz = BALANCE_TARGET
        phi = np.clip(0.9 * (obs[I_BALL_X] - tx) + 0.6 * obs[I_BALL_VX], -0.35, 0.35)
        return np.array([tx, tz - BALL_RADIUS, phi]), np.zeros(3), np.zeros(3)

    def _bounce_reference(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tx, apex = BOUNCE_APEX
        plane = BOUNCE_HOME_HEIGHT
        x, z, vx, vz = obs[I_BALL_X], obs[I_BALL_Z], obs[I_BALL_VX], obs[I_BALL_VZ]
        self._track_apex(z, vz)
        height = z - BALL_RADIUS - plane  # ball bottom above the mirror plane
        energy = max(0.5 * vz * vz + GRAVITY * height, 1e-3)  # per unit mass, constant in flight
        target_energy = GRAVITY * (apex - BALL_RADIUS - plane)
        v_in, v_out = math.sqrt(2.0 * energy), math.sqrt(2.0 * target_energy)
        e = self._restitution
        # rebound speed off a paddle moving up at u: v_out = u (1 + e) + e v_in, and u = κ v_in under the mirror law
        kappa = float(np.clip((v_out / v_in - e) / (1.0 + e), 0.0, 1.2))
        # tilt so that the impact impulse (about (v_in + v_out) along the paddle normal) turns the ball's vx into
        # -_RETURN_RATE·(x - x*): back over the target within about one flight
        phi = float(np.clip((vx + _RETURN_RATE * (x - tx)) / (v_in + v_out), -0.3, 0.3))
        # Mirror law with the paddle's excursion saturated smoothly at _REACH below the plane: near the impact (b ≈ 0)
        # it is the exact mirror, paddle speed κ·|v| up; far from it the paddle waits instead of diving to the floor.
        if height > 0.0:
            th = math.tanh(kappa * height / _REACH)
            sech2 = 1.0 - th * th
            z_ref = plane - _REACH * th
            vz_ref = -kappa * vz * sech2
            az_ref = kappa * GRAVITY * sech2 + 2.0 * kappa * kappa * vz * vz / _REACH * sech2 * th
        else:  # ball at or into the plane: meet it there
            z_ref, vz_ref, az_ref = plane - kappa * height, -kappa * vz, 0.0
        # The pure mirror law reverses the paddle's velocity at the impact, which no arm can follow; after an impact
        # the paddle instead keeps rising and brakes at a constant rate until the mirror trajectory overtakes it.
        if self._prev_vz < -0.5 and vz > 0.0 and height < 0.1:
            self._since_impact, self._impact = 0.0, (obs[I_PADDLE_Z], max(self._paddle_vz(obs), 0.0))
        if self._impact is not None:
            self._since_impact += self.dt
            (z0, u), t = self._impact, self._since_impact
            z_brake = z0 + u * t - 0.5 * _BRAKE * t * t
            if z_brake > z_ref:
                z_ref, vz_ref, az_ref = z_brake, u - _BRAKE * t, -_BRAKE
            else:
                self._impact = None
        self._prev_vz = vz
        pose = np.array([np.clip(x, tx - 0.25, tx + 0.25), z_ref, phi])  # stay inside the dexterous workspace
        return pose, np.array([vx, vz_ref, 0.0]), np.array([0.0, az_ref, 0.0])

    @staticmethod
    def _paddle_vz(obs: np.ndarray) -> float:
        return float((_pose_jacobian(obs[0:3]) @ obs[3:6])[1])

    def _track_apex(self, z: float, vz: float) -> None:
        """Record each apex and nudge the restitution estimate so the next rebound lands on the target apex."""
        if vz > 0.3:
            self._rising, self._apex_seen = True, max(self._apex_seen, z) if self._rising else z
        elif self._rising and vz <= 0.0:
            self._rising = False
            apex = max(self._apex_seen, z)
            self.apexes.append(apex)
            # too high -> the ball is bouncier than believed -> raise the estimate (κ shrinks), and vice versa
            error = apex - BOUNCE_APEX[1]
            self._restitution = float(np.clip(self._restitution + 0.3 * error, 0.0, 0.95))

    # ----- inner layer: joint-space computed torque ---------------------------------------------------------
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Motor commands for one observation.

        Args:
            obs: ``[14]`` observation of a juggler environment.

        Returns:
            ``[3]`` float32 action in [-1, 1].
        """
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != (len(OBS_NAMES),):
            raise ValueError(f"obs must have shape ({len(OBS_NAMES)},), got {obs.shape}")
        if self.ball_frame == "paddle":
            obs = to_world_frame_obs(obs)
        q, qvel = obs[0:3], obs[3:6]
        if self.mode == "balance":
            pose, rate, accel = self._balance_reference(obs)
        else:
            pose, rate, accel = self._bounce_reference(obs)
        q_ref = inverse_kinematics(*pose)
        if self.actuation == "servo":  # the servos track the targets themselves
            home = inverse_kinematics(BALANCE_TARGET[0], BALANCE_TARGET[1] - BALL_RADIUS, 0.0)
            return np.clip((q_ref - home) / SERVO_SPAN, -1.0, 1.0).astype(np.float32)
        jac = _pose_jacobian(q_ref)
        # damped least squares: bounded joint rates near the stretched-arm singularity
        jac_inv = jac.T @ np.linalg.inv(jac @ jac.T + 0.05**2 * np.eye(3))
        qvel_ref = jac_inv @ rate
        qacc_ref = jac_inv @ (accel - _pose_jacobian_rate(q_ref, qvel_ref) @ qvel_ref)
        error = _wrap(q_ref - q)
        self._integral = np.clip(self._integral + error * self.dt, -0.05, 0.05)  # clipped: no wind-up
        qacc = qacc_ref + self._kp * error + self._kd * (qvel_ref - qvel) + self._ki * self._integral
        torque = self._computed_torque(q, qvel, qacc, carry_ball=self.mode == "balance", ball=obs[[I_BALL_X, I_BALL_Z]])
        return np.clip(torque / self._gear, -1.0, 1.0).astype(np.float32)

    def _computed_torque(
        self, q: np.ndarray, qvel: np.ndarray, qacc: np.ndarray, carry_ball: bool, ball: np.ndarray
    ) -> np.ndarray:
        m, d = self._model, self._data
        d.qpos[:3], d.qvel[:3] = q, qvel
        d.qpos[3:5], d.qvel[3:] = (0.0, 5.0), 0.0  # park the model's ball far from everything: no contacts
        mujoco.mj_forward(m, d)
        mass = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, d, mass)
        torque = mass[:3, :3] @ qacc + d.qfrc_bias[:3] - d.qfrc_passive[:3]
        if carry_ball:
            # the resting ball's weight, applied to the hand where the ball touches the paddle
            jacp = np.zeros((3, m.nv))
            point = np.array([ball[0], 0.0, ball[1] - BALL_RADIUS])
            mujoco.mj_jac(m, d, jacp, None, point, self._hand)
            torque += jacp[2, :3] * self._ball_mass * GRAVITY
        return torque


def _pose_jacobian(q: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``[3, 3]`` d(paddle x, z, φ)/dq by central differences of :func:`paddle_pose`."""
    steps = np.eye(3) * eps
    return ((paddle_pose(q + steps) - paddle_pose(q - steps)) / (2.0 * eps)).T


def _pose_jacobian_rate(q: np.ndarray, qvel: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """``[3, 3]`` time derivative of :func:`_pose_jacobian` along ``qvel`` (the centripetal part of the motion)."""
    return (_pose_jacobian(q + qvel * eps) - _pose_jacobian(q - qvel * eps)) / (2.0 * eps)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2.0 * np.pi) - np.pi

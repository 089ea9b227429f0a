"""The juggler's arm as known physics: a fitted rigid three-link arm driven by servos whose strength is adapted.

:class:`ServoArm` integrates the planar arm's joints over one control step: rigid-body dynamics of three links (the
mass matrix and the velocity and gravity torques of a planar chain), joint armature and damping, and the servo law
``g · clip(kp·(home + span·a − q) − kv·q̇, ±F)`` per joint, at substeps of semi-implicit Euler with the damping
taken implicitly (as MuJoCo's ``implicitfast``). What it is told: the chain's link lengths, the servo law's form,
the action's meaning (joint targets ``home + span·a``) and the torque limits *F* (the family's description states
them), gravity, the step length. What it learns: each link's mass, centre of mass and inertia, each joint's
armature and damping, each servo's stiffness and damping (in log space, the centres free; generic starting values),
by gradient through the integration on the true transitions. What it adapts: the motor strength *g*, which
multiplies the servo's torque exactly (``apply_task`` scales its stiffness, damping and limit alike).

:class:`ServoArmBallContact` puts it under :class:`~mbmeta.envs.juggler_contact.AdaptiveBallContact`: the whole next
observation is computed (the network's prediction is not used), and each environment's motor strength and contact
damping are fitted to its context. Why: a network trained on strengths 0.8-1.2 does not carry to the test split's
0.5-0.6 and 1.5-1.7, while the torque's exact linearity in *g* does (experiments/juggler_diagnosis, step 16).
The ball's push on the paddle is not modelled. torch only, batched over any leading dims.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from mbmeta.envs.juggler_contact import AdaptiveBallContact, BallContact, contact_transitions, grid_choice
from mbmeta.envs.juggler_geometry import (
    BALL_RADIUS,
    BOUNCE_APEX,
    BOUNCE_HOME_HEIGHT,
    BOUNCE_SERVO_SPAN,
    GRAVITY,
    LINK_LENGTHS,
    MOTOR_LIMITS,
    SHOULDER,
    inverse_kinematics,
    paddle_kinematics,
)

STRENGTHS = torch.linspace(np.log(0.3), np.log(3.0), 33).exp()  # the motor strengths adapt searches: ×0.3 to ×3
SEARCH_SUBSTEPS = 10  # integration substeps while searching a strength (4 ms: close enough to rank the grid)
LOSS_SEGMENTS = 32  # training segments per loss call whose arm is fitted (of the batch's; enough for 24 parameters)


def _joint_error(joints: Tensor, true: Tensor, dt: float) -> Tensor:
    """Squared joint error ``[*S]`` of ``joints`` against ``true`` (``[*S, ≥6]``), in (rad/s)².

    The rate error plus the angle error divided by the step length (1 mrad counts as 0.025 rad/s at 25 Hz).
    """
    error = joints[..., 0:6] - true[..., 0:6]
    return error[..., 3:6].square().sum(-1) + (error[..., 0:3] / dt).square().sum(-1)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """2-D cross product ``a × b [*S]`` of vectors ``[*S, 2]`` (x, z)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


class ServoArm(nn.Module):
    """A planar three-link arm with joint servos, integrated over one step: ``(obs, action) -> next joints``.

    Args:
        home: ``[3]`` joint angles an action of zero holds (rad); the bounce home pose by default.
        span: joint-target offset (rad) of an action of ±1.
        limits: ``[3]`` the servos' torque limits at strength 1 (N·m; the family states them). Told, not fitted:
            scaling every mass, inertia, damping and servo gain by one factor leaves the motion unchanged, so one
            quantity must fix the units for the adapted strength to mean the motor's (1 = as trained on average).
        dt: the step length (s).
        substeps: integration substeps per step (40: MuJoCo's 1 ms at 25 Hz, where it reproduces MuJoCo's arm).

    Fitted parameters (generic starting values, not the MJCF's): ``log_mass [3]``, ``com [3, 2]`` (each link's
    centre of mass in its own frame: along the link, across it), ``log_inertia [3]`` (about the centre),
    ``log_armature [3]``, ``log_damping [3]``, ``log_kp [3]``, ``log_kv [3]``.
    """

    def __init__(
        self,
        home: tuple[float, float, float] | None = None,
        span: float = BOUNCE_SERVO_SPAN,
        limits: tuple[float, float, float] = MOTOR_LIMITS,
        dt: float = 0.04,
        substeps: int = 40,
    ) -> None:
        super().__init__()
        if not isinstance(substeps, int) or substeps < 1:
            raise ValueError(f"ServoArm: substeps must be an int >= 1, got {substeps!r}")
        if not (span > 0 and dt > 0):
            raise ValueError(f"ServoArm: span and dt must be > 0, got span={span!r}, dt={dt!r}")
        if home is None:
            home = tuple(inverse_kinematics(BOUNCE_APEX[0], BOUNCE_HOME_HEIGHT, 0.0))
        if len(home) != 3:
            raise ValueError(f"ServoArm: home must hold 3 joint angles, got {home!r}")
        if len(limits) != 3 or not all(v > 0 for v in limits):
            raise ValueError(f"ServoArm: limits must be 3 torques > 0, got {limits!r}")
        self.register_buffer("home", torch.tensor(home, dtype=torch.float32))
        self.register_buffer("limits", torch.tensor(limits, dtype=torch.float32))
        self.span, self.dt, self.substeps = float(span), float(dt), substeps
        log = lambda *v: nn.Parameter(torch.tensor(v, dtype=torch.float32).log())  # noqa: E731
        self.log_mass = log(0.5, 0.5, 0.5)
        self.com = nn.Parameter(torch.tensor([[0.2, 0.0], [0.2, 0.0], [0.0, 0.05]]))
        self.log_inertia = log(0.01, 0.01, 0.01)
        self.log_armature = log(0.01, 0.01, 0.01)
        self.log_damping = log(0.1, 0.1, 0.1)
        self.log_kp = log(100.0, 100.0, 100.0)
        self.log_kv = log(5.0, 5.0, 5.0)

    def forward(
        self, obs: Tensor, action: Tensor, strength: Tensor | float = 1.0, substeps: int | None = None
    ) -> Tensor:
        """Next joints ``[*S, 6]`` (angles, rates) from ``obs [*S, ≥6]``, ``action [*S, 3]`` and the motor strength.

        ``strength``: a float or ``[*S]`` (broadcast against the leading dims), the servo torque's factor.
        ``substeps``: integration substeps (default: the module's).
        """
        q, qd = obs[..., 0:3], obs[..., 3:6]
        constants, target = self.constants(obs.dtype), self.target(action.to(obs.dtype))
        g = strength[..., None].to(obs.dtype) if isinstance(strength, Tensor) else strength
        substeps = self.substeps if substeps is None else substeps
        for _ in range(substeps):
            q, qd = self.substep(q, qd, target, g, constants, self.dt / substeps)
        return torch.cat([q, qd], -1)

    def constants(self, dtype: torch.dtype) -> tuple[Tensor, ...]:
        """The fitted and told constants in ``dtype``, as :meth:`substep` takes them."""
        mass, inertia = self.log_mass.exp().to(dtype), self.log_inertia.exp().to(dtype)
        com, armature, damping = self.com.to(dtype), self.log_armature.exp().to(dtype), self.log_damping.exp().to(dtype)
        kp, kv = self.log_kp.exp().to(dtype), self.log_kv.exp().to(dtype)
        return mass, com, inertia, armature, damping, kp, kv, self.limits.to(dtype)

    def target(self, action: Tensor) -> Tensor:
        """The servos' joint targets ``[*S, 3]`` that ``action [*S, 3]`` sets (clipped to the box)."""
        return self.home.to(action.dtype) + self.span * action.clamp(-1.0, 1.0)

    def substep(
        self,
        q: Tensor,
        qd: Tensor,
        target: Tensor,
        strength: Tensor | float,
        constants: tuple[Tensor, ...],
        h: float,
        torque: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One substep of ``h`` s: joints ``q, qd [*S, 3]`` -> the next ones (semi-implicit Euler, damping implicit).

        ``strength``: a float or ``[*S, 1]``; ``torque [*S, 3]``: an external joint torque (e.g. the ball's push).
        """
        mass, com, inertia, armature, damping, kp, kv, limit = constants
        drive = kp * (target - q) - kv * qd
        servo = strength * torch.maximum(torch.minimum(drive, limit), -limit)
        unsaturated = (drive.abs() < limit).to(q.dtype)
        matrix, bias = self._rigid_body(q, qd, mass, com, inertia)
        matrix = matrix + torch.diag_embed(armature + h * (damping + strength * kv * unsaturated))
        force = servo - damping * qd - bias
        qdd = _solve3(matrix, force if torque is None else force + torque)
        qd = qd + h * qdd
        return q + h * qd, qd

    @staticmethod
    def _rigid_body(q: Tensor, qd: Tensor, mass: Tensor, com: Tensor, inertia: Tensor) -> tuple[Tensor, Tensor]:
        """The chain's mass matrix ``[*S, 3, 3]`` and velocity-plus-gravity torques ``[*S, 3]`` at ``q, qd [*S, 3]``.

        Link i's centre ``c_i`` and the joints' positions ``o_k`` (relative to the shoulder); ``r_ik = c_i − o_k``
        (k ≤ i). ``M_kj = Σ_{i ≥ k, j} m_i r_ik·r_il + I_i``; the torque ``Σ_{i ≥ k} m_i r_ik × (a_i + g)``, with
        ``a_i`` the centre's acceleration at zero joint acceleration (the chain's centripetal terms).
        """
        theta, omega = q.cumsum(-1), qd.cumsum(-1)
        along = torch.stack([theta.cos(), theta.sin()], -1)  # [*S, 3, 2]
        across = torch.stack([-along[..., 1], along[..., 0]], -1)
        lengths = torch.tensor(LINK_LENGTHS, dtype=q.dtype, device=q.device)
        bones = along[..., 0:2, :] * lengths[:, None]  # [*S, 2, 2]: joint k to joint k + 1
        offset = com[:, 0:1] * along + com[:, 1:2] * across  # [*S, 3, 2]: joint i to centre i
        joints = [torch.zeros_like(bones[..., 0, :]), bones[..., 0, :], bones[..., 0, :] + bones[..., 1, :]]
        centres = [joints[i] + offset[..., i, :] for i in range(3)]
        w2 = omega * omega
        accel = [
            -w2[..., 0:1] * offset[..., 0, :],
            -w2[..., 0:1] * bones[..., 0, :] - w2[..., 1:2] * offset[..., 1, :],
            -w2[..., 0:1] * bones[..., 0, :] - w2[..., 1:2] * bones[..., 1, :] - w2[..., 2:3] * offset[..., 2, :],
        ]
        up = torch.tensor([0.0, GRAVITY], dtype=q.dtype, device=q.device)
        r = {(i, k): centres[i] - joints[k] for i in range(3) for k in range(i + 1)}
        rows = [[None] * 3 for _ in range(3)]
        for k in range(3):
            for j in range(k, 3):
                rows[k][j] = sum(mass[i] * (r[i, k] * r[i, j]).sum(-1) + inertia[i] for i in range(j, 3))
                rows[j][k] = rows[k][j]
        matrix = torch.stack([torch.stack(row, -1) for row in rows], -2)
        bias = torch.stack([sum(mass[i] * _cross(r[i, k], accel[i] + up) for i in range(k, 3)) for k in range(3)], -1)
        return matrix, bias

    def error(
        self, obs: Tensor, action: Tensor, next_obs: Tensor, strength: Tensor | float = 1.0, substeps: int | None = None
    ) -> Tensor:
        """Squared joint error ``[*S]`` of transitions ``[*S, ≥6]`` (:func:`_joint_error`), in (rad/s)²."""
        return _joint_error(self(obs, action, strength, substeps), next_obs, self.dt)

    @torch.no_grad()
    def best_strength(self, obs: Tensor, action: Tensor, next_obs: Tensor, grid: Tensor, valid: Tensor) -> Tensor:
        """Per environment, the strength whose joints best match ``[B, K, ≥6]``'s: ``[B]``; 1 where no step is valid.

        The summed :meth:`error` over the ``valid [B, K]`` steps is ranked at every strength of ``grid [G]``
        (ascending, evenly spaced in log) with :data:`SEARCH_SUBSTEPS`; then, at the module's own substeps, evaluated
        at the best point and its two neighbours, and refined to the vertex of the parabola through the three (in
        log strength).
        """
        best = self._total_error(obs, action, next_obs, grid.view(-1, 1), valid, SEARCH_SUBSTEPS).argmin(0)
        best = best.clamp(1, len(grid) - 2)  # [B]: the middle of three neighbours
        around = grid[best[None] + torch.arange(-1, 2, device=best.device)[:, None]]  # [3, B]
        left, middle, right = self._total_error(obs, action, next_obs, around, valid)
        curvature = left - 2 * middle + right
        shift = torch.where(curvature > 0, 0.5 * (left - right) / curvature, torch.zeros_like(curvature))
        log_grid = grid.log()
        strength = (log_grid[best] + (log_grid[1] - log_grid[0]) * shift.clamp(-1.0, 1.0)).exp()
        return torch.where(valid.any(-1), strength, torch.ones_like(strength))

    def _total_error(
        self, obs: Tensor, action: Tensor, next_obs: Tensor, strengths: Tensor, valid: Tensor, substeps=None
    ) -> Tensor:
        """``[G, B]``: :meth:`error` summed over the ``valid [B, K]`` steps at ``strengths [G, B or 1]``."""
        shape = (strengths.shape[0], *obs.shape[:2])
        strengths = strengths[..., None].expand(shape)
        error = self.error(
            obs.expand(*shape, -1), action.expand(*shape, -1), next_obs.expand(*shape, -1), strengths, substeps
        )
        return (error * valid).sum(-1)


def _solve3(matrix: Tensor, rhs: Tensor) -> Tensor:
    """The solution ``[*S, 3]`` of ``matrix [*S, 3, 3]`` (symmetric) times it equal to ``rhs [*S, 3]``, by cofactors."""
    a, b, c = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 0, 2]
    d, e, f = matrix[..., 1, 1], matrix[..., 1, 2], matrix[..., 2, 2]
    c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
    c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * c00 + b * c01 + c * c02
    x, y, z = rhs[..., 0], rhs[..., 1], rhs[..., 2]
    return (
        torch.stack([c00 * x + c01 * y + c02 * z, c01 * x + c11 * y + c12 * z, c02 * x + c12 * y + c22 * z], -1)
        / (det[..., None])
    )


class ServoArmBallContact(AdaptiveBallContact):
    """The juggler's whole next observation: the fitted servo arm, its paddle pose and the ball's contact.

    The joints come from :class:`ServoArm` (the network's prediction is not used), the paddle pose and the ball from
    :class:`~mbmeta.envs.juggler_contact.BallContact` on those joints. ``adapt`` (``adapts``): per environment, the
    contact damping as :class:`~mbmeta.envs.juggler_contact.AdaptiveBallContact`, and the motor strength of
    :data:`STRENGTHS` whose simulated joints best match the context's (the arm's loss over its valid steps; 1 where
    it has none). Trained at strength 1 (the average training arm); the strength is adapted only when acting.
    Uses the action (``uses_action``).
    """

    computed = tuple(range(14))
    uses_action = True

    def __init__(self) -> None:
        super().__init__()
        self.arm = ServoArm(dt=self.dt)

    def complete(
        self, obs: Tensor, next_obs: Tensor, state: Tensor | None = None, action: Tensor | None = None
    ) -> Tensor:
        """``obs [*S, 14]``, ``action [*S, 3]`` -> the next observation ``[*S, 14]`` (``next_obs`` is not read).

        ``state [B, 2]`` (log damping scale, log strength per environment): ``obs`` is then ``[E, B, *S, 14]``.
        """
        if action is None:
            raise ValueError("ServoArmBallContact.complete needs the action (uses_action)")
        strength: Tensor | float = 1.0
        if state is not None:
            strength = state[:, 1].exp().to(obs.dtype).view(1, -1, *([1] * (obs.dim() - 3))).expand(obs.shape[:-1])
        joints = self.arm(obs, action, strength)
        damping = None if state is None else state[:, 0:1]
        return super().complete(obs, torch.cat([joints, next_obs[..., 6:]], -1), damping)

    def loss(self, obs: Tensor, next_obs: Tensor, action: Tensor | None = None) -> Tensor:
        """The ball's contact loss (:meth:`BallContact.loss`) plus the arm's, on segments ``[*S, M, 14]``.

        The arm's: :meth:`ServoArm.error` on up to :data:`LOSS_SEGMENTS` segments (a random draw of them), each at the
        strength that fits it best (:meth:`ServoArm.best_strength` over :data:`STRENGTHS`, divided by the drawn
        segments' geometric mean). Why the strength: the training tasks' motors differ (0.8-1.2×), and one arm for
        all would fit their average badly. Why divided: a stronger motor and a lighter arm move alike, so the mean
        strength fixes the units (1 = the training tasks' typical motor). ``action [*S, M, 3]`` is required.
        """
        if action is None:
            raise ValueError("ServoArmBallContact.loss needs the action (uses_action)")
        contact = super().loss(obs, next_obs)
        obs, next_obs, action = self._draw_segments(obs, next_obs, action)
        valid = torch.ones(obs.shape[:2], dtype=torch.bool, device=obs.device)
        strength = self.arm.best_strength(obs, action, next_obs, STRENGTHS.to(obs), valid)
        strength = strength / strength.log().mean().exp()
        return contact + self.arm.error(obs, action, next_obs, strength[:, None]).mean()

    @staticmethod
    def _draw_segments(obs: Tensor, next_obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Up to :data:`LOSS_SEGMENTS` segments ``[N, M, ...]`` of ``[*S, M, ...]``, a random draw if there are more."""
        m = obs.shape[-2] if obs.dim() >= 2 else 1
        obs, next_obs, action = (t.reshape(-1, m, t.shape[-1]) for t in (obs, next_obs, action))
        if len(obs) > LOSS_SEGMENTS:
            rows = torch.randperm(len(obs), device=obs.device)[:LOSS_SEGMENTS]
            obs, next_obs, action = obs[rows], next_obs[rows], action[rows]
        return obs, next_obs, action

    def adapt(self, context, mask: Tensor | None) -> Tensor:
        """``context`` fields ``[B, K, ...]`` (raw), ``mask [B, K]`` -> ``[B, 2]``: log damping scale, log strength."""
        damping = super().adapt(context, mask)
        obs = context.obs
        valid = torch.ones(obs.shape[:2], dtype=torch.bool, device=obs.device) if mask is None else mask
        if obs.shape[1] == 0:
            return torch.cat([damping, torch.zeros_like(damping)], -1)
        strength = self.arm.best_strength(obs, context.action, context.next_obs, STRENGTHS.to(obs), valid)
        return torch.cat([damping, strength.log()[:, None]], -1)


BALL_MASS_SCALES = torch.linspace(np.log(0.25), np.log(4.0), 17).exp()  # the ball masses adapt searches: ×0.25 to ×4


class ServoArmBallPush(ServoArmBallContact):
    """:class:`ServoArmBallContact` with the ball pushing back: the arm and the ball integrated together in contact.

    Where the ball comes near the paddle (:meth:`~mbmeta.envs.juggler_contact.BallContact.free_flight`), the arm and
    the ball are integrated together at 1 ms: each substep the contact's push on the ball (per unit mass, as
    :meth:`~mbmeta.envs.juggler_contact.BallContact.contact`) times the ball's mass acts back on the paddle at the
    contact point, as joint torques. The ball's mass is fitted (``log_ball_mass``, from a generic 0.05 kg) on the
    arm's joint error through contacts; ``adapt`` also picks, per environment, a scale of it from
    :data:`BALL_MASS_SCALES` that best matches the context's joints on its contact steps (1 where it has none), after
    the strength (now fitted on the steps without a paddle contact). Why: a heavier ball slows the striking paddle, so
    strikes of a model without the push fly lower than planned (juggler_diagnosis step 16).
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_ball_mass = nn.Parameter(torch.tensor(0.05).log())

    def complete(
        self, obs: Tensor, next_obs: Tensor, state: Tensor | None = None, action: Tensor | None = None
    ) -> Tensor:
        """``obs [*S, 14]``, ``action [*S, 3]`` -> the next observation ``[*S, 14]`` (``next_obs`` is not read).

        ``state [B, 3]`` (log damping scale, log strength, log ball-mass scale per environment): ``obs`` is then
        ``[E, B, *S, 14]``.
        """
        if action is None:
            raise ValueError("ServoArmBallPush.complete needs the action (uses_action)")
        scales: list[Tensor | float] = [1.0, 1.0, 1.0]
        if state is not None:
            per_env = state.exp().to(obs.dtype).view(1, -1, *([1] * (obs.dim() - 3)), state.shape[-1])
            scales = list(per_env.expand(*obs.shape[:-1], state.shape[-1]).unbind(-1))
        damping, strength, mass = (s.reshape(-1) if isinstance(s, Tensor) else s for s in scales)
        joints, ball = self.next_state(obs.reshape(-1, 14), action.reshape(-1, 3), strength, damping, mass)
        paddle = paddle_kinematics(joints[:, 0:3], joints[:, 3:6])[:, 0:3]
        return torch.cat([joints, paddle, ball], -1).reshape(obs.shape)

    def next_state(
        self,
        obs: Tensor,
        action: Tensor,
        strength: Tensor | float = 1.0,
        damping_scale: Tensor | float = 1.0,
        mass_scale: Tensor | float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """The next joints ``[R, 6]`` and ball ``[R, 5]`` from ``obs [R, 14]``, ``action [R, 3]`` and per-row scales.

        Each scale is a float or ``[R]``. Rows whose ball stays clear of the paddle's path: the arm alone and the
        ball's free flight; the others: the two integrated together (:meth:`_together`).
        """
        joints = self.arm(obs, action, strength)
        ball, rows, _ = self.free_flight(obs, joints)
        if len(rows):
            pick = lambda s: s[rows] if isinstance(s, Tensor) else s  # noqa: E731
            together = self._together(obs[rows], action[rows], pick(strength), pick(damping_scale), pick(mass_scale))
            joints = joints.index_put((rows,), together[0])
            ball = ball.index_put((rows,), together[1])
        return joints, ball

    def _together(
        self, obs: Tensor, action: Tensor, strength: Tensor | float, damping_scale: Tensor | float, mass_scale
    ) -> tuple[Tensor, Tensor]:
        """The arm and the ball ``[R, 6]``, ``[R, 5]`` integrated together over the step at the arm's substeps."""
        dtype, arm = obs.dtype, self.arm
        constants, target = arm.constants(dtype), arm.target(action.to(dtype))
        contact = self.constants(dtype, damping_scale)
        column = lambda s: s[:, None] if isinstance(s, Tensor) else s  # noqa: E731
        strength, mass = column(strength), self.log_ball_mass.exp().to(dtype) * column(mass_scale)
        q, qd, p, v, spin = obs[:, 0:3], obs[:, 3:6], obs[:, 9:11], obs[:, 11:13], obs[:, 13]
        g = torch.tensor([0.0, -GRAVITY], dtype=dtype, device=obs.device)
        shoulder = torch.tensor(SHOULDER, dtype=dtype, device=obs.device)
        lengths = torch.tensor(LINK_LENGTHS, dtype=dtype, device=obs.device)
        h = self.dt / arm.substeps
        for _ in range(arm.substeps):
            push, rub, ft, point = self.contact(p, v, spin, paddle_kinematics(q, qd), *contact)
            angles = q.cumsum(-1)
            bones = torch.stack([angles.cos(), angles.sin()], -1)[:, 0:2] * lengths[:, None]  # [R, 2, 2]
            joint_points = (shoulder, shoulder + bones[:, 0], shoulder + bones[:, 0] + bones[:, 1])
            reaction = -mass * (push + rub)  # the ball's push on the paddle, at the contact point
            torque = torch.stack([_cross(point - o, reaction) for o in joint_points], -1)
            q, qd = arm.substep(q, qd, target, strength, constants, h, torque)
            v = v + h * (g + push + rub)
            p = p + h * v
            spin = spin + h * 2.5 * ft / BALL_RADIUS
        return torch.cat([q, qd], -1), torch.cat([p, v, spin[:, None]], -1)

    def loss(self, obs: Tensor, next_obs: Tensor, action: Tensor | None = None) -> Tensor:
        """The ball's contact loss plus the arm's through contacts, on segments ``[*S, M, 14]``.

        As :meth:`ServoArmBallContact.loss`, with the joints predicted by :meth:`next_state` (the ball's push
        included, at the fitted mass) and the strength fitted on each segment's steps without a paddle contact.
        """
        if action is None:
            raise ValueError("ServoArmBallPush.loss needs the action (uses_action)")
        contact = BallContact.loss(self, obs, next_obs)
        obs, next_obs, action = self._draw_segments(obs, next_obs, action)
        strength = self.arm.best_strength(obs, action, next_obs, STRENGTHS.to(obs), self._arm_only(obs, next_obs))
        strength = (strength / strength.log().mean().exp())[:, None].expand(obs.shape[:2]).reshape(-1)
        joints, _ = self.next_state(obs.reshape(-1, 14), action.reshape(-1, 3), strength)
        return contact + _joint_error(joints, next_obs.reshape(-1, 14), self.dt).mean()

    def _arm_only(self, obs: Tensor, next_obs: Tensor) -> Tensor:
        """``[B, K]`` bool: the steps of ``[B, K, 14]`` whose ball stayed clear of the paddle (flight or floor)."""
        b, k = obs.shape[:2]
        flat_obs, flat_next = obs.reshape(b * k, 14), next_obs.reshape(b * k, 14)
        touched = contact_transitions(flat_obs, flat_next, self.dt).view(b, k)
        return ~touched

    def adapt(self, context, mask: Tensor | None) -> Tensor:
        """``context`` fields ``[B, K, ...]`` (raw), ``mask [B, K]`` -> ``[B, 3]``: log damping, strength, ball mass."""
        damping = AdaptiveBallContact.adapt(self, context, mask)
        obs, action, next_obs = context.obs, context.action, context.next_obs
        b, k = obs.shape[:2]
        valid = torch.ones(b, k, dtype=torch.bool, device=obs.device) if mask is None else mask
        if k == 0:
            return torch.zeros(b, 3, dtype=obs.dtype, device=obs.device)
        arm_only = self._arm_only(obs, next_obs)
        strength = self.arm.best_strength(obs, action, next_obs, STRENGTHS.to(obs), valid & arm_only)
        mass = torch.ones_like(strength)
        rows = torch.nonzero(valid & ~arm_only)
        if len(rows):
            env, slot = rows[:, 0], rows[:, 1]
            grid = BALL_MASS_SCALES.to(obs)
            n = len(grid)
            o, a, t = obs[env, slot].repeat(n, 1), action[env, slot].repeat(n, 1), next_obs[env, slot].repeat(n, 1)
            with torch.no_grad():
                joints, _ = self.next_state(
                    o,
                    a,
                    strength[env].repeat(n),
                    damping[env, 0].exp().repeat(n),
                    grid.repeat_interleave(len(env)),
                )
            choice, has = grid_choice(_joint_error(joints, t, self.dt).view(n, -1), env, grid, b)
            mass = torch.where(has, choice, mass)
        return torch.cat([damping, strength.log()[:, None], mass.log()[:, None]], -1)

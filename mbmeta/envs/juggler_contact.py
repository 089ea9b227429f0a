"""The juggler's ball as known physics: free flight and a fitted soft contact with the paddle's path.

A :class:`~mbmeta.types.KnownPhysics` for the world-frame juggler observation (:data:`OBS_NAMES`), used as
``--model.known_physics mbmeta.envs.juggler_contact:BallContact`` (``juggler_bounce_servo``). The learned network
predicts the arm's joints; this module computes the rest of the next observation from them:

- the paddle pose (entries 6-8): forward kinematics of the predicted joints;
- the ball (entries 9-13): its start state is integrated over the step at 1 ms substeps against the paddle's path
  (the joints between the step's two ends on the cubic Hermite curve through their angles and rates, forward
  kinematics at every substep): gravity, and where the ball overlaps the paddle box a unilateral spring-damper along
  the contact normal plus friction on the contact point's slip that also spins the ball (a solid sphere). A ball
  that stays farther than :data:`NEAR` from the paddle's path in free flight is flown in closed form (the same
  integrator's result), without substeps.

What it is told: gravity, the ball's radius, the paddle's size and place on the arm, the arm's kinematics, the step
length (:attr:`BallContact.dt`). What it learns: the contact's stiffness, damping, friction rate and coefficient
(four scalars, one set for all tasks: the task is not adapted here), fitted by gradient through the simulation on the
true transitions (:meth:`BallContact.loss`), from generic starting values. The floor is not modelled (a ball that
reaches it is lost). Why: a plain MLP ensemble does not learn the discontinuous contact map well enough to plan
strikes on (experiments/juggler_diagnosis, steps 7-10). torch only, batched over any leading dims.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mbmeta.envs.juggler_geometry import BALL_RADIUS, GRAVITY, PADDLE_HALF_LENGTH, paddle_kinematics

PADDLE_HALF_THICKNESS = 0.01  # m: the paddle box's; the top face is the paddle surface (n = 0)
NEAR = 0.03  # m: a ball in free flight farther than this from the paddle at every substep cannot touch it
SLIP_GAIN = 3.5  # 1 + 5/2: a solid sphere's contact-point slip responds 3.5 times as fast as its centre's velocity
FLIGHT_TOLERANCE = 0.02  # m/s: a transition whose ball velocity changed by g·dt within this was in free flight
FLOOR_CLEARANCE = 0.06  # m: ball centres lower than this touch the floor (not modelled): left out of the loss
POSITION_WEIGHT = 100.0  # (m/s)² per m²: the loss weighs 1 cm of position error as 0.1 m/s of velocity error


def hermite(q0: Tensor, qd0: Tensor, q1: Tensor, qd1: Tensor, u: Tensor, dt: float) -> tuple[Tensor, Tensor]:
    """Joints and rates at fractions ``u [*S]`` of a step of ``dt`` s on the cubic through both ends ``[*S, 3]``."""
    u = u[..., None]
    u2, u3 = u * u, u * u * u
    q = (2 * u3 - 3 * u2 + 1) * q0 + (u3 - 2 * u2 + u) * dt * qd0 + (3 * u2 - 2 * u3) * q1 + (u3 - u2) * dt * qd1
    qd = ((6 * u2 - 6 * u) * q0 + (6 * u - 6 * u2) * q1) / dt + (3 * u2 - 4 * u + 1) * qd0 + (3 * u2 - 2 * u) * qd1
    return q, qd


def flight(p: Tensor, v: Tensor, t: Tensor, h: float) -> tuple[Tensor, Tensor]:
    """Ballistic ball: position and velocity ``[*S, 2]`` after ``t [*S]`` s (a multiple of ``h``) from ``p, v``.

    As semi-implicit Euler at substeps of ``h`` s integrates it (MuJoCo's integrator, and :class:`BallContact`'s):
    ``p + v·t + ½g·t·(t + h)``, ``h·g·t/2`` above the exact parabola (0.2 mm over a 40 ms step at 1 ms).
    """
    t = t[..., None]
    g = torch.tensor([0.0, -GRAVITY], dtype=p.dtype, device=p.device)
    return p + v * t + 0.5 * g * t * (t + h), v + g * t


def box_contact(p: Tensor, paddle: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ball centred at ``p [*S, 2]`` against the paddle box at ``paddle [*S, ≥3]`` (x, z, φ of its top face).

    Returns the penetration ``[*S]`` (radius minus the centre's distance to the box's cross-section; > 0 in
    contact), the world contact normal and tangent ``[*S, 2]``, and the contact point's offset from the paddle
    centre ``[*S, 2]``.
    """
    cos, sin = torch.cos(paddle[..., 2]), torch.sin(paddle[..., 2])
    along, normal = torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)
    d = p - paddle[..., 0:2]
    s, n = (d * along).sum(-1), (d * normal).sum(-1)
    cs = s.clamp(-PADDLE_HALF_LENGTH, PADDLE_HALF_LENGTH)
    cn = n.clamp(-2 * PADDLE_HALF_THICKNESS, 0.0)
    gap_s, gap_n = s - cs, n - cn
    dist = torch.sqrt(gap_s * gap_s + gap_n * gap_n + 1e-12)
    inside = dist < 1e-6  # the centre inside the box: pushed out along the face normal
    ns = torch.where(inside, torch.zeros_like(s), gap_s / dist)
    nn_ = torch.where(inside, torch.ones_like(s), gap_n / dist)
    contact_normal = ns[..., None] * along + nn_[..., None] * normal
    tangent = torch.stack([contact_normal[..., 1], -contact_normal[..., 0]], -1)
    return BALL_RADIUS - dist, contact_normal, tangent, cs[..., None] * along + cn[..., None] * normal


def contact_transitions(obs: Tensor, next_obs: Tensor, dt: float) -> Tensor:
    """``[R]`` bool: which transitions ``[R, 14]`` of ``dt`` s had a ball that left free flight, clear of the floor."""
    dv = next_obs[:, 11:13] - obs[:, 11:13]
    flying = (dv[:, 0].abs() < FLIGHT_TOLERANCE) & ((dv[:, 1] + GRAVITY * dt).abs() < FLIGHT_TOLERANCE)
    return ~flying & (obs[:, 10] > FLOOR_CLEARANCE) & (next_obs[:, 10] > FLOOR_CLEARANCE)


class BallContact(nn.Module):
    """The juggler's paddle pose and ball from its predicted joints (:class:`~mbmeta.types.KnownPhysics`).

    Per unit ball mass: normal acceleration ``max(0, k·p − b·v_n)`` at a penetration ``p > 0`` (pushes, never
    pulls); tangential ``−c·u / 3.5`` on the contact point's slip ``u = v_s + r·spin``, at most ``μ`` times the
    normal one; the spin takes the friction's torque. Semi-implicit Euler at ``dt / substeps``.

    Args:
        stiffness, damping, friction_rate, friction: starting values of k (s⁻²), b (s⁻¹), c (s⁻¹), μ; fitted in
            log space (:meth:`loss`). Generic round values by default, not the MJCF's.
        substeps: integration substeps per step (40: 1 ms at 25 Hz).

    Attributes:
        dt: the step length (s): juggler_bounce_servo's 0.04.
        computed: observation entries this module computes (paddle pose and ball, 6-13); the network's are kept for
            the others (the joints, 0-5).
    """

    dt = 0.04
    computed = tuple(range(6, 14))

    def __init__(
        self,
        stiffness: float = 2e4,
        damping: float = 100.0,
        friction_rate: float = 100.0,
        friction: float = 0.5,
        substeps: int = 40,
    ) -> None:
        super().__init__()
        for name, value in (
            ("stiffness", stiffness),
            ("damping", damping),
            ("friction_rate", friction_rate),
            ("friction", friction),
        ):
            if not value > 0:
                raise ValueError(f"BallContact: {name} must be > 0, got {value!r}")
        if not isinstance(substeps, int) or substeps < 1:
            raise ValueError(f"BallContact: substeps must be an int >= 1, got {substeps!r}")
        log = lambda v: nn.Parameter(torch.tensor(float(v)).log())  # noqa: E731
        self.log_stiffness, self.log_damping = log(stiffness), log(damping)
        self.log_friction_rate, self.log_friction = log(friction_rate), log(friction)
        self.substeps = substeps

    def parameters_dict(self) -> dict[str, float]:
        """The contact's current parameters in their units: ``{"stiffness": k, "damping": b, ...}``."""
        return {
            name: float(getattr(self, f"log_{name}").detach().exp())
            for name in ("stiffness", "damping", "friction_rate", "friction")
        }

    # ----- the KnownPhysics interface -------------------------------------------------------------------------------
    def complete(self, obs: Tensor, next_obs: Tensor, state: Tensor | None = None) -> Tensor:
        """``obs [*S, 14]`` and a next observation ``[*S, 14]`` whose joints (0-5) are kept -> the full next one.

        ``state [B, 1]`` (:class:`AdaptiveBallContact`): each environment's log damping scale; ``obs`` is then
        ``[E, B, *S, 14]``.
        """
        joints = next_obs[..., 0:6]
        paddle = paddle_kinematics(joints[..., 0:3], joints[..., 3:6])[..., 0:3]
        damping_scale = 1.0
        if state is not None:
            per_env = state[:, 0].exp().view(1, -1, *([1] * (obs.dim() - 3)))
            damping_scale = per_env.to(obs.dtype).expand(obs.shape[:-1])
        return torch.cat([joints, paddle, self.ball(obs, joints, damping_scale)], -1)

    def loss(self, obs: Tensor, next_obs: Tensor) -> Tensor:
        """Mean squared ball error over the transitions ``[*S, 14]`` whose ball touched the paddle (true joints).

        Velocity error (m/s)² plus :data:`POSITION_WEIGHT` × position error (m²), averaged over the steps whose
        ball did not move ballistically and stayed clear of the floor; 0 (with a gradient path) when there are none.
        """
        obs, next_obs = obs.reshape(-1, obs.shape[-1]), next_obs.reshape(-1, next_obs.shape[-1])
        rows = torch.nonzero(contact_transitions(obs, next_obs, self.dt))[:, 0]
        if not len(rows):
            return sum(p.sum() for p in self.parameters()) * 0.0
        return self._error(self.ball(obs[rows], next_obs[rows, 0:6]), next_obs[rows, 9:13]).mean()

    @staticmethod
    def _error(ball: Tensor, true: Tensor) -> Tensor:
        """``[R]`` squared velocity error plus :data:`POSITION_WEIGHT` × squared position error (``[R, ≥4]``)."""
        velocity = (ball[:, 2:4] - true[:, 2:4]).square().sum(-1)
        position = (ball[:, 0:2] - true[:, 0:2]).square().sum(-1)
        return velocity + POSITION_WEIGHT * position

    # ----- the ball ------------------------------------------------------------------------------------------------
    def ball(self, obs: Tensor, next_joints: Tensor, damping_scale: Tensor | float = 1.0) -> Tensor:
        """The ball's next state ``[*S, 5]`` (x, z, vx, vz, spin) from ``obs [*S, 14]`` and ``next_joints [*S, 6]``.

        ``damping_scale`` (``[*S]`` or a float) multiplies the contact's damping row by row.

        Rows whose free-flight ball stays farther than :data:`NEAR` from the paddle at every substep are flown in
        closed form (:func:`flight`); the others are gathered and simulated (the cost follows the rows near the paddle).
        """
        shape = obs.shape[:-1]
        obs, next_joints = obs.reshape(-1, obs.shape[-1]), next_joints.reshape(-1, 6)
        out, rows, path = self.free_flight(obs, next_joints)
        if len(rows):
            scale = damping_scale.reshape(-1)[rows] if isinstance(damping_scale, Tensor) else damping_scale
            out = out.index_put((rows,), self._simulate(obs[rows], path[rows, 1:], scale))
        return out.reshape(*shape, 5)

    def free_flight(self, obs: Tensor, next_joints: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The ball in free flight over the step, and which rows come near the paddle.

        ``obs [R, 14]``, ``next_joints [R, 6]`` -> the ball's next state ``[R, 5]`` in free flight (closed form), the
        indices ``[N]`` of the rows whose ball comes within :data:`NEAR` of the paddle's path at some substep, and
        that path ``[R, M+1, 6]`` (the paddle at each substep boundary, joints on the Hermite cubic).
        """
        m = self.substeps
        u = torch.linspace(0.0, 1.0, m + 1, dtype=obs.dtype, device=obs.device).expand(obs.shape[0], m + 1)
        ends = (obs[:, None, 0:3], obs[:, None, 3:6], next_joints[:, None, 0:3], next_joints[:, None, 3:6])
        path = paddle_kinematics(*hermite(*ends, u, self.dt))  # [R, M+1, 6] at each substep boundary
        p_free, v_free = flight(obs[:, None, 9:11], obs[:, None, 11:13], u * self.dt, self.dt / m)
        near = (box_contact(p_free, path)[0] > -NEAR).any(-1)
        out = torch.cat([p_free[:, -1], v_free[:, -1], obs[:, 13:14]], -1)
        return out, torch.nonzero(near)[:, 0], path

    def _simulate(self, obs: Tensor, path: Tensor, damping_scale: Tensor | float = 1.0) -> Tensor:
        """The ball ``[R, 5]`` after the substeps against the paddle ``path [R, M, 6]`` (each substep's end)."""
        h = self.dt / path.shape[1]
        constants = self.constants(obs.dtype, damping_scale)
        p, v, spin = obs[:, 9:11], obs[:, 11:13], obs[:, 13]
        g = torch.tensor([0.0, -GRAVITY], dtype=obs.dtype, device=obs.device)
        for i in range(path.shape[1]):
            push, rub, ft, _ = self.contact(p, v, spin, path[:, i], *constants)
            v = v + h * (g + push + rub)  # semi-implicit Euler, as MuJoCo's
            p = p + h * v
            spin = spin + h * 2.5 * ft / BALL_RADIUS
        return torch.cat([p, v, spin[:, None]], -1)

    def constants(self, dtype: torch.dtype, damping_scale: Tensor | float = 1.0) -> tuple[Tensor, ...]:
        """The contact's k, b (times ``damping_scale``), c and μ in ``dtype``: :meth:`contact`'s last arguments."""
        k, b, c, mu = (
            p.exp().to(dtype) for p in (self.log_stiffness, self.log_damping, self.log_friction_rate, self.log_friction)
        )
        return k, b * damping_scale, c, mu

    @staticmethod
    def contact(
        p: Tensor, v: Tensor, spin: Tensor, paddle: Tensor, k: Tensor, b: Tensor, c: Tensor, mu: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The paddle's push on the ball centred at ``p [R, 2]`` moving at ``v [R, 2]`` with ``spin [R]``.

        ``paddle [R, 6]``: its pose and rates (x, z, φ, ẋ, ż, φ̇). Returns the ball's acceleration (per unit mass)
        along the contact normal and along its tangent ``[R, 2]`` each, the tangential force per unit mass ``[R]``
        (what spins the ball: ``2.5·ft / r``), and the contact point ``[R, 2]`` (world) where they act.
        """
        pen, normal, tangent, offset = box_contact(p, paddle)
        spun = paddle[:, 5, None] * torch.stack([-offset[:, 1], offset[:, 0]], -1)
        rel = v - paddle[:, 3:5] - spun  # relative to the paddle's point of contact
        vn, vs = (rel * normal).sum(-1), (rel * tangent).sum(-1)
        fn = torch.where(pen > 0, (k * pen - b * vn).clamp_min(0.0), torch.zeros_like(pen))
        ft = -c * (vs + BALL_RADIUS * spin) / SLIP_GAIN
        ft = torch.maximum(torch.minimum(ft, mu * fn), -mu * fn)
        return fn[:, None] * normal, ft[:, None] * tangent, ft, paddle[:, 0:2] + offset


def grid_choice(error: Tensor, env: Tensor, grid: Tensor, batch: int) -> tuple[Tensor, Tensor]:
    """Per environment, the value of ``grid [G]`` with the least error summed over its steps.

    ``error [G, C]``: each grid value's error on C context steps; ``env [C]``: the environment of each step.
    Returns the chosen values ``[batch]`` and whether each environment had a step ``[batch]`` (where not, the choice
    is the grid's first value, to be replaced by the caller's default).
    """
    per_env = torch.zeros(len(grid), batch, dtype=error.dtype, device=error.device).index_add_(1, env, error)
    has = torch.zeros(batch, dtype=torch.bool, device=error.device).index_fill_(0, env, True)
    return grid[per_env.argmin(0)], has


DAMPING_SCALES = torch.linspace(-2.5, 2.0, 19).exp()  # the grid AdaptiveBallContact searches: ×0.08 to ×7.4


class AdaptiveBallContact(BallContact):
    """:class:`BallContact` whose damping (so the restitution) is fitted to each environment's recent contacts.

    ``adapt`` (the :class:`~mbmeta.types.KnownPhysics` capability ``adapts``): for each environment, the damping
    scale of :data:`DAMPING_SCALES` (×0.08 to ×7.4 of the fitted damping: restitutions far outside the training
    range) whose simulated ball best matches the context's contact steps (:meth:`BallContact.loss`'s error, the
    joints as observed); ×1 where the context holds no contact. Trained exactly as :class:`BallContact` (the scale is
    1 in training: the constants fit the average ball), adapted only when acting. Use a context long enough to hold
    a bounce (``--agent.context_length 30``: 1.2 s).
    """

    adapts = True

    def adapt(self, context, mask: Tensor | None) -> Tensor:
        """``context`` fields ``[B, K, ...]`` (raw), ``mask [B, K]`` -> ``[B, 1]`` log damping scale."""
        obs, next_obs = context.obs, context.next_obs
        b, k = obs.shape[:2]
        valid = torch.ones(b, k, dtype=torch.bool, device=obs.device) if mask is None else mask
        o = obs.shape[-1]
        contact = contact_transitions(obs.reshape(b * k, o), next_obs.reshape(b * k, o), self.dt).view(b, k)
        rows = torch.nonzero(contact & valid)
        best = torch.zeros(b, 1, dtype=obs.dtype, device=obs.device)
        if not len(rows):
            return best
        env, slot = rows[:, 0], rows[:, 1]
        grid = DAMPING_SCALES.to(obs)
        g = len(grid)
        o, n = obs[env, slot], next_obs[env, slot]  # [C, 14]
        with torch.no_grad():
            ball = self.ball(o.repeat(g, 1), n[:, 0:6].repeat(g, 1), grid.repeat_interleave(len(env)))
        error = self._error(ball, n[:, 9:13].repeat(g, 1)).view(g, -1)  # [G, C]
        choice, has = grid_choice(error, env, grid, b)
        return torch.where(has, choice.log(), 0.0)[:, None]


ARM_GAINS = torch.linspace(-1.0, 1.0, 21).exp()  # the grid AdaptiveArmBallContact searches: ×0.37 to ×2.7


class AdaptiveArmBallContact(AdaptiveBallContact):
    """:class:`AdaptiveBallContact` that also fits a gain on the network's arm response to each environment.

    A servo's torque scales with the motor strength (``gear_scale`` scales its stiffness, damping and torque limit),
    so a weaker or stronger arm than trained deviates from coasting (each joint moving on at its rate) by a smaller
    or larger step. ``complete`` replaces the network's next joints ``q', q̇'`` by ``q + q̇·dt + g·(q' − q − q̇·dt)``
    and ``q̇ + g·(q̇' − q̇)`` with the environment's gain ``g``; ``adapt`` (``adapts_with_prediction``) picks ``g``
    from :data:`ARM_GAINS` to best match the context's true joints (squared angle error plus squared ``dt``·rate
    error over its valid steps; 1 where it has none), the damping scale as :class:`AdaptiveBallContact`. Trained as
    :class:`BallContact` (gain 1: the network learns the average arm); adapted only when acting.
    """

    adapts_with_prediction = True

    def adapt(self, context, mask: Tensor | None, predict=None) -> Tensor:  # type: ignore[override]
        """``context`` fields ``[B, K, ...]`` (raw), ``mask [B, K]``, ``predict`` -> ``[B, 2]``: log damping, log gain.

        ``predict``: the network's mean next observation (:class:`~mbmeta.types.KnownPhysics`); without it the gain
        stays 1.
        """
        damping = super().adapt(context, mask)
        obs, next_obs = context.obs, context.next_obs
        b, k = obs.shape[:2]
        gain = torch.zeros(b, 1, dtype=obs.dtype, device=obs.device)
        if predict is None or k == 0:
            return torch.cat([damping, gain], -1)
        valid = torch.ones(b, k, dtype=torch.bool, device=obs.device) if mask is None else mask
        network = predict(obs, context.action)[..., 0:6]  # [B, K, 6]
        grid = ARM_GAINS.to(obs)
        arm = self.arm(obs[None], network[None], grid.view(-1, 1, 1, 1))  # [G, B, K, 6]
        error = arm - next_obs[None, ..., 0:6]
        error = error[..., 0:3].square().sum(-1) + (self.dt * error[..., 3:6]).square().sum(-1)  # [G, B, K]
        per_env = (error * valid).sum(-1)  # [G, B]
        gain = torch.where(valid.any(-1), grid[per_env.argmin(0)].log(), 0.0)[:, None]
        return torch.cat([damping, gain], -1)

    def arm(self, obs: Tensor, joints: Tensor, gain: Tensor) -> Tensor:
        """Joints ``[*S, 6]``: the network's step ``joints [*S, 6]`` from ``obs [*S, ≥6]``, scaled about coasting.

        ``gain`` (the scale) broadcasts to ``[*S, 1]``.
        """
        q, qd = obs[..., 0:3], obs[..., 3:6]
        coast = q + qd * self.dt
        return torch.cat([coast + gain * (joints[..., 0:3] - coast), qd + gain * (joints[..., 3:6] - qd)], -1)

    def complete(self, obs: Tensor, next_obs: Tensor, state: Tensor | None = None) -> Tensor:
        """As :meth:`BallContact.complete`; with ``state [B, 2]`` the joints take the environment's arm gain first."""
        if state is None or state.shape[-1] < 2:
            return super().complete(obs, next_obs, state)
        gain = state[:, 1].exp().to(obs.dtype).view(1, -1, *([1] * (obs.dim() - 2)))  # [1, B, 1.., 1]
        joints = self.arm(obs, next_obs[..., 0:6], gain)
        return super().complete(obs, torch.cat([joints, next_obs[..., 6:]], -1), state[:, 0:1])

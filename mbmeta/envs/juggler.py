"""Juggler: a planar three-link arm with a paddle, and a ball; two task families on one MJCF model.

The robot (``assets/juggler.xml``) moves in the world x-z plane: shoulder, elbow and wrist hinges driven by
torque motors (``ctrlrange [-1, 1]``, gears 30 / 15 / 5 N·m); the paddle (0.3 m long) sits on a short stem at the
wrist, so its angle is the sum of the joint angles. The ball (radius 4 cm, 0.1 kg) has planar slide joints x, z and a
spin hinge, and touches only the paddle and the floor.

Families (same robot, same parameters and splits, different goals):

- ``juggler_balance`` (``mbmeta/JugglerBalance-v0``): keep the ball resting on the paddle with its centre near
  the target point :data:`BALANCE_TARGET`.
- ``juggler_bounce`` (``mbmeta/JugglerBounce-v0``): bounce the ball so that its apex reaches
  :data:`BOUNCE_APEX` above the target x.

Both terminate when the ball is lost (:func:`ball_lost`). Observation layout: :data:`OBS_NAMES` (14 values);
``docs/juggler.md`` has the full table, rewards and the reasons behind them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
import torch
from gymnasium import spaces, utils
from gymnasium.envs.mujoco import MujocoEnv
from torch import Tensor

from mbmeta.envs.family import Choice, Interval, Parameter, TaskFamily, TaskParams
from mbmeta.envs.juggler_controller import JugglerController
from mbmeta.envs.juggler_geometry import (  # the shared description, re-exported: part of this module's interface
    BALANCE_TARGET,
    BALL_FRAMES,
    BALL_RADIUS,
    BOUNCE_APEX,
    BOUNCE_HOME_HEIGHT,
    BOUNCE_SERVO_SPAN,
    GRAVITY,
    I_BALL_VX,
    I_BALL_VZ,
    I_BALL_X,
    I_BALL_Z,
    I_PADDLE_ANGLE,
    I_PADDLE_X,
    I_PADDLE_Z,
    LINK_LENGTHS,
    MODEL_PATH,
    NOMINAL_RESTITUTION,
    OBS_INDEX,
    OBS_NAMES,
    PADDLE_FRAME_OBS_NAMES,
    PADDLE_HALF_LENGTH,
    PADDLE_OFFSET,
    SERVO_SPAN,
    SHOULDER,
    ball_in_paddle_frame,
    ball_in_world_frame,
    inverse_kinematics,
    paddle_kinematics,
    paddle_pose,
    to_paddle_frame_obs,
    to_world_frame_obs,
)
from mbmeta.envs.juggler_physics import (  # re-exported: part of this module's interface
    ACTUATIONS,
    NOMINAL_FIELDS,
    RESTITUTION_RANGE,
    SERVO_STIFFNESS,
    TASK_SCALES,
    apply_task,
    damping_of_restitution,
    is_servo,
    restitution_of_damping,
    use_servo_actuators,
)
from mbmeta.envs.registry import register_family
from mbmeta.envs.task_env import TaskEnvMixin

__all__ = [
    "ACTUATIONS",
    "BALANCE",
    "BALANCE_2J",
    "BALANCE_SERVO",
    "BALANCE_TARGET",
    "BALL_FRAMES",
    "BALL_RADIUS",
    "BOUNCE",
    "BOUNCE_APEX",
    "BOUNCE_APEX_TOLERANCE",
    "BOUNCE_SUCCESS_APEXES",
    "BOUNCE_HOME_HEIGHT",
    "BOUNCE_SERVO",
    "BOUNCE_SERVO_SPAN",
    "CTRL_COST_WEIGHT",
    "EPISODE_STEPS",
    "FRAME_SKIP",
    "GRAVITY",
    "I_BALL_VX",
    "I_BALL_VZ",
    "I_BALL_X",
    "I_BALL_Z",
    "I_PADDLE_ANGLE",
    "I_PADDLE_X",
    "I_PADDLE_Z",
    "LINK_LENGTHS",
    "LOST_BELOW_PADDLE",
    "LOST_FLOOR_HEIGHT",
    "MODEL_PATH",
    "NOMINAL_FIELDS",
    "NOMINAL_RESTITUTION",
    "OBS_INDEX",
    "OBS_NAMES",
    "PADDLE_FRAME_OBS_NAMES",
    "PADDLE_HALF_LENGTH",
    "PADDLE_OFFSET",
    "RESTITUTION_RANGE",
    "SERVO_ACTION_REPEAT",
    "SERVO_EPISODE_STEPS",
    "SERVO_SPAN",
    "SERVO_STIFFNESS",
    "SHOULDER",
    "TWO_JOINT_TRAIN_TASKS",
    "JugglerBalance2JEnv",
    "JugglerBalance2JFamily",
    "JugglerBalanceEnv",
    "JugglerBalanceFamily",
    "JugglerBalanceServoEnv",
    "JugglerBalanceServoFamily",
    "JugglerBounceEnv",
    "JugglerBounceFamily",
    "JugglerBounceServoEnv",
    "JugglerBounceServoFamily",
    "JugglerEnv",
    "JugglerFamily",
    "apply_task",
    "balance_reward_terms",
    "ball_in_paddle_frame",
    "ball_in_world_frame",
    "ball_lost",
    "bounce_apexes",
    "bounce_flight_value",
    "bounce_landing_value",
    "bounce_reward_terms",
    "control_cost",
    "damping_of_restitution",
    "inverse_kinematics",
    "is_servo",
    "paddle_kinematics",
    "paddle_pose",
    "predicted_apex",
    "restitution_of_damping",
    "to_paddle_frame_obs",
    "to_world_frame_obs",
    "use_servo_actuators",
]

CTRL_COST_WEIGHT = 0.01
EPISODE_STEPS = 500  # at dt = 0.02 s: 10 s
FRAME_SKIP = 20  # timestep 0.001 s (the ball contact lasts ~16 ms and needs fine steps)

# Ball lost: its centre is more than the paddle half-length plus the ball radius below the paddle-surface
# centre (no ball touching the paddle's upper face can be that low, whatever the tilt), or it touches the floor.
LOST_BELOW_PADDLE = PADDLE_HALF_LENGTH + BALL_RADIUS
LOST_FLOOR_HEIGHT = BALL_RADIUS + 0.01

# ----- servo actuation --------------------------------------------------------------------------------------
SERVO_ACTION_REPEAT = 2  # juggler_balance_servo: 25 Hz control
SERVO_EPISODE_STEPS = EPISODE_STEPS // SERVO_ACTION_REPEAT  # the same 10 s


# ----- exact reward and termination (torch, batched over any leading dims) ----------------------------------
def ball_lost(next_obs: Tensor) -> Tensor:
    """Whether the ball is lost: ``[*S, O] -> [*S]`` bool.

    True when the ball centre is more than :data:`LOST_BELOW_PADDLE` (0.19 m) below the paddle-surface centre, or
    lower than :data:`LOST_FLOOR_HEIGHT` (0.05 m: touching the floor).
    """
    ball_z = next_obs[..., I_BALL_Z]
    return (ball_z < next_obs[..., I_PADDLE_Z] - LOST_BELOW_PADDLE) | (ball_z < LOST_FLOOR_HEIGHT)


# The reward formulas below are written once for torch tensors (the planner) and numpy arrays (env.step, which
# skips torch's per-call overhead): `_xp` picks the namespace, and only operations both share are used.
def _xp(x: Tensor | np.ndarray):
    return torch if isinstance(x, Tensor) else np


def control_cost(action: Tensor) -> Tensor:
    """``CTRL_COST_WEIGHT · ‖clip(action, -1, 1)‖²``: ``[*S, A] -> [*S]`` (clipped as MuJoCo clips ctrl)."""
    return CTRL_COST_WEIGHT * (_xp(action).clip(action, -1.0, 1.0) ** 2).sum(-1)


def balance_reward_terms(action: Tensor, next_obs: Tensor) -> dict[str, Tensor]:
    """Terms of the balance reward, each ``[*S]``: ``target = 1 - tanh(5 d)`` with d the ball-target distance."""
    xp = _xp(next_obs)
    ball = next_obs[..., I_BALL_X : I_BALL_Z + 1]
    target = torch.as_tensor(BALANCE_TARGET, dtype=ball.dtype, device=ball.device) if xp is torch else BALANCE_TARGET
    offset = ball - target
    distance = xp.sqrt((offset**2).sum(-1))
    return {"target": 1.0 - xp.tanh(5.0 * distance), "ctrl_cost": control_cost(action)}


def predicted_apex(next_obs: Tensor) -> Tensor:
    """Height the ball centre would reach in free flight, ``z + max(vz, 0)² / 2g``: ``[*S, O] -> [*S]``."""
    vz = _xp(next_obs).clip(next_obs[..., I_BALL_VZ], 0.0, None)
    return next_obs[..., I_BALL_Z] + vz**2 / (2.0 * GRAVITY)


def bounce_reward_terms(action: Tensor, next_obs: Tensor) -> dict[str, Tensor]:
    """Terms of the bounce reward, each ``[*S]``: ``apex = exp(-|apex - h*| / 0.25) · exp(-|x - x*| / 0.25)``."""
    xp = _xp(next_obs)
    x_target, apex_target = BOUNCE_APEX
    apex_error = abs(predicted_apex(next_obs) - apex_target)
    x_error = abs(next_obs[..., I_BALL_X] - x_target)
    return {"apex": xp.exp(-(apex_error + x_error) / 0.25), "ctrl_cost": control_cost(action)}


def bounce_landing_value(obs: Tensor) -> Tensor:
    """How near the target x the ball's coming landing is: ``[*S, O]`` (world frame) ``-> [*S]``, in (0, 1].

    A terminal value for planning the bounce (``--agent.terminal_value mbmeta.envs.juggler:bounce_landing_value``):
    the ball's free flight from ``obs`` is followed down to the paddle's home height (plus the ball radius) and the
    bounce reward's lateral factor taken there, ``exp(-|x_land - x*| / 0.25)`` with ``x*`` the target x of
    :data:`BOUNCE_APEX`. A ball already at or below that height and not rising lands where it is. A planning horizon
    shorter than one flight (0.6 s against ~0.9 s at the target apex) otherwise does not see where a strike sends
    the ball. Positive, as the rewards are: a rollout predicted to lose the ball gets no terminal value, so losing
    it is never worth more than keeping it.
    """
    xp = _xp(obs)
    z, vz = obs[..., I_BALL_Z], obs[..., I_BALL_VZ]
    drop = xp.clip(z - (BOUNCE_HOME_HEIGHT + BALL_RADIUS), 0.0, None)
    fall = (vz + xp.sqrt(vz**2 + 2.0 * GRAVITY * drop)) / GRAVITY  # s until it is back down there
    landing = obs[..., I_BALL_X] + obs[..., I_BALL_VX] * xp.clip(fall, 0.0, None)
    return xp.exp(-abs(landing - BOUNCE_APEX[0]) / 0.25)


def bounce_flight_value(obs: Tensor) -> Tensor:
    """How near the target the ball's current flight is: ``[*S, O]`` (world frame) ``-> [*S]``, in (0, 1].

    :func:`bounce_landing_value` times the bounce reward's apex factor of the flight, ``exp(-|h - h*| / 0.25)`` with
    ``h = z + vz² / 2g`` the height the flight tops out at (rising) or topped out at (falling; the same energy). A
    ball held on the paddle or tossed low lands on target but scores little, so a plan that ends holding the ball is
    not worth as much as one that ends with a target bounce on its way. Positive, as the rewards are.
    """
    xp = _xp(obs)
    top = obs[..., I_BALL_Z] + obs[..., I_BALL_VZ] ** 2 / (2.0 * GRAVITY)
    return bounce_landing_value(obs) * xp.exp(-abs(top - BOUNCE_APEX[1]) / 0.25)


BOUNCE_APEX_TOLERANCE = 0.2  # m: an apex within this of the target height counts as a target bounce
BOUNCE_SUCCESS_APEXES = 5  # target bounces that make a bounce episode a success (a steady bounce makes ~11 in 10 s)


def bounce_apexes(next_obs: np.ndarray) -> np.ndarray:
    """Apex heights of one episode's ball flights, ``[L, O] (world frame) -> [k]``.

    An apex is a step after which the ball's vertical velocity turns from rising to falling; its height is the
    free-flight apex (:func:`predicted_apex`) of the step before. A ball resting on a moving paddle also turns, at
    about the paddle's height, far below :data:`BOUNCE_APEX`.
    """
    vz = next_obs[:, I_BALL_VZ]
    turns = np.flatnonzero((vz[:-1] > 0) & (vz[1:] <= 0))
    return np.asarray(predicted_apex(next_obs[turns]), dtype=np.float64)


# ----- families ---------------------------------------------------------------------------------------------
_SCALES = TASK_SCALES
_TRAIN_REGION = {name: Interval(0.8, 1.2) for name in _SCALES}
_TEST_REGION = {name: Choice((0.5, 0.6, 1.5, 1.7)) for name in _SCALES}
# Between the train range and the test values, disjoint from both: settings that must extrapolate are chosen here.
VALIDATION_VALUES = (0.7, 1.35)
_VALIDATION_REGION = {name: Choice(VALIDATION_VALUES) for name in _SCALES}

_SPLITS_TEXT = (
    "Every parameter is a scale factor (1 = nominal: ball 0.1 kg, friction 0.3, restitution 0.5, gears 30/15/5). "
    "Train: each uniform in [0.8, 1.2]; test (out of distribution): each drawn independently from "
    "{0.5, 0.6, 1.5, 1.7}; validation (for choosing settings outside the train range without the test split): each "
    "from {0.7, 1.35}. Restitution is the ball-paddle coefficient of restitution (rebound / impact speed on a "
    "still paddle), realised via the contact damping; valid restitution_scale keeps 0.13 <= 0.5 × scale <= 0.95."
)


class JugglerFamily(TaskFamily):
    """Parameters, splits, validation and termination shared by the two juggler families."""

    parameters = (
        Parameter("ball_mass_scale", 1.0, "ball mass and inertia × scale (nominal 0.1 kg)"),
        Parameter("friction_scale", 1.0, "ball-paddle friction coefficient × scale (nominal 0.3)", strict=False),
        Parameter("restitution_scale", 1.0, "ball-paddle coefficient of restitution × scale (nominal 0.5)"),
        Parameter("gear_scale", 1.0, "actuator gears × scale (nominal 30 / 15 / 5 N·m)"),
    )
    train = (_TRAIN_REGION,)
    test = (_TEST_REGION,)
    validation = (_VALIDATION_REGION,)
    episode_steps = EPISODE_STEPS
    notes = "Own MJCF (mbmeta/envs/assets/juggler.xml); no Gymnasium or CaDM counterpart."
    ball_frame = "world"  # "paddle": observation entries 9-13 are the ball in the paddle frame (PADDLE_FRAME_OBS_NAMES)

    def world_obs(self, obs: Tensor) -> Tensor:
        """The observation with the ball in the world frame, whatever this family observes: ``[*S, O] -> [*S, O]``."""
        return to_world_frame_obs(obs) if self.ball_frame == "paddle" else obs

    def validate(self, task: TaskParams | Mapping[str, float]) -> TaskParams:
        """Check names and values as :meth:`TaskFamily.validate`, plus the restitution's physical range.

        Raises:
            KeyError: unknown or missing parameter names.
            ValueError: an invalid value; ``restitution_scale`` must keep ``0.5 × scale`` within
                :data:`RESTITUTION_RANGE` (no energy gain, within the calibration).
        """
        task = super().validate(task)
        if "restitution_scale" not in task:
            return task
        restitution = NOMINAL_RESTITUTION * task["restitution_scale"]
        low, high = RESTITUTION_RANGE
        if not low <= restitution <= high:
            raise ValueError(
                f"family {self.name!r}: parameter 'restitution_scale' must be in "
                f"[{low / NOMINAL_RESTITUTION:g}, {high / NOMINAL_RESTITUTION:g}] (restitution {low}..{high}), "
                f"got {task['restitution_scale']}"
            )
        return task

    def make_env(self, **kwargs: Any):
        """Build one environment: ``gymnasium.make(self.env_id, **kwargs)``."""
        import gymnasium as gym

        return gym.make(self.env_id, **kwargs)

    def terminated(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Ball lost (:func:`ball_lost` of ``next_obs``): ``[*S, O], [*S, A], [*S, O] -> [*S]`` bool."""
        return ball_lost(self.world_obs(next_obs))

    def make_controller(self) -> JugglerController:
        """The scripted balance / bounce controller (:class:`mbmeta.envs.juggler_controller.JugglerController`)."""
        return JugglerController(self.name)

    success_text = "the ball was never lost (the episode ran to its time limit)"

    def success(self, episode: Mapping[str, np.ndarray]) -> bool:
        """The ball was kept for the whole episode (no termination); the episode's length is the balance time."""
        return bool(not episode["terminated"].any())


class JugglerBalanceFamily(JugglerFamily):
    """Keep the ball resting on the paddle near a target point."""

    name = "juggler_balance"
    env_id = "mbmeta/JugglerBalance-v0"
    description = (
        "Planar 3-link arm with a paddle keeps a ball resting on it, ball centre near (0.5, 0.7) m. "
        "Reward 1 - tanh(5·distance) - 0.01‖a‖²; terminates when the ball is lost. " + _SPLITS_TEXT
    )

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``1 - tanh(5 d) - 0.01‖a‖²``: ``[*S, O], [*S, A], [*S, O] -> [*S]`` (d: ball-target distance)."""
        terms = balance_reward_terms(action, self.world_obs(next_obs))
        return terms["target"] - terms["ctrl_cost"]


class JugglerBounceFamily(JugglerFamily):
    """Bounce the ball repeatedly to a target apex height."""

    name = "juggler_bounce"
    env_id = "mbmeta/JugglerBounce-v0"
    description = (
        "Planar 3-link arm bounces a ball on its paddle to an apex of 1.5 m above x = 0.5 m. "
        "Reward exp(-(|apex - 1.5| + |x - 0.5|) / 0.25) - 0.01‖a‖², apex = z + max(vz, 0)²/2g; terminates when "
        "the ball is lost. " + _SPLITS_TEXT
    )

    success_text = (
        f"the ball was never lost and reached at least {BOUNCE_SUCCESS_APEXES} apexes within "
        f"{BOUNCE_APEX_TOLERANCE} m of the target height (holding the ball still reaches none)"
    )

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``exp(-(|apex - h*| + |x - x*|) / 0.25) - 0.01‖a‖²``: ``[*S, O], [*S, A], [*S, O] -> [*S]``."""
        terms = bounce_reward_terms(action, self.world_obs(next_obs))
        return terms["apex"] - terms["ctrl_cost"]

    def success(self, episode: Mapping[str, np.ndarray]) -> bool:
        """Kept for the whole episode with :data:`BOUNCE_SUCCESS_APEXES` target bounces (:func:`bounce_apexes`)."""
        if episode["terminated"].any():
            return False
        return self.measures(episode)["target_apexes"] >= BOUNCE_SUCCESS_APEXES

    def measures(self, episode: Mapping[str, np.ndarray]) -> dict[str, float]:
        """The episode's apexes (:func:`bounce_apexes`): all, within the target band, below it and above it."""
        apexes = bounce_apexes(self.world_obs(np.asarray(episode["next_obs"], dtype=np.float64)))
        offset = apexes - BOUNCE_APEX[1]
        return {
            "apexes": float(len(apexes)),
            "target_apexes": float((np.abs(offset) <= BOUNCE_APEX_TOLERANCE).sum()),
            "low_apexes": float((offset < -BOUNCE_APEX_TOLERANCE).sum()),
            "high_apexes": float((offset > BOUNCE_APEX_TOLERANCE).sum()),
        }


# ----- environments -----------------------------------------------------------------------------------------
class JugglerEnv(TaskEnvMixin, MujocoEnv, utils.EzPickle):
    """Base environment: the juggler model, observation, task handling; subclasses set the goal and reset pose.

    Observation ``[14]`` float64 (:data:`OBS_NAMES`): joint angles and velocities, paddle-surface centre (x, z)
    and angle, ball centre (x, z), its velocity (vx, vz) and spin. Action ``[3]`` in [-1, 1]: motor commands.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"], "render_fps": 50}
    family: JugglerFamily
    apply_task = staticmethod(apply_task)
    target_site_pos: tuple[float, float] = BALANCE_TARGET
    default_actuation: str = "torque"
    default_action_repeat: int = 1
    default_servo_span: float = SERVO_SPAN
    locked_elbow: bool = False  # a two-joint arm: the elbow welded at its home angle, its motor removed

    def __init__(
        self,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str = "side",
        reset_noise_scale: float = 0.02,
        task: TaskParams | Mapping[str, float] | None = None,
        actuation: str | None = None,
        action_repeat: int | None = None,
        servo_span: float | None = None,
    ):
        """Build the environment.

        Args:
            render_mode: ``None``, ``"rgb_array"``, ``"depth_array"``, ``"rgbd_tuple"`` or ``"human"``.
            width: rendered frame width in pixels.
            height: rendered frame height in pixels.
            camera_name: MJCF camera to render from (``"side"`` looks along +y at arm, paddle and ball).
            reset_noise_scale: half-width of the uniform noise on the reset pose (rad for joints, m for the ball).
            task: initial task (nominal when None).
            actuation: ``"torque"`` (an action is the motor torques over their limits) or ``"servo"`` (an action
                sets joint targets about the home pose: :func:`use_servo_actuators`); None: the environment's
                default (:attr:`default_actuation`).
            action_repeat: 0.02 s steps each action is held for; one env step then lasts ``0.02·action_repeat``
                s and its reward and termination are those of its last 0.02 s; None: the environment's default
                (:attr:`default_action_repeat`).
            servo_span: servo actuation only: the joint-target offset (rad) an action of ±1 sets about the home
                pose; None: the environment's default (:attr:`default_servo_span`).
        """
        actuation = self.default_actuation if actuation is None else actuation
        action_repeat = self.default_action_repeat if action_repeat is None else action_repeat
        servo_span = self.default_servo_span if servo_span is None else servo_span
        utils.EzPickle.__init__(
            self, render_mode, width, height, camera_name, reset_noise_scale, task, actuation, action_repeat, servo_span
        )
        if reset_noise_scale < 0:
            raise ValueError(f"reset_noise_scale must be >= 0, got {reset_noise_scale}")
        if actuation not in ACTUATIONS:
            raise ValueError(f"actuation must be one of {ACTUATIONS}, got {actuation!r}")
        if not isinstance(action_repeat, int) or isinstance(action_repeat, bool) or action_repeat < 1:
            raise ValueError(f"action_repeat must be an int >= 1, got {action_repeat!r}")
        if isinstance(servo_span, bool) or not isinstance(servo_span, (int, float)) or not 0 < servo_span <= 3:
            raise ValueError(f"servo_span must be a number of radians in (0, 3], got {servo_span!r}")
        self._reset_noise_scale = reset_noise_scale
        self.actuation, self.action_repeat, self.servo_span = actuation, action_repeat, float(servo_span)
        # MujocoEnv checks render_fps against 1 / dt.
        self.metadata = {**type(self).metadata, "render_fps": int(np.round(1.0 / (0.001 * FRAME_SKIP * action_repeat)))}
        obs_space = spaces.Box(-np.inf, np.inf, shape=(len(OBS_NAMES),), dtype=np.float64)
        MujocoEnv.__init__(
            self,
            str(MODEL_PATH),
            FRAME_SKIP * action_repeat,
            observation_space=obs_space,
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name=camera_name,
        )
        self.model.site_pos[self.model.site("target").id] = (self.target_site_pos[0], 0.0, self.target_site_pos[1])
        self._ball_qpos = slice(3, 6)
        if actuation == "servo":
            use_servo_actuators(self.model, inverse_kinematics(*self._home()), self.servo_span)
        self._init_task(NOMINAL_FIELDS, task)
        self._obs = self._get_obs()

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """The MJCF model; for a two-joint arm, without the elbow motor and with the elbow locked at home."""
        if not self.locked_elbow:
            return super()._initialize_simulation()
        spec = mujoco.MjSpec.from_file(self.fullpath)
        spec.delete(spec.actuator("elbow"))
        lock = spec.add_equality()
        lock.type, lock.name1, lock.name = mujoco.mjtEq.mjEQ_JOINT, "elbow", "elbow_lock"
        lock.data = [float(inverse_kinematics(*self._home())[1]), *[0.0] * (len(lock.data) - 1)]  # q_elbow = a0
        lock.solref = [0.005, 1.0]  # stiff: the elbow moves by under a milliradian under the arm's loads
        model = spec.compile()
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def _get_obs(self) -> np.ndarray:
        # Paddle pose from the joint angles (closed-form kinematics, checked against MuJoCo in the tests): after
        # mj_step, data.site_xpos still describes the state before the last substep, qpos the state after it.
        qpos, qvel = self.data.qpos, self.data.qvel
        obs = np.concatenate([qpos[:3], qvel[:3], paddle_pose(qpos[:3]), qpos[3:5], qvel[3:6]])
        return to_paddle_frame_obs(obs) if self.family.ball_frame == "paddle" else obs

    def _reward_terms(self, action: Tensor, next_obs: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply motor commands ``[3]`` for ``dt = 0.02 s``; reward and termination from the family's functions."""
        action = self._checked_action(action)
        obs = self._obs
        self.do_simulation(action, self.frame_skip)
        next_obs = self._get_obs()
        self._obs = next_obs
        # The family's own formulas, evaluated on numpy arrays (see `_xp`); equal to the torch results (tested).
        reward = float(self.family.reward(obs, action, next_obs))
        terminated = bool(self.family.terminated(obs, action, next_obs))
        info = {name: float(v) for name, v in self._reward_terms(action, self.family.world_obs(next_obs)).items()}
        if self.render_mode == "human":
            self.render()
        return next_obs, reward, terminated, False, self._with_task(info)

    def reset_model(self) -> np.ndarray:
        """Reset pose: arm at :meth:`_home` with noise, ball placed by :meth:`_ball_start`, all at rest."""
        noise = self._reset_noise_scale
        qpos = self.init_qpos.copy()
        home = inverse_kinematics(*self._home())
        qpos[:3] = home + self.np_random.uniform(-noise, noise, 3)
        if self.locked_elbow:
            qpos[1] = home[1]
        qpos[3:5] = self._ball_start(qpos[:3]) + self.np_random.uniform(-noise, noise, 2) * (1.0, 0.0)
        qpos[5] = 0.0
        self.set_state(qpos, np.zeros(self.model.nv))
        self._obs = self._get_obs()
        return self._obs

    def _home(self) -> tuple[float, float, float]:
        raise NotImplementedError

    def _ball_start(self, q: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class JugglerBalanceEnv(JugglerEnv):
    """``mbmeta/JugglerBalance-v0``: the ball starts resting on the level paddle; keep it at the target point."""

    family = JugglerBalanceFamily()
    target_site_pos = BALANCE_TARGET

    def _reward_terms(self, action: Tensor, next_obs: Tensor) -> dict[str, Tensor]:
        return balance_reward_terms(action, next_obs)

    def _home(self) -> tuple[float, float, float]:
        return BALANCE_TARGET[0], BALANCE_TARGET[1] - BALL_RADIUS, 0.0

    def _ball_start(self, q: np.ndarray) -> np.ndarray:
        # On the (noisy) paddle surface at its centre, 1 mm clear of it so that it settles without a kick.
        x, z, phi = paddle_pose(q)
        return np.array([x - np.sin(phi) * (BALL_RADIUS + 1e-3), z + np.cos(phi) * (BALL_RADIUS + 1e-3)])


class JugglerBounceEnv(JugglerEnv):
    """``mbmeta/JugglerBounce-v0``: the ball is dropped from 1 m over the level paddle; bounce it to the apex."""

    family = JugglerBounceFamily()
    target_site_pos = BOUNCE_APEX

    def _reward_terms(self, action: Tensor, next_obs: Tensor) -> dict[str, Tensor]:
        return bounce_reward_terms(action, next_obs)

    def _home(self) -> tuple[float, float, float]:
        return BOUNCE_APEX[0], BOUNCE_HOME_HEIGHT, 0.0

    def _ball_start(self, q: np.ndarray) -> np.ndarray:
        return np.array([BOUNCE_APEX[0], 1.0])


class JugglerBalanceServoFamily(JugglerBalanceFamily):
    """Balance with joint servos at 25 Hz: the same robot, goal, parameters and splits, another action.

    Why it exists (``experiments/juggler_diagnosis``): with torque motors at 50 Hz even MuJoCo itself as the model
    keeps the ball for only part of an episode under an affordable sampling planner, and a learned model of the
    torque-driven arm drifts by ~20 cm in 0.6 s; with servos (an action sets joint targets about the home pose, a
    stiff critically damped loop holds them; :func:`use_servo_actuators`) and each action held for two 0.02 s
    steps, the arm's motion is nearly kinematic and the planner sees 0.3 s ahead in 8 steps. The ball is observed
    in the paddle frame (:data:`PADDLE_FRAME_OBS_NAMES`): a model learnt from small random actions then drifts less
    over 0.6 s (2.0 cm against 4.9 cm in the world frame).
    """

    name = "juggler_balance_servo"
    env_id = "mbmeta/JugglerBalanceServo-v0"
    episode_steps = SERVO_EPISODE_STEPS
    ball_frame = "paddle"
    description = (
        "Juggler balance with joint servos at 25 Hz: an action [3] in [-1, 1] sets the joint targets to home + 0.1 "
        "rad × action (servo torque limits 30 / 15 / 5 N·m), each held for 0.04 s; 250 steps (10 s); the ball is "
        "observed in the paddle frame (obs 9-13: along, normal, their rates relative to the paddle, spin). Reward "
        "1 - tanh(5·distance) - 0.01‖a‖² of the ball centre to (0.5, 0.7) m; terminates when the ball is lost. "
        + _SPLITS_TEXT
    )

    def make_controller(self) -> JugglerController:
        """The scripted balance controller driving servos (its paddle pose turned into joint targets)."""
        return JugglerController(self.name, actuation="servo", ball_frame=self.ball_frame)


class JugglerBalanceServoEnv(JugglerBalanceEnv):
    """``mbmeta/JugglerBalanceServo-v0``: :class:`JugglerBalanceEnv` with servo actuation and an action repeat of 2."""

    family = JugglerBalanceServoFamily()
    default_actuation = "servo"
    default_action_repeat = SERVO_ACTION_REPEAT


class JugglerBounceServoFamily(JugglerBounceFamily):
    """Bounce with joint servos at 25 Hz: the same robot, goal, parameters and splits, another action.

    As :class:`JugglerBalanceServoFamily` (servos holding joint targets about the bounce home pose, each action held
    for two 0.02 s steps, 250 steps of 10 s) with a servo span of :data:`BOUNCE_SERVO_SPAN` (1 rad per unit action
    instead of 0.1): with MuJoCo itself as the model, iCEM 64 × 3 with a 0.6 s horizon kept bouncing the ball on
    train tasks at a span of 1 rad and lost it at 0.3 (``experiments/juggler_diagnosis``, step 6). The ball is
    observed in the world frame, unlike balance: it is mostly in free flight while the arm swings, and a model fitted
    on random data drifted a third as far in flight that way (same step). The mirror-law controller needs torque-level
    tracking and has no servo version: there is no scripted controller.
    """

    name = "juggler_bounce_servo"
    env_id = "mbmeta/JugglerBounceServo-v0"
    episode_steps = SERVO_EPISODE_STEPS
    ball_frame = "world"  # free flight is the arm's business only through impacts: world-frame flight is simpler
    probe_action_scale = 0.2  # full-range random servo targets throw the ball away before it first lands
    notes = (
        "Own MJCF (mbmeta/envs/assets/juggler.xml); a variant for learning (see "
        "[juggler.md](juggler.md#bouncing-with-servos-juggler_bounce_servo))."
    )
    description = (
        "Juggler bounce with joint servos at 25 Hz: an action [3] in [-1, 1] sets the joint targets to home + 1 rad × "
        "action (servo torque limits 30 / 15 / 5 N·m), each held for 0.04 s; 250 steps (10 s); the observation is "
        "juggler_bounce's (ball in the world frame). Reward exp(-(|apex - 1.5| + |x - 0.5|) / 0.25) - 0.01‖a‖², "
        "apex = z + max(vz, 0)²/2g; terminates when the ball is lost. " + _SPLITS_TEXT
    )

    def make_controller(self) -> None:
        """None: the mirror law needs torque-level tracking (with servo targets it loses the ball within ~1 s)."""
        return None


class JugglerBounceServoEnv(JugglerBounceEnv):
    """``mbmeta/JugglerBounceServo-v0``: :class:`JugglerBounceEnv` with servos of span 1 rad at 25 Hz."""

    family = JugglerBounceServoFamily()
    default_actuation = "servo"
    default_action_repeat = SERVO_ACTION_REPEAT
    default_servo_span = BOUNCE_SERVO_SPAN


# K = 10 fixed training tasks of the two-joint variant: ball mass {0.8, 0.9, 1.0, 1.1, 1.2} x friction {0.8, 1.2}.
TWO_JOINT_TRAIN_TASKS = tuple((m, f) for m in (0.8, 0.9, 1.0, 1.1, 1.2) for f in (0.8, 1.2))


class JugglerBalance2JFamily(JugglerFamily):
    """Balance with a two-joint arm (shoulder and wrist servos, elbow locked) on K = 10 training tasks.

    The same robot with its elbow welded at the home angle and its motor removed: action ``[2]`` (shoulder, wrist
    servo targets, as :class:`JugglerBalanceServoFamily`), 25 Hz, 250 steps. Only ball mass and friction vary; the
    train split is ten fixed tasks (:data:`TWO_JOINT_TRAIN_TASKS`), the test split each parameter in
    {0.5, 0.6, 1.5, 1.7}. The observation keeps its 14 entries (the elbow's angle and rate stay nearly constant), the
    ball in the paddle frame as in :class:`JugglerBalanceServoFamily`.
    """

    name = "juggler_balance_2j"
    env_id = "mbmeta/JugglerBalance2J-v0"
    episode_steps = SERVO_EPISODE_STEPS
    ball_frame = "paddle"
    parameters = JugglerFamily.parameters[:2]
    train = tuple({"ball_mass_scale": Choice((m,)), "friction_scale": Choice((f,))} for m, f in TWO_JOINT_TRAIN_TASKS)
    test = ({"ball_mass_scale": Choice((0.5, 0.6, 1.5, 1.7)), "friction_scale": Choice((0.5, 0.6, 1.5, 1.7))},)
    validation = ({"ball_mass_scale": Choice(VALIDATION_VALUES), "friction_scale": Choice(VALIDATION_VALUES)},)
    description = (
        "Juggler balance with a two-joint arm: shoulder and wrist servos (elbow locked), action [2] sets their targets "
        "to home + 0.1 rad × action, held 0.04 s; 250 steps (10 s); ball observed in the paddle frame. "
        "Reward 1 - tanh(5·distance) - 0.01‖a‖² of the "
        "ball centre to (0.5, 0.7) m; terminates when the ball is lost. Ball mass and friction vary (scale factors; "
        "nominal 0.1 kg, 0.3). Train: 10 fixed tasks, mass {0.8, 0.9, 1, 1.1, 1.2} × friction {0.8, 1.2}; test: "
        "each drawn from {0.5, 0.6, 1.5, 1.7}; validation: each from {0.7, 1.35}."
    )

    def make_controller(self) -> None:
        """None: the scripted controller's inverse kinematics needs all three joints."""
        return None

    def reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """``1 - tanh(5 d) - 0.01‖a‖²``: ``[*S, O], [*S, A=2], [*S, O] -> [*S]`` (d: ball-target distance)."""
        terms = balance_reward_terms(action, self.world_obs(next_obs))
        return terms["target"] - terms["ctrl_cost"]


class JugglerBalance2JEnv(JugglerBalanceEnv):
    """``mbmeta/JugglerBalance2J-v0``: the servo balance env with the elbow locked (action ``[2]``)."""

    family = JugglerBalance2JFamily()
    default_actuation = "servo"
    default_action_repeat = SERVO_ACTION_REPEAT
    locked_elbow = True


BALANCE = register_family(JugglerBalanceEnv.family, "mbmeta.envs.juggler:JugglerBalanceEnv")
BALANCE_SERVO = register_family(JugglerBalanceServoEnv.family, "mbmeta.envs.juggler:JugglerBalanceServoEnv")
BALANCE_2J = register_family(JugglerBalance2JEnv.family, "mbmeta.envs.juggler:JugglerBalance2JEnv")
BOUNCE = register_family(JugglerBounceEnv.family, "mbmeta.envs.juggler:JugglerBounceEnv")
BOUNCE_SERVO = register_family(JugglerBounceServoEnv.family, "mbmeta.envs.juggler:JugglerBounceServoEnv")

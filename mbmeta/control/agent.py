"""MPCAgent: the one place where a meta-learned model and a planner meet; plugs into any control loop.

At every step the agent adapts the model to each environment's last K transitions (one ``adapt`` call for all B
environments), plans from the previous plan shifted by one step, and returns the first action.

Two entrances, one implementation: the collector's tensor path (:meth:`MPCAgent.act_tensor`,
:meth:`MPCAgent.observe_tensor`: float32 tensors on the agent's device, already validated at the environment
boundary) and the NumPy :meth:`MPCAgent.act` / :meth:`MPCAgent.observe` for users' own loops, which convert and
validate their input once (shape, NaN/inf) and call the tensor path.
"""

from __future__ import annotations

import time
import warnings
from os import PathLike
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mbmeta.control.objective import PRECISIONS, PROPAGATIONS, Precision, Propagation, RolloutObjective
from mbmeta.control.plan_stats import PlanStats
from mbmeta.control.policy import Policy
from mbmeta.models.checkpoint import load_dynamics
from mbmeta.models.latent_range import LatentRange
from mbmeta.planners.base import Planner
from mbmeta.planners.receding import shift_plan
from mbmeta.threads import too_many_threads_message
from mbmeta.types import MetaDynamics, RewardFn, TerminationFn, Transition, ValueFn

_threads_checked = False  # the thread check runs once per process, at the first act() on CPU


def _model_device(dynamics: Any) -> torch.device:
    """The device of a model's parameters (or buffers, or a ``device`` attribute); CPU if it has none."""
    if isinstance(dynamics, nn.Module):
        for tensor in (*dynamics.parameters(), *dynamics.buffers()):
            return tensor.device
    device = getattr(dynamics, "device", None)
    return torch.device(device) if device is not None else torch.device("cpu")


def _checked_latent_range(dynamics: Any, latent_range: LatentRange, device: torch.device) -> LatentRange:
    """``latent_range`` on ``device`` if it fits the model's task code, else a one-line ``ValueError``."""
    if not isinstance(latent_range, LatentRange):
        raise ValueError(f"MPCAgent: latent_range must be a LatentRange, got {type(latent_range).__name__}")
    latent_dim = getattr(getattr(dynamics, "adapter", None), "latent_dim", None)
    if not latent_dim:
        adaptation = getattr(dynamics, "adaptation_name", type(dynamics).__name__)
        raise ValueError(f"MPCAgent: latent_range needs a model with a task code z; {adaptation!r} has none")
    if latent_range.dim != latent_dim:
        raise ValueError(f"MPCAgent: latent_range is for Z={latent_range.dim}, the model's code has Z={latent_dim}")
    return latent_range.to(device)


def _warn_once_about_threads() -> None:
    """Warn (once per process) when torch has more threads than free cores: a user's loop then plans ~20x slower."""
    global _threads_checked
    _threads_checked = True
    message = too_many_threads_message()
    if message is not None:
        warnings.warn(f"MPCAgent: {message}", RuntimeWarning, stacklevel=3)


class MPCAgent(Policy):
    """Model-predictive control with a meta-learned dynamics model; a :class:`~mbmeta.control.policy.Policy`.

    Typical loop (one environment)::

        agent.reset()
        obs, _ = env.reset()
        while True:
            action = agent.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            agent.observe(obs, action, next_obs, reward, terminated)
            ...

    With a vector environment pass ``[B, O]`` batches, call ``reset(batch_size=B)`` once, and after each step
    ``reset_envs(terminated | truncated)``; with Gymnasium's default next-step autoreset, pass
    ``valid=~autoreset`` to :meth:`observe` so the reset step (old final obs -> new first obs) is not recorded.
    :func:`~mbmeta.control.collection.collect_episodes` does all of this through the tensor path.

    Args:
        dynamics: the meta-learned model (``adapt(context, mask, task) -> AdaptedDynamics``).
        planner: a planner; its ``low``/``high`` are the action bounds.
        reward_fn: exact reward ``(obs, action, next_obs) -> [*S]`` for planning (e.g. a task family's ``reward``);
            None uses the model's learned reward.
        termination_fn: ``(obs, action, next_obs) -> [*S]`` bool, masks rewards after a predicted termination.
        horizon: H, the planning horizon.
        context_length: K, the number of recent transitions per environment the model adapts on.
        propagation: how particles use the ensemble: ``"expectation"``, ``"ts1"`` or ``"tsinf"``.
        particles: P per candidate (1 for ``"expectation"``; divisible by E for ``"tsinf"``).
        discount: per-step discount of planned rewards, in (0, 1].
        disagreement_penalty: λ on the ensemble disagreement (see :class:`RolloutObjective`).
        seed: seed of the agent's own torch generator (all planning randomness; reseed with ``reset(seed=...)``).
        device: where to plan; default: the model's device.
        precision: ``"fp32"``, or ``"bf16"`` to evaluate the model under bfloat16 autocast while planning (several
            times faster on CPUs with AVX512-BF16/AMX and on GPUs; states and returns stay float32; see
            ``docs/performance.md`` for speed and closed-loop return).
        latent_range: clamp the model's task code ``z`` into this range at every adaptation
            (:func:`~mbmeta.control.latent_range.measure_latent_range` measures it on the training data), so that a
            context unlike any training task cannot push ``z`` where the model was never fitted; only for a model
            whose adaptation has a code (``context``, ``recurrent``, ``oracle``). None: ``z`` as adapted.
        terminal_value: ``(obs [*S, O]) -> [*S]``, added to each planned return for the rollout's last state (see
            :class:`RolloutObjective`): what lies beyond the horizon, when it is known. None: nothing.
        context_size: deprecated alias of ``context_length``.
    """

    takes_task = True  # the task goes on to the model's adapt (only an oracle model uses it)

    def __init__(
        self,
        dynamics: MetaDynamics,
        planner: Planner,
        reward_fn: RewardFn | None = None,
        termination_fn: TerminationFn | None = None,
        *,
        horizon: int = 30,
        context_length: int = 10,
        propagation: Propagation = "expectation",
        particles: int = 1,
        discount: float = 1.0,
        disagreement_penalty: float = 0.0,
        seed: int = 0,
        device: torch.device | str | None = None,
        precision: Precision = "fp32",
        latent_range: LatentRange | None = None,
        terminal_value: ValueFn | None = None,
        context_size: int | None = None,
    ) -> None:
        if context_size is not None:
            warnings.warn("MPCAgent(context_size=...) is deprecated; use context_length", DeprecationWarning, 2)
            context_length = context_size
        for name, value in (("horizon", horizon), ("context_length", context_length), ("particles", particles)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MPCAgent: {name} must be > 0 (an int), got {value!r}")
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
            raise ValueError(f"MPCAgent: seed must be an int, got {seed!r}")
        if not isinstance(discount, int | float) or not 0.0 < discount <= 1.0:
            raise ValueError(f"MPCAgent: discount must be a number in (0, 1], got {discount!r}")
        if not isinstance(disagreement_penalty, int | float) or not disagreement_penalty >= 0.0:
            raise ValueError(f"MPCAgent: disagreement_penalty must be a number >= 0, got {disagreement_penalty!r}")
        if propagation not in PROPAGATIONS:
            raise ValueError(f"unknown propagation {propagation!r}; valid values are {list(PROPAGATIONS)}")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; valid values are {list(PRECISIONS)}")
        if terminal_value is not None and not callable(terminal_value):
            raise TypeError(f"MPCAgent: terminal_value must be callable (obs [*S, O] -> [*S]), got {terminal_value!r}")
        if not hasattr(dynamics, "adapt"):
            raise TypeError(f"dynamics must have an adapt(context, mask, task) method, got {type(dynamics).__name__}")
        self.dynamics = dynamics
        self.planner = planner
        self.reward_fn = reward_fn
        self.termination_fn = termination_fn
        self.horizon = int(horizon)
        self.context_length = int(context_length)
        self.context_size = self.context_length  # the old name, still read by code written before the rename
        self.objective_settings = dict(
            propagation=propagation,
            particles=int(particles),
            discount=float(discount),
            disagreement_penalty=float(disagreement_penalty),
            precision=precision,
            terminal_value=terminal_value,
        )
        self.device = torch.device(device) if device is not None else _model_device(dynamics)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.low = planner.low.to(self.device)
        self.high = planner.high.to(self.device)
        self.latent_range = None if latent_range is None else _checked_latent_range(dynamics, latent_range, self.device)
        self._adapt_options = {} if latent_range is None else {"latent_range": self.latent_range}
        # O from the model where it declares it (an mbmeta model does), so a wrong-width observation is refused before
        # it can fix the window's shape; otherwise learned from the first accepted call and forgotten by reset().
        declared = getattr(dynamics, "obs_dim", None)
        self._declared_obs_dim: int | None = int(declared) if isinstance(declared, int | np.integer) else None
        self.obs_dim: int | None = self._declared_obs_dim
        self.plan_stats = PlanStats()  # cost and planned return of every act() call; kept across reset()
        self.reset(1)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | PathLike[str],
        planner: Planner,
        reward_fn: RewardFn | None = None,
        termination_fn: TerminationFn | None = None,
        *,
        map_location: str | torch.device | None = None,
        **kwargs: Any,
    ) -> MPCAgent:
        """Build an agent around the model of a training checkpoint.

        Args:
            path: a Lightning checkpoint written by ``mbmeta fit``.
            planner: the planner (its bounds must be the environment's action bounds).
            reward_fn: exact reward for planning, or None for the model's learned reward.
            termination_fn: predicted termination, or None.
            map_location: where to load the weights (e.g. ``"cpu"``).
            **kwargs: further :class:`MPCAgent` arguments (horizon, context_length, propagation, ...).
        """
        # The models layer rebuilds the dynamics from the checkpoint (weights_only: no pickled code runs); the
        # control layer never needs Lightning or the training module.
        dynamics = load_dynamics(path, map_location=map_location if map_location is not None else "cpu")
        return cls(dynamics, planner, reward_fn, termination_fn, **kwargs)

    # ----- episode bookkeeping -----------------------------------------------------------------------------------
    @property
    def action_dim(self) -> int:
        """A, the action size."""
        return self.low.numel()

    def reset(self, batch_size: int = 1, *, seed: int | None = None) -> None:
        """Forget everything: empty context windows and warm starts for ``batch_size`` environments.

        Args:
            batch_size: B, the number of environments acted for in each call.
            seed: reseed the agent's generator (None keeps its stream going).
        """
        if not isinstance(batch_size, int | np.integer) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"MPCAgent: batch_size must be an int > 0, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.obs_dim = self._declared_obs_dim  # a clean state: an observation size learned from data is forgotten
        if seed is not None:
            self.generator.manual_seed(int(seed))
        centre = (self.low + self.high) / 2
        self._plan = centre.expand(self.batch_size, self.horizon, self.action_dim).clone()  # [B, H, A]
        self._carry: Tensor | None = None
        self._window: Transition | None = None
        self._mask = torch.zeros(self.batch_size, self.context_length, dtype=torch.bool, device=self.device)
        if self.obs_dim is not None:
            self._allocate_window(self.obs_dim)

    def reset_envs(self, mask: Any) -> None:
        """Start new episodes in the environments where ``mask`` ``[B]`` is True (empty window, fresh warm start).

        Args:
            mask: ``[B]`` bool (a tensor on any device, an array or a list).
        """
        done = torch.as_tensor(mask, device=self.device).to(torch.bool).reshape(-1)
        if done.shape != (self.batch_size,):
            raise ValueError(f"mask must have shape ({self.batch_size},), got {tuple(done.shape)}")
        self._mask = self._mask & ~done[:, None]
        centre = (self.low + self.high) / 2
        self._plan = torch.where(done[:, None, None], centre, self._plan)
        if self._carry is not None:
            self._carry = torch.where(done[:, None, None, None], centre, self._carry)

    def _allocate_window(self, obs_dim: int) -> None:
        b, k = self.batch_size, self.context_length
        zeros = lambda *shape: torch.zeros(*shape, device=self.device)  # noqa: E731
        self._window = Transition(
            obs=zeros(b, k, obs_dim),
            action=zeros(b, k, self.action_dim),
            next_obs=zeros(b, k, obs_dim),
            reward=zeros(b, k),
            terminated=torch.zeros(b, k, dtype=torch.bool, device=self.device),
        )

    def _as_batch(self, value: Any, name: str, size: int | None) -> tuple[Tensor, bool]:
        """``value`` as float32 ``[B, size]`` on the device, and whether it came unbatched; ValueError otherwise."""
        b = self.batch_size
        expected = f"({b}, {size if size is not None else 'O'})" + (f" or ({size},)" if b == 1 else "")
        try:
            array = np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a float array of shape {expected}; got {type(value).__name__}") from err
        single = array.ndim == 1 and b == 1
        if single:
            array = array[None]
        if array.ndim != 2 or array.shape[0] != b or (size is not None and array.shape[1] != size):
            hint = "" if array.ndim != 2 or array.shape[0] == b else f"; call reset(batch_size={array.shape[0]}) first"
            raise ValueError(f"{name} must have shape {expected}, got {tuple(np.shape(value))}{hint}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or inf (expected shape {expected}): {array}")
        return torch.as_tensor(array, device=self.device), single

    def _checked_obs(self, obs: Any, name: str = "obs") -> tuple[Tensor, bool]:
        tensor, single = self._as_batch(obs, name, self.obs_dim)
        self._check_batch(tensor, name)
        return tensor, single

    def _check_batch(self, obs: Tensor, name: str) -> None:
        """Shape check of the tensor path (Python ints, no host sync): ``obs`` is ``[B, O]``; changes nothing."""
        if obs.ndim != 2 or obs.shape[0] != self.batch_size or obs.shape[1] != (self.obs_dim or obs.shape[1]):
            expected = f"({self.batch_size}, {self.obs_dim if self.obs_dim is not None else 'O'})"
            raise ValueError(f"{name} must have shape {expected}, got {tuple(obs.shape)}; call reset(batch_size=B)")

    def _adopt_obs_dim(self, obs_dim: int) -> bool:
        """Fix O (and allocate the windows) from an accepted call if it is not known yet; True if it was fixed now."""
        if self.obs_dim is not None:
            return False
        self.obs_dim = int(obs_dim)
        self._allocate_window(self.obs_dim)
        return True

    def _forget_obs_dim(self) -> None:
        """Undo :meth:`_adopt_obs_dim` after the call that fixed O failed (a refused call changes nothing)."""
        self.obs_dim, self._window = None, None

    # ----- acting ------------------------------------------------------------------------------------------------
    def act(self, obs: Any, task: Any = None) -> np.ndarray:
        """Plan and return the first action of each environment (NumPy in, NumPy out: a user's own loop).

        Args:
            obs: ``[B, O]`` (or ``[O]`` when B = 1) current observations.
            task: ``[B, T]`` true task parameters, only for an oracle model; None otherwise.

        Returns:
            float32 ``[B, A]`` (or ``[A]`` for unbatched obs) actions within the planner's bounds.

        Raises:
            ValueError: ``obs`` of the wrong shape or with NaN/inf (names the expected shape).
        """
        if not _threads_checked and self.device.type == "cpu":
            _warn_once_about_threads()
        obs_t, single = self._checked_obs(obs)
        task_t = None if task is None else torch.as_tensor(np.asarray(task, dtype=np.float32), device=self.device)
        first = self.act_tensor(obs_t, task_t).cpu().numpy()
        return first[0] if single else first

    def act_tensor(self, obs: Tensor, task: Tensor | None = None) -> Tensor:
        """Plan and return the first action of each environment (the collector's path: no value checks).

        Args:
            obs: ``[B, O]`` float32 observations on the agent's device, already validated (finite).
            task: ``[B, T]`` true task parameters, only for an oracle model; None otherwise.

        Returns:
            ``[B, A]`` float32 actions on the agent's device, within the planner's bounds.
        """
        start = time.perf_counter()
        self._check_batch(obs, "obs")
        adopted = self._adopt_obs_dim(obs.shape[1])
        try:
            return self._plan_first_actions(obs, task, start)
        except Exception:
            if adopted:
                self._forget_obs_dim()
            raise

    def _plan_first_actions(self, obs: Tensor, task: Tensor | None, start: float) -> Tensor:
        with torch.no_grad():
            adapted = self.dynamics.adapt(self._window, self._mask, task, **self._adapt_options)
            objective = RolloutObjective(
                adapted,
                obs,
                self.reward_fn,
                self.termination_fn,
                generator=self.generator,
                **self.objective_settings,
            )
            result, carry = self.planner.plan_with_carry(
                objective, self._plan, generator=self.generator, carry=self._carry
            )
            actions = result.actions
            ok = torch.isfinite(result.returns) & torch.isfinite(actions).flatten(1).all(dim=1)
            bad: list[int] = []
            if not bool(ok.all()):  # one host sync per step, outside every hot loop
                bad = (~ok).nonzero().flatten().tolist()
                warnings.warn(
                    f"MPCAgent: no finite plan for environment(s) {bad} (the model predicted NaN/inf); "
                    "falling back to the previous plan shifted by one step",
                    RuntimeWarning,
                    stacklevel=3,
                )
                actions = torch.where(ok[:, None, None], actions, self._plan)
                if carry is not None:
                    carry = torch.where(ok[:, None, None, None], carry, self._plan[:, None])
            self._plan = self._shift(actions)
            self._carry = None if carry is None else self._shift(carry)
        first = actions[:, 0].to(dtype=torch.float32)
        self.plan_stats.record(
            batch=self.batch_size,
            horizon=self.horizon,
            rows=result.rows,
            returns=result.returns,
            finite=ok,
            seconds=time.perf_counter() - start,
            fallbacks=len(bad),
        )
        return first

    def _shift(self, plans: Tensor) -> Tensor:
        """Drop the executed first step and append the centre of the bounds: ``[..., H, A]``."""
        return shift_plan(plans, (self.low + self.high) / 2)

    def observe(
        self,
        obs: Any,
        action: Any,
        next_obs: Any,
        reward: Any = None,
        terminated: Any = None,
        *,
        valid: Any = None,
    ) -> None:
        """Append a transition to each environment's context window (NumPy or anything array-like: a user's loop).

        Args:
            obs: ``[B, O]`` (or ``[O]``) observation before the step.
            action: ``[B, A]`` (or ``[A]``) action taken.
            next_obs: ``[B, O]`` (or ``[O]``) observation after the step.
            reward: ``[B]`` rewards; None computes them with ``reward_fn`` if there is one, else zeros.
            terminated: ``[B]`` bool; None means False.
            valid: ``[B]`` bool, which environments' transitions are real (False e.g. for a vector env's autoreset
                step); None means all.

        Raises:
            ValueError: an argument of the wrong shape, or obs/action/next_obs with NaN/inf.
        """
        obs_t, _ = self._checked_obs(obs, "obs")
        next_t, _ = self._as_batch(next_obs, "next_obs", obs_t.shape[1])
        action_t, _ = self._as_batch(action, "action", self.action_dim)
        b = self.batch_size
        if reward is None:
            reward_t = (
                self.reward_fn(obs_t, action_t, next_t).to(torch.float32)
                if self.reward_fn is not None
                else torch.zeros(b, device=self.device)
            )
        else:
            try:
                reward_array = np.asarray(reward, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError) as err:
                raise ValueError(f"reward must be a float array of shape ({b},); got {type(reward).__name__}") from err
            if not np.isfinite(reward_array).all():
                raise ValueError(f"reward contains NaN or inf (expected shape ({b},)): {reward_array}")
            reward_t = torch.as_tensor(reward_array, device=self.device)
        done_t = (
            torch.zeros(b, dtype=torch.bool, device=self.device)
            if terminated is None
            else torch.as_tensor(np.asarray(terminated, dtype=bool), device=self.device).reshape(-1)
        )
        keep = (
            torch.ones(b, dtype=torch.bool, device=self.device)
            if valid is None
            else torch.as_tensor(np.asarray(valid, dtype=bool), device=self.device).reshape(-1)
        )
        for name, tensor in (("reward", reward_t), ("terminated", done_t), ("valid", keep)):
            if tensor.shape != (b,):
                raise ValueError(f"{name} must have shape ({b},), got {tuple(tensor.shape)}")
        self.observe_tensor(Transition(obs_t, action_t, next_t, reward_t, done_t), keep)

    def observe_tensor(self, transition: Transition, valid: Tensor) -> None:
        """Append a transition to each environment's context window (the collector's path: no value checks).

        Args:
            transition: fields ``[B, ...]`` on the agent's device: obs and next_obs ``[B, O]``, action ``[B, A]``
                float32, reward ``[B]`` float32, terminated ``[B]`` bool; already validated.
            valid: ``[B]`` bool, which rows are real transitions (the others leave their window unchanged).
        """
        b = self.batch_size
        self._check_batch(transition.obs, "obs")
        if transition.next_obs.shape != transition.obs.shape:
            raise ValueError(
                f"next_obs must have obs's shape {tuple(transition.obs.shape)}, got {tuple(transition.next_obs.shape)}"
            )
        self._adopt_obs_dim(transition.obs.shape[1])

        def push(window: Tensor, new: Tensor) -> Tensor:
            shifted = torch.cat([window[:, 1:], new[:, None]], dim=1)
            return torch.where(valid.reshape(b, *([1] * (window.ndim - 1))), shifted, window)

        assert self._window is not None  # allocated by _check_batch
        self._window = Transition(*(push(w, n) for w, n in zip(self._window, transition, strict=True)))
        self._mask = push(self._mask, torch.ones(b, dtype=torch.bool, device=self.device))

    @property
    def context(self) -> tuple[Transition, Tensor]:
        """The current context windows (fields ``[B, K, ...]``, oldest first) and their mask ``[B, K]``."""
        if self._window is None:
            raise RuntimeError("no context yet: the observation size is known after the first act or observe")
        return self._window, self._mask

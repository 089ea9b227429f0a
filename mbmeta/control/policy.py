"""What the episode collector drives: the :class:`Policy` base class, and :class:`CallablePolicy` for plain functions.

The collector (:func:`mbmeta.control.collection.collect_episodes`) converts at the environment boundary, once per
step: the policy sees float32 tensors on its :attr:`Policy.device` and returns its actions as a tensor, which the
collector turns into the NumPy array ``env.step`` needs. What a policy can do is declared (class attributes and
overridable no-op hooks), never discovered by inspecting signatures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from mbmeta.types import Transition


class Policy:
    """A batched policy for B environments, as the collector drives it. Subclasses implement :meth:`act_tensor`.

    Per step the collector calls :meth:`act_tensor`, steps the environments, then :meth:`observe_tensor` with the
    transition every environment just made, then :meth:`reset_envs` for the environments whose state must be
    forgotten. :meth:`reset` comes first, after the environments reset. The hooks are no-ops here: a stateless
    policy overrides none of them.

    Attributes:
        takes_task: declared capability: :meth:`act_tensor` uses the true task parameters (an oracle model); the
            collector passes them when asked to (``collect_episodes(pass_task=True)``) and refuses otherwise.
        lockstep: declared need: the policy keeps per-environment state that only :meth:`reset` clears (its
            :meth:`reset_envs` cannot forget one environment), so the collector must run episodes in synchronised
            waves (all environments start together; the next wave starts when all have finished).
        device: where the collector puts the tensors it passes (observations, transitions, masks).
    """

    takes_task: bool = False
    lockstep: bool = False
    device: torch.device = torch.device("cpu")

    def reset(self, batch_size: int) -> None:
        """Forget everything; ``batch_size`` environments follow. No-op unless overridden."""

    def act_tensor(self, obs: Tensor, task: Tensor | None = None) -> Tensor:
        """Actions for the current observations.

        Args:
            obs: ``[B, O]`` float32 on :attr:`device`, already validated (finite) by the collector.
            task: ``[B, T]`` true task parameters when :attr:`takes_task` and the collector was asked to pass them;
                None otherwise.

        Returns:
            ``[B, A]`` actions (any float dtype and device; the collector checks their shape and finiteness).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement act_tensor(obs, task=None)")

    def observe_tensor(self, transition: Transition, valid: Tensor) -> None:
        """The transition every environment just made. No-op unless overridden.

        Args:
            transition: fields ``[B, ...]`` on :attr:`device`: obs and next_obs ``[B, O]``, action ``[B, A]``, reward
                ``[B]`` float32 and terminated ``[B]`` bool.
            valid: ``[B]`` bool, False for rows that are no transition (an environment that was only being reset
                this step); such rows are always followed by :meth:`reset_envs`.
        """

    def reset_envs(self, mask: Tensor) -> None:
        """Forget the state of the environments where ``mask`` ``[B]`` (bool, on :attr:`device`) is True.

        Called after :meth:`observe_tensor` for environments whose episode just ended and for those that were only
        being reset. No-op unless overridden.
        """


class CallablePolicy(Policy):
    """A plain function ``fn(obs [B, O]) -> actions [B, A]`` (NumPy in, array-like out) as a stateless policy.

    The collector wraps plain callables in this class; wrap one yourself to declare that it takes the task.

    Args:
        fn: ``fn(obs)``, or ``fn(obs, task)`` with ``takes_task`` (``task`` ``[B, T]`` float32 NumPy).
        takes_task: whether ``fn`` takes the true task parameters as its second argument.
    """

    def __init__(self, fn: Callable[..., object], *, takes_task: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"CallablePolicy needs a callable obs -> actions, got {type(fn).__name__}")
        self.fn = fn
        self.takes_task = bool(takes_task)  # declared per instance: it depends on the function

    def act_tensor(self, obs: Tensor, task: Tensor | None = None) -> Tensor:
        """``fn`` on the observations as NumPy; its actions as a float32 tensor ``[B, A]``."""
        args = (obs.cpu().numpy(),) if task is None else (obs.cpu().numpy(), task.cpu().numpy())
        return torch.as_tensor(np.asarray(self.fn(*args), dtype=np.float32))


def as_policy(policy: Policy | Callable[[np.ndarray], object]) -> Policy:
    """``policy`` itself if it is a :class:`Policy`, a :class:`CallablePolicy` around a plain callable.

    Raises:
        TypeError: anything else (e.g. an object with an ``act`` method that does not subclass :class:`Policy`).
    """
    if isinstance(policy, Policy):
        return policy
    if callable(policy):
        return CallablePolicy(policy)
    raise TypeError(
        f"policy must subclass mbmeta.control.policy.Policy or be a plain callable obs -> actions, "
        f"got {type(policy).__name__}"
    )

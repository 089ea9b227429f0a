"""The rollout objective: scores candidate action sequences by rolling an adapted model forward.

Every candidate × particle × ensemble member is stepped together: exactly one batched model call per time step.

Propagation (how particles use the ensemble, after PETS):

- ``"tsinf"``: each particle is tied to one member for the whole rollout. Rows are laid out ``[E, B, N, P/E, ...]``
  so member ``e`` computes only its own particles (P must be divisible by E).
- ``"ts1"``: each particle is handed to a random member at every step. The R = N·P rows (padded to a multiple of E)
  sit in slots ``[E, B, S, ...]`` (S = R/E per member) in groups of E: group k is the column of slots ``[:, b, k]``.
  At every step each group is turned by its own uniformly random number of places over the members (one gather
  of the states; the actions of all steps are put in place once per call). So each particle's member is uniform at
  every step and independent of its members at the other steps — the law of PETS's TS-1 — every member computes
  exactly S rows, the E particles of a group are always on distinct members (a stratification, like the balanced
  permutation used before) and groups are independent of each other. Which particles share a group is fixed by
  position (row j is in group j mod S), and candidates are exchangeable, so that choice changes nothing.
- ``"expectation"``: one particle per candidate; every member predicts it and the next state is the members'
  average mean (no sampling). ``"tsinf"`` with ``particles = E`` and ``sample=False`` is the other common
  "expectation": each member's own mean trajectory, returns averaged.

Sampling (``sample=True``) draws the next state from each member's Gaussian ``N(mean, var)``; with ``sample=False``
particles follow the means. Returns are averaged over particles; rewards after a predicted termination are masked.

The disagreement penalty subtracts ``λ · mean_O(Var_E(mean))`` (how much the members disagree about the next
state) from each step's reward. It needs every member's prediction of every row, so with ``"ts1"``/``"tsinf"`` a
positive penalty makes each step cost E times the model rows (still one call); ``"expectation"`` gets it for free.

Non-finite returns (a diverging model) are passed through as NaN/inf: the planners replace them by a very low
value (see :data:`mbmeta.planners.base.INVALID_RETURN`), so such candidates are never elites.

Speed: with an exact ``reward_fn`` the model is asked not to evaluate its learned reward head (when it declares
``can_skip_reward``, as :class:`~mbmeta.models.dynamics.AdaptedModel` does; see
:class:`~mbmeta.types.AdaptedDynamics`). ``precision="bf16"`` runs the model
calls under ``torch.autocast(dtype=torch.bfloat16)`` (about 3-4x faster matmuls on CPUs with AVX512-BF16 / AMX,
and on GPUs); the model's outputs are cast back to float32 and states, exact rewards, terminations and returns stay
float32 (autocast is switched off around them), so only the network evaluations lose precision.
"""

from __future__ import annotations

import contextlib
from typing import Literal, get_args

import torch
from torch import Tensor

from mbmeta.planners.sampling import gaussian, integers, uniform
from mbmeta.types import AdaptedDynamics, Prediction, RewardFn, TerminationFn, ValueFn

Propagation = Literal["ts1", "tsinf", "expectation"]
PROPAGATIONS: tuple[str, ...] = get_args(Propagation)
Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


class RolloutObjective:
    """An :data:`~mbmeta.types.Objective` over one adapted model, from fixed start observations.

    Args:
        dynamics: the adapted model (E members, adapted to B environments).
        obs: ``[B, O]`` current observation of each environment (the rollouts' start).
        reward_fn: exact reward ``(obs, action, next_obs) -> [*S]`` (e.g. a task family's ``reward``), or None to
            use the model's learned ``Prediction.reward``.
        termination_fn: ``(obs, action, next_obs) -> [*S]`` bool; rewards after a predicted termination are
            masked (the terminating step's own reward counts). None: never terminates.
        propagation: ``"tsinf"``, ``"ts1"`` or ``"expectation"`` (see the module docstring).
        particles: P per candidate; divisible by E for ``"tsinf"``; must be 1 for ``"expectation"``.
        discount: per-step discount in (0, 1].
        disagreement_penalty: λ >= 0 on the ensemble's disagreement.
        sample: draw next states from the predicted Gaussians (True) or follow the means (False).
        generator: source of the sampling and member-shuffling noise (None: a fresh OS-seeded generator).
        precision: ``"fp32"``, or ``"bf16"`` to evaluate the model under bfloat16 autocast (see the module
            docstring); returns are accumulated in float32 either way.
        terminal_value: ``(obs [*S, O]) -> [*S]``, what a rollout's last state is worth; added to its return with
            weight ``discount ** H`` unless the rollout was predicted to terminate (so keep it on the rewards' side
            of zero, or terminating looks better than going on). None: nothing is added.

    Call with ``actions [B, N, H, A]``; returns ``[B, N]`` (mean over particles of the discounted return).
    """

    def __init__(
        self,
        dynamics: AdaptedDynamics,
        obs: Tensor,
        reward_fn: RewardFn | None = None,
        termination_fn: TerminationFn | None = None,
        *,
        propagation: Propagation = "tsinf",
        particles: int = 20,
        discount: float = 1.0,
        disagreement_penalty: float = 0.0,
        sample: bool = True,
        generator: torch.Generator | None = None,
        precision: Precision = "fp32",
        terminal_value: ValueFn | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; valid values are {list(PRECISIONS)}")
        if propagation not in PROPAGATIONS:
            raise ValueError(f"unknown propagation {propagation!r}; valid values are {list(PROPAGATIONS)}")
        if obs.ndim != 2:
            raise ValueError(f"obs must have shape [B, O], got {list(obs.shape)}")
        members = int(dynamics.ensemble_size)
        if members < 1:
            raise ValueError(f"dynamics.ensemble_size must be >= 1, got {members}")
        if particles < 1:
            raise ValueError(f"particles must be >= 1, got {particles}")
        if propagation == "tsinf" and particles % members:
            raise ValueError(
                f"propagation 'tsinf' needs particles divisible by the ensemble size {members}, got {particles}"
            )
        if propagation == "expectation" and particles != 1:
            raise ValueError(f"propagation 'expectation' uses one particle per candidate; got particles={particles}")
        if not 0 < discount <= 1:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        if disagreement_penalty < 0:
            raise ValueError(f"disagreement_penalty must be >= 0, got {disagreement_penalty}")
        self.dynamics = dynamics
        self.obs = obs
        self.reward_fn = reward_fn
        self.termination_fn = termination_fn
        self.propagation = propagation
        self.particles = int(particles)
        self.members = members
        self.discount = float(discount)
        self.penalty = float(disagreement_penalty)
        self.sample = bool(sample)
        if generator is None:
            generator = torch.Generator(device=obs.device)
            generator.seed()
        self.generator = generator
        self.precision = precision
        self.terminal_value = terminal_value
        # An exact reward makes the model's learned reward head wasted work: skip it when the model declares it can
        # (an optional capability of the protocol: absent means the model takes only obs and action).
        skip = reward_fn is not None and getattr(dynamics, "can_skip_reward", False)
        self._model_kwargs = {"with_reward": False} if skip else {}

    def _reduced(self) -> contextlib.AbstractContextManager:
        """The autocast region of the model calls (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.obs.device.type, dtype=torch.bfloat16)

    def _exact(self) -> contextlib.AbstractContextManager:
        """Full precision inside the autocast region: rewards and terminations of float32 states."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.obs.device.type, enabled=False)

    # ----- the objective ----------------------------------------------------------------------------------------
    def __call__(self, actions: Tensor) -> Tensor:
        """Score ``actions [B, N, H, A]``; returns ``[B, N]``."""
        batch, obs_dim = self.obs.shape
        if actions.ndim != 4 or actions.shape[0] != batch:
            raise ValueError(f"actions must have shape [B, N, H, A] with B={batch}, got {list(actions.shape)}")
        # One autocast region per call (not per model call): autocast's weight-cast cache then lasts all H steps.
        with self._reduced():
            if self.propagation == "expectation":
                return self._expectation(actions)
            if self.penalty > 0:
                return self._all_members(actions)
            if self.propagation == "tsinf":
                return self._tsinf(actions)
            return self._ts1(actions)

    # ----- pieces -----------------------------------------------------------------------------------------------
    def _next(self, prediction_mean: Tensor, prediction_var: Tensor) -> Tensor:
        if not self.sample:
            return prediction_mean
        # clamp: a model may round a zero variance to a tiny negative; sqrt of that would be NaN. In place on fresh
        # tensors (noise · std + mean, the same value as mean + std · noise): fewer passes over [E, B, N, P/E, O].
        std = prediction_var.clamp_min(0).sqrt_()
        return gaussian(prediction_mean.shape, self.generator, prediction_mean).mul_(std).add_(prediction_mean)

    def _reward(self, obs: Tensor, action: Tensor, next_obs: Tensor, learned: Tensor | None) -> Tensor:
        if self.reward_fn is not None:
            with self._exact():
                return self.reward_fn(obs, action, next_obs)
        if learned is None:
            raise ValueError("no reward: pass reward_fn, or use a model that predicts rewards (Prediction.reward)")
        return learned

    def _accumulate(
        self, total: Tensor, alive: Tensor | None, step: int, reward: Tensor, obs: Tensor, action: Tensor, nxt: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        weight = self.discount**step
        # In place: `total` is the objective's own buffer (one pass, no allocation per step).
        if alive is None:
            total.add_(reward, alpha=weight)
        else:
            # where, not multiply: a diverged row's NaN reward after termination must not leak into the return.
            total.add_(torch.where(alive, reward, 0.0), alpha=weight)
        if self.termination_fn is not None:
            with self._exact():
                done = self.termination_fn(obs, action, nxt)
            alive = ~done if alive is None else alive & ~done
        return total, alive

    def _add_terminal(self, total: Tensor, alive: Tensor | None, state: Tensor, horizon: int) -> Tensor:
        """``total [*S]`` plus ``discount ** H ·`` the terminal value of the last states ``[*S, O]`` still alive."""
        if self.terminal_value is None:
            return total
        with self._exact():
            value = self.terminal_value(state)
        if alive is not None:
            value = torch.where(alive, value, 0.0)
        return total.add_(value, alpha=self.discount**horizon)

    @staticmethod
    def _disagreement(means: Tensor) -> Tensor:
        """``[E, *S, O]`` member means -> ``[*S]`` mean over O of the variance across members."""
        return means.var(dim=0, correction=0).mean(dim=-1)

    def _call(self, obs: Tensor, action: Tensor) -> Prediction:
        prediction = self.dynamics(obs, action, **self._model_kwargs)
        if prediction.mean.shape != obs.shape:
            raise ValueError(
                f"dynamics returned mean of shape {list(prediction.mean.shape)} for obs of shape {list(obs.shape)}"
            )
        if self.precision != "fp32":  # states and returns stay in the start observation's dtype
            dtype = self.obs.dtype
            prediction = Prediction(
                prediction.mean.to(dtype),
                prediction.var.to(dtype),
                None if prediction.reward is None else prediction.reward.to(dtype),
            )
        return prediction

    # ----- propagation modes ------------------------------------------------------------------------------------
    def _expectation(self, actions: Tensor) -> Tensor:
        batch, n, horizon, _ = actions.shape
        members = self.members
        state = self.obs[:, None, :].expand(batch, n, self.obs.shape[1])  # [B, N, O]
        total = torch.zeros(batch, n, device=actions.device, dtype=actions.dtype)
        alive = None
        for t in range(horizon):
            action = actions[:, :, t]
            pred = self._call(state.expand(members, *state.shape), action.expand(members, *action.shape))
            nxt = pred.mean.mean(dim=0)
            learned = None if pred.reward is None else pred.reward.mean(dim=0)
            reward = self._reward(state, action, nxt, learned)
            if self.penalty > 0:
                reward = reward - self.penalty * self._disagreement(pred.mean)
            total, alive = self._accumulate(total, alive, t, reward, state, action, nxt)
            state = nxt
        return self._add_terminal(total, alive, state, horizon)

    def _tsinf(self, actions: Tensor) -> Tensor:
        batch, n, horizon, action_dim = actions.shape
        members, share = self.members, self.particles // self.members
        obs_dim = self.obs.shape[1]
        # [E, B, N, P/E, O]: member e owns particles e·P/E ... (e+1)·P/E - 1 of every candidate.
        state = self.obs[None, :, None, None, :].expand(members, batch, n, share, obs_dim)
        total = torch.zeros(members, batch, n, share, device=actions.device, dtype=actions.dtype)
        alive = None
        for t in range(horizon):
            action = actions[None, :, :, None, t].expand(members, batch, n, share, action_dim)
            pred = self._call(state, action)
            nxt = self._next(pred.mean, pred.var)
            reward = self._reward(state, action, nxt, pred.reward)
            total, alive = self._accumulate(total, alive, t, reward, state, action, nxt)
            state = nxt
        return self._add_terminal(total, alive, state, horizon).mean(dim=(0, 3))

    def _ts1(self, actions: Tensor) -> Tensor:
        batch, n, horizon, action_dim = actions.shape
        members, particles = self.members, self.particles
        obs_dim = self.obs.shape[1]
        rows = n * particles  # row = candidate·P + particle
        share = -(-rows // members)  # S slots per member; rows past R (padding) repeat real rows
        # Slot (e, b, k) holds row ((e - turned[t, b, k]) mod E)·S + k at step t: turned = the group's turns so far.
        turns = integers(members, (horizon, batch, share), self.generator, actions)  # [H, B, S]
        turned = turns.cumsum(0).remainder_(members)
        member = torch.arange(members, device=actions.device)[None, :, None, None]  # [1, E, 1, 1]
        held = (member - turned[:, None]).remainder_(members) * share + torch.arange(share, device=actions.device)
        candidate = held.remainder(rows) if share * members > rows else held  # a padding slot repeats a real row
        if particles > 1:
            candidate = candidate.div(particles, rounding_mode="floor")
        # Every step's actions in slot order, in one gather per call: [H, E, B, S, A].
        index = candidate.permute(0, 2, 1, 3).reshape(horizon, batch, members * share, 1)
        placed = torch.take_along_dim(actions.permute(2, 0, 1, 3), index, dim=2)
        placed = placed.view(horizon, batch, members, share, action_dim).transpose(1, 2).contiguous()
        # Step t moves slot ((e - turns[t]) mod E, b, k)'s particle to slot (e, b, k): as flat slot indices [H, E·B·S],
        # so that a step's move is one index_select of whole state rows.
        slots = batch * share
        sources = (member - turns[:, None]).remainder_(members).mul_(slots)
        sources = sources.add_(torch.arange(slots, device=actions.device).view(1, 1, batch, share)).view(horizon, -1)
        state = self.obs[None, :, None, :].expand(members, batch, share, obs_dim)
        total = torch.zeros(members, batch, share, device=actions.device, dtype=actions.dtype)
        alive = None
        for t in range(horizon):
            if t:
                source = sources[t]
                state = state.reshape(-1, obs_dim).index_select(0, source).view(members, batch, share, obs_dim)
                total = total.view(-1).index_select(0, source).view(members, batch, share)
                alive = None if alive is None else alive.view(-1).index_select(0, source).view(members, batch, share)
            action = placed[t]
            pred = self._call(state, action)
            nxt = self._next(pred.mean, pred.var)
            reward = self._reward(state, action, nxt, pred.reward)
            total, alive = self._accumulate(total, alive, t, reward, state, action, nxt)
            state = nxt
        total = self._add_terminal(total, alive, state, horizon)
        # Back to row order (each row is held by exactly one slot), padding dropped.
        by_row = total.new_empty(batch, members * share)
        by_row.scatter_(1, held[-1].transpose(0, 1).reshape(batch, -1), total.transpose(0, 1).reshape(batch, -1))
        return by_row[:, :rows].reshape(batch, n, particles).mean(dim=2)

    def _all_members(self, actions: Tensor) -> Tensor:
        """ts1/tsinf with a disagreement penalty: every member predicts every row, each particle keeps its own."""
        batch, n, horizon, action_dim = actions.shape
        members, particles = self.members, self.particles
        obs_dim = self.obs.shape[1]
        rows = n * particles
        state = self.obs[:, None, :].expand(batch, rows, obs_dim)
        # tsinf: particle p of every candidate belongs to member p // (P/E), as in the sharded layout.
        fixed = (torch.arange(particles, device=actions.device) // (particles // members)).repeat(n).expand(batch, rows)
        total = torch.zeros(batch, rows, device=actions.device, dtype=actions.dtype)
        alive = None
        for t in range(horizon):
            action = actions[:, :, None, t].expand(batch, n, particles, action_dim).reshape(batch, rows, action_dim)
            pred = self._call(state.expand(members, *state.shape), action.expand(members, *action.shape))
            if self.propagation == "tsinf":
                member = fixed
            else:
                member = (uniform((batch, rows), self.generator, actions) * members).long().clamp_max(members - 1)

            def own(y: Tensor, member=member) -> Tensor:
                index = member.reshape(1, batch, rows, *([1] * (y.ndim - 3)))
                return torch.take_along_dim(y, index, dim=0)[0]

            nxt = self._next(own(pred.mean), own(pred.var))
            learned = None if pred.reward is None else own(pred.reward)
            reward = self._reward(state, action, nxt, learned) - self.penalty * self._disagreement(pred.mean)
            total, alive = self._accumulate(total, alive, t, reward, state, action, nxt)
            state = nxt
        return self._add_terminal(total, alive, state, horizon).reshape(batch, n, particles).mean(dim=2)

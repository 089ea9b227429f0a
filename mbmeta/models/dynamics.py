"""The meta-learned dynamics model: normaliser + adapter + ensemble dynamics (and reward) nets, and its losses.

The networks work in normalised units: inputs are standardised observations and actions (plus the adapter's
``z``), the dynamics output is the standardised state change ``Δ = next_obs - obs``. :class:`AdaptedModel` hides all of
this from callers: raw observations in, raw next-observation means and variances out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from mbmeta.models.adapters import ADAPTATION_NAMES, Adaptation, NormalisedSegment, build_adapter
from mbmeta.models.ensemble import EnsembleMLP
from mbmeta.models.ensemble_weights import FrozenWeights, LayerTrace, Weight
from mbmeta.models.gaussian import FoldedVariance, GaussianHead, gaussian_nll
from mbmeta.models.known_physics import build_known_physics
from mbmeta.models.latent_range import LatentRange
from mbmeta.models.layer_weights import NetWeights
from mbmeta.models.normaliser import Normaliser
from mbmeta.models.reward import RewardNet
from mbmeta.types import MetaBatch, Prediction, Transition

FinetuneMode = Literal["all", "frozen_encoder", "last_layer"]
FINETUNE_MODES: tuple[str, ...] = ("all", "frozen_encoder", "last_layer")


class PlanningWeights(NamedTuple):
    """An :class:`AdaptedModel`'s networks frozen for planning, with the normaliser folded into them.

    Attributes:
        dynamics: the dynamics net's weights: it maps raw ``(obs, action)`` rows to the raw state change (mean
            columns) and, when probabilistic, ``max_logvar - raw log-variance`` (the head's input, flipped).
        head: the Gaussian head folded to give raw variances from the flipped columns, or None (deterministic).
        reward: the reward net's weights: raw ``(obs, action, Δ)`` rows to the raw reward; None without one (or
            before it is asked for).
    """

    dynamics: FrozenWeights
    head: FoldedVariance | None
    reward: FrozenWeights | None


class AdaptedModel:
    """A :class:`MetaDynamicsModel` adapted to B environments (implements ``mbmeta.types.AdaptedDynamics``).

    Each call is one batched pass of the dynamics ensemble (plus one of the reward ensemble when asked for) and the
    few passes that turn its output into a prediction. The normaliser, the adapter's conditioning and its weights are
    folded into the networks once (:meth:`planning_weights`, at the first call; see
    :meth:`~mbmeta.models.ensemble.EnsembleMLP.freeze`), so a call takes raw observations and actions to raw
    next-observation means and variances without normalising or denormalising anything. The result equals
    normalise → :meth:`MetaDynamicsModel.predict_normalised` → denormalise up to float rounding (tested). Call it
    under ``torch.no_grad()`` when planning (then the networks run their no-grad path; with gradients enabled the
    folded weights stay in the autograd graph and the autograd-safe path runs).

    Attributes:
        ensemble_size: E.
        batch_size: B, the number of environments adapted to.
        adaptation: the underlying :class:`~mbmeta.models.adapters.Adaptation`, with any low-rank weight update
            built into full per-environment weights (:meth:`Adaptation.materialise`: done once here, since a planner
            then evaluates thousands of rows per environment through them).
    """

    can_skip_reward = True  # declared capability of mbmeta.types.AdaptedDynamics: __call__ takes with_reward

    def __init__(
        self, model: MetaDynamicsModel, adaptation: Adaptation, batch_size: int, physics_state: Tensor | None = None
    ) -> None:
        self.model, self.adaptation, self.batch_size = model, adaptation.materialise(), batch_size
        self.physics_state = physics_state  # [B, P] of an adapting known physics, else None
        self.ensemble_size = model.ensemble_size
        self._planning: PlanningWeights | None = None

    def planning_weights(self, with_reward: bool = True) -> PlanningWeights:
        """The networks frozen for this adaptation with the normaliser folded in (each built once, without gradients).

        Args:
            with_reward: also the reward net (else ``reward`` is None, and it is not built until asked for: a planner
                scoring with an exact reward never pays for it).

        With gradients enabled they are built afresh at each call (and kept out of the cache), so that a caller who
        differentiates through the prediction gets gradients to the model's parameters.
        """
        keep = not torch.is_grad_enabled()
        dynamics = self._planning if keep else None
        if dynamics is not None and (not with_reward or dynamics.reward is not None or self.model.reward_net is None):
            return dynamics
        m, n = self.model, self.model.normaliser
        params, z = self.adaptation.params, self.adaptation.z
        # Normalised input = raw * (1 / std) - mean / std, feature by feature: folded into the first layers.
        obs_scale, action_scale = n.obs_std.reciprocal(), n.action_std.reciprocal()
        in_scale = torch.cat([obs_scale, action_scale])
        in_shift = torch.cat([-n.obs_mean * obs_scale, -n.action_mean * action_scale])
        if dynamics is None:
            if m.head is None:
                out_scale, out_shift = n.delta_std, n.delta_mean
            else:  # mean columns denormalised; log-variance columns flipped to max_logvar - raw (FoldedVariance)
                out_scale = torch.cat([n.delta_std, -torch.ones_like(n.delta_std)])
                out_shift = torch.cat([n.delta_mean, m.head.max_logvar])
            frozen = m.dynamics_net.freeze(
                None if params is None else params["dynamics"],
                z,
                input_scale=in_scale,
                input_shift=in_shift,
                output_scale=out_scale,
                output_shift=out_shift,
            )
            dynamics = PlanningWeights(frozen, None if m.head is None else m.head.folded(n.delta_std), None)
            if keep:
                self._planning = dynamics
        if not with_reward or m.reward_net is None or dynamics.reward is not None:
            return dynamics
        delta_scale = n.delta_std.reciprocal()
        reward = m.reward_net.freeze(
            None if params is None else params["reward"],
            z,
            input_scale=torch.cat([in_scale, delta_scale]),
            input_shift=torch.cat([in_shift, -n.delta_mean * delta_scale]),
            output_scale=n.reward_std.reshape(1),
            output_shift=n.reward_mean.reshape(1),
        )
        planning = dynamics._replace(reward=reward)
        if keep:
            self._planning = planning
        return planning

    def __call__(self, obs: Tensor, action: Tensor, with_reward: bool = True) -> Prediction:
        """Predict one step for every member.

        Args:
            obs: ``[E, B, *S, O]`` raw observations; row ``[e, b, ...]`` is predicted by member ``e`` under
                environment ``b``'s adaptation (pass ``obs.expand(E, ...)`` to ask all members the same rows: they
                are then read once, not copied per member).
            action: ``[E, B, *S, A]`` raw actions.
            with_reward: False skips the learned reward net (``reward`` is then None; mean and var are unchanged):
                a planner that scores with an exact reward function need not pay for it.

        Returns:
            Prediction with ``mean [E, B, *S, O]`` (raw next observation), ``var [E, B, *S, O]`` (raw units; an
            expanded zero view for a deterministic model) and ``reward [E, B, *S]`` or None.
        """
        m = self.model
        prediction = self._network(obs, action, with_reward)
        if m.physics is None:
            return prediction
        # the entries the model is told: computed, with no predictive variance
        if getattr(m.physics, "uses_action", False):  # a declared capability of mbmeta.types.KnownPhysics
            mean = m.physics.complete(obs, prediction.mean, self.physics_state, action=action)
        else:
            mean = m.physics.complete(obs, prediction.mean, self.physics_state)
        return prediction._replace(mean=mean, var=prediction.var.index_fill(-1, m.physics_index, 0.0))

    def _network(self, obs: Tensor, action: Tensor, with_reward: bool) -> Prediction:
        """:meth:`__call__`'s prediction by the networks alone, before any known physics completes it."""
        m = self.model
        e, b, o, a = self.ensemble_size, self.batch_size, m.obs_dim, m.action_dim
        if obs.dim() < 3 or obs.shape[0] != e or obs.shape[1] != b or obs.shape[-1] != o:
            raise ValueError(f"AdaptedModel: obs must be [E={e}, B={b}, *S, O={o}], got {tuple(obs.shape)}")
        if action.shape[:-1] != obs.shape[:-1] or action.shape[-1] != a:
            raise ValueError(
                f"AdaptedModel: action must be {tuple(obs.shape[:-1]) + (a,)} to match obs, got {tuple(action.shape)}"
            )
        planning = self.planning_weights(with_reward)
        lead = obs.shape[:-1]
        x = _rows(obs, action).reshape(e, b, -1, o + a)
        out = m.dynamics_net.grouped_forward(x, planning.dynamics)  # [E, B, R, O (+ O)]
        delta = out[..., :o]
        mean = obs + delta.reshape(lead + (o,))
        if planning.head is None:
            var = mean.new_zeros(()).expand_as(mean)
        else:
            var = planning.head.variance(out[..., o:]).view(lead + (o,))
        reward = None
        if with_reward and planning.reward is not None:
            reward = m.reward_net.predict(x, delta, planning.reward).reshape(lead)
        return Prediction(mean=mean, var=var, reward=reward)

    def network_mean(self, obs: Tensor, action: Tensor) -> Tensor:
        """The members' mean next observation ``[B, *S, O]`` for ``obs [B, *S, O]``, ``action [B, *S, A]``.

        By the networks alone, with the model's adaptation, before any known physics completes it: what
        ``adapts_with_prediction`` physics fit against.
        """
        e = self.ensemble_size
        with torch.no_grad():
            return self._network(obs.expand(e, *obs.shape), action.expand(e, *action.shape), False).mean.mean(0)


def _rows(obs: Tensor, action: Tensor) -> Tensor:
    """``[E, B, *S, O + A]`` network input rows; joined once when both are expanded over the members (stride 0)."""
    if obs.shape[0] > 1 and obs.stride(0) == 0 and action.stride(0) == 0:
        return torch.cat([obs[0], action[0]], dim=-1).expand(obs.shape[0], *obs.shape[1:-1], -1)
    return torch.cat([obs, action], dim=-1)


class MetaDynamicsModel(nn.Module):
    """Meta-learned probabilistic-ensemble dynamics, adapted by one of five methods (implements ``MetaDynamics``).

    Its adapter sees it through :class:`~mbmeta.models.adapters.base.AdaptableModel` (:meth:`normalise_task`,
    :meth:`adaptable_params`, :meth:`inner_loss`), which this class implements.

    Training (:meth:`loss`): adapt on the K context transitions, then predict each of the M targets one step ahead
    from the true target observation (teacher forcing); Gaussian NLL (or MSE if not ``probabilistic``) on the
    normalised state change, summed over members, plus the reward MSE and, optionally, CaDM's backward-dynamics loss.

    Args:
        obs_dim: O.
        action_dim: A.
        task_dim: T (needed by ``oracle``; also sizes the normaliser's task statistics).
        adaptation: method name: ``none`` (PETS), ``context`` (CaDM), ``gradient`` (GrBAL), ``recurrent``
            (ReBAL), ``oracle`` (true task parameters).
        ensemble_size: E.
        hidden_sizes: dynamics MLP widths (PETS/CaDM: 4×200).
        activation: activation name (``silu`` = swish).
        probabilistic: Gaussian outputs with NLL loss; otherwise deterministic with MSE (variance 0).
        learn_reward: also learn ``r(s, a, s', z)`` (see :mod:`mbmeta.models.reward`).
        reward_hidden: reward MLP widths.
        latent_dim: Z for ``context`` / ``recurrent`` (CaDM: 10).
        context_hidden: context-encoder widths (CaDM: 256-128-64).
        context_per_member: ``context`` with one encoder per ensemble member (``z`` ``[E, B, Z]``) instead of one
            shared encoder (CaDM): the members then also disagree about the task where their encoders do.
        backward_loss_weight: weight of the backward-dynamics loss (predict ``s`` from ``s', a, z``; CaDM: 0.5;
            0 disables it and builds no backward net). Not available with ``gradient``.
        inner_steps: SGD steps of ``gradient``.
        adapt_last_layers: ``gradient`` adapts only the last this-many layers of each net (ANIL-style; much cheaper
            to train, since per-environment copies ``[E, B, ...]`` are made of those layers only); 0 adapts all.
        inner_lr: SGD step size of ``gradient``.
        learn_inner_lr: learn the step size of ``gradient``.
        first_order: first-order MAML for ``gradient``.
        inner_grad_clip: per-environment, per-member L2 bound on ``gradient``'s inner gradient (None: unclipped;
            see :class:`~mbmeta.models.adapters.GradientAdapter`).
        gru_hidden: GRU size of ``recurrent``.
        max_logvar: initial upper log-variance bound.
        min_logvar: initial lower log-variance bound.
        logvar_bound_weight: weight of the penalty on ``sum(max_logvar) - sum(min_logvar)`` (PETS: 0.01).
        reward_loss_weight: weight of the reward MSE.
        known_physics: import path ``"package.module:Class"`` of physics the model is told
            (:class:`~mbmeta.types.KnownPhysics`, built by :func:`~mbmeta.models.known_physics.build_known_physics`):
            :class:`AdaptedModel` replaces the network's prediction of its ``computed`` entries by its ``complete``
            (variance 0 there), and :meth:`loss` adds its ``loss`` on the targets (fitting its parameters). The
            network is trained on every entry as without it; its validation errors (``mse_h*``) are its own. None:
            no physics.
        physics_loss_weight: weight of the known physics' loss.
        seed: seed of the generator that initialises every weight (same arguments, same initial model).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        task_dim: int = 0,
        adaptation: str = "context",
        ensemble_size: int = 5,
        hidden_sizes: Sequence[int] = (200, 200, 200, 200),
        activation: str = "silu",
        probabilistic: bool = True,
        learn_reward: bool = True,
        reward_hidden: Sequence[int] = (200, 200),
        latent_dim: int = 10,
        context_hidden: Sequence[int] = (256, 128, 64),
        context_per_member: bool = False,
        backward_loss_weight: float = 0.0,
        inner_steps: int = 1,
        adapt_last_layers: int = 0,
        inner_lr: float = 0.01,
        learn_inner_lr: bool = False,
        first_order: bool = False,
        inner_grad_clip: float | None = None,
        gru_hidden: int = 128,
        max_logvar: float = 0.5,
        min_logvar: float = -10.0,
        logvar_bound_weight: float = 0.01,
        reward_loss_weight: float = 1.0,
        known_physics: str | None = None,
        physics_loss_weight: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1 or task_dim < 0 or ensemble_size < 1:
            raise ValueError(
                f"MetaDynamicsModel needs obs_dim, action_dim, ensemble_size >= 1 and task_dim >= 0; got "
                f"obs_dim={obs_dim}, action_dim={action_dim}, task_dim={task_dim}, ensemble_size={ensemble_size}"
            )
        if adaptation not in ADAPTATION_NAMES:
            raise ValueError(f"adaptation must be one of {list(ADAPTATION_NAMES)}, got {adaptation!r}")
        if backward_loss_weight < 0:
            raise ValueError(f"backward_loss_weight must be >= 0, got {backward_loss_weight}")
        if adapt_last_layers < 0:
            raise ValueError(f"adapt_last_layers must be >= 0 (0 = all layers), got {adapt_last_layers}")
        if context_per_member and adaptation != "context":
            raise ValueError(f"context_per_member applies to adaptation='context' only, got adaptation={adaptation!r}")
        if backward_loss_weight > 0 and adaptation == "gradient":
            raise ValueError("backward_loss_weight > 0 is not supported with adaptation='gradient'")
        self.obs_dim, self.action_dim, self.task_dim = obs_dim, action_dim, task_dim
        self.adaptation_name, self.ensemble_size, self.probabilistic = adaptation, ensemble_size, probabilistic
        self.backward_loss_weight, self.logvar_bound_weight = backward_loss_weight, logvar_bound_weight
        self.reward_loss_weight, self.adapt_last_layers = reward_loss_weight, adapt_last_layers
        generator = torch.Generator().manual_seed(seed)

        self.normaliser = Normaliser(obs_dim, action_dim, task_dim)
        self.adapter = build_adapter(
            adaptation,
            obs_dim,
            action_dim,
            task_dim=task_dim,
            latent_dim=latent_dim,
            context_hidden=context_hidden,
            gru_hidden=gru_hidden,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            learn_inner_lr=learn_inner_lr,
            first_order=first_order,
            inner_grad_clip=inner_grad_clip,
            activation=activation,
            generator=generator,
            ensemble_size=ensemble_size,
            context_per_member=context_per_member,
        )
        z = self.adapter.latent_dim
        out = 2 * obs_dim if probabilistic else obs_dim
        in_features = obs_dim + action_dim + z
        self.dynamics_net = EnsembleMLP(in_features, out, hidden_sizes, ensemble_size, activation, generator)
        self.head = GaussianHead(obs_dim, max_logvar, min_logvar) if probabilistic else None
        self.reward_net = (
            RewardNet(obs_dim, action_dim, z, reward_hidden, ensemble_size, activation, generator)
            if learn_reward
            else None
        )
        if backward_loss_weight > 0:
            self.backward_net = EnsembleMLP(
                obs_dim + action_dim + z, out, hidden_sizes, ensemble_size, activation, generator
            )
            self.backward_head = GaussianHead(obs_dim, max_logvar, min_logvar) if probabilistic else None
        else:
            self.backward_net, self.backward_head = None, None
        self.adapter.bind(self.adaptable_params())
        if not physics_loss_weight >= 0:
            raise ValueError(f"physics_loss_weight must be >= 0, got {physics_loss_weight!r}")
        self.physics_loss_weight = float(physics_loss_weight)
        self.physics = None if known_physics is None else build_known_physics(known_physics, obs_dim)
        computed = () if self.physics is None else tuple(self.physics.computed)
        self.register_buffer("physics_index", torch.tensor(computed, dtype=torch.long), persistent=False)

    # ------------------------------------------------------------------ adaptation

    def normalise_segment(self, transitions: Transition) -> NormalisedSegment:
        """Validate ``[B, K, ...]`` transitions and convert them to normalised units."""
        obs, action, next_obs, reward = transitions.obs, transitions.action, transitions.next_obs, transitions.reward
        b, k = obs.shape[:2] if obs.dim() == 3 else (None, None)
        expected = {
            "obs": (obs, (b, k, self.obs_dim)),
            "action": (action, (b, k, self.action_dim)),
            "next_obs": (next_obs, (b, k, self.obs_dim)),
            "reward": (reward, (b, k)),
        }
        for name, (value, shape) in expected.items():
            if b is None or tuple(value.shape) != shape:
                raise ValueError(
                    f"transitions must be obs/next_obs [B, K, O={self.obs_dim}], action [B, K, A={self.action_dim}], "
                    f"reward [B, K]; got obs {tuple(obs.shape)}, {name} {tuple(value.shape)}"
                )
        n = self.normaliser
        return NormalisedSegment(
            obs=n.normalise_obs(obs),
            action=n.normalise_action(action),
            delta=n.normalise_delta(next_obs - obs),
            reward=n.normalise_reward(reward),
        )

    def adapt_normalised(self, context: NormalisedSegment, mask: Tensor | None, task: Tensor | None) -> Adaptation:
        """Run the adapter on an already normalised context (fields ``[B, K, ...]``)."""
        b, k = context.obs.shape[:2]
        if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (b, k)):
            raise ValueError(f"mask must be a bool tensor [B={b}, K={k}], got {mask.dtype} {tuple(mask.shape)}")
        if mask is not None:
            # Zero the padded slots: whatever they hold (stale values, NaN) can then never reach an adapter's
            # output or, through 0 * NaN, the gradient adapter's inner gradients.
            context = NormalisedSegment(
                *(torch.where(mask.view(b, k, *([1] * (f.dim() - 2))), f, torch.zeros_like(f)) for f in context)
            )
        return self.adapter(self, context, mask, task)

    def adapt(
        self,
        context: Transition,
        mask: Tensor | None = None,
        task: Tensor | None = None,
        latent_range: LatentRange | None = None,
    ) -> AdaptedModel:
        """Adapt to B environments' recent transitions.

        Args:
            context: fields ``[B, K, ...]``, oldest first (K may be 0).
            mask: ``[B, K]`` bool, True where a slot holds a real transition; None means all valid. Environments
                with no valid slot fall back to the adapter's default (``z = 0`` for ``context``, the learned
                initial-state output for ``recurrent``, the unadapted weights for ``gradient``).
            task: ``[B, T]`` true task parameters; required by ``oracle``, ignored otherwise.
            latent_range: clamp the task code ``z`` into this per-dimension range (see
                :mod:`mbmeta.models.latent_range`); only for adaptations with a code (Z > 0).

        Returns:
            The adapted model for the B environments.
        """
        adaptation = self.adapt_normalised(self.normalise_segment(context), mask, task)
        if latent_range is not None:
            if adaptation.z is None:
                raise ValueError(f"adaptation {self.adaptation_name!r} has no task code z to clamp (Z = 0)")
            adaptation = adaptation._replace(z=latent_range.clamp(adaptation.z))
        adapted = AdaptedModel(self, adaptation, context.obs.shape[0])
        if getattr(self.physics, "adapts", False):  # declared capabilities of mbmeta.types.KnownPhysics
            if getattr(self.physics, "adapts_with_prediction", False):
                adapted.physics_state = self.physics.adapt(context, mask, predict=adapted.network_mean)
            else:
                adapted.physics_state = self.physics.adapt(context, mask)
        return adapted

    # ------------------------------------------------------------------ functional forward

    def normalise_task(self, task: Tensor) -> Tensor:
        """True task parameters ``[B, T]`` in normalised units ``[B, T]`` (what the oracle conditions on)."""
        return self.normaliser.normalise_task(task)

    def adaptable_params(self) -> dict[str, NetWeights[Tensor]]:
        """The weights the gradient adapter adapts, per network: ``{"dynamics": ..., "reward": ...}``.

        All layers, or the last ``adapt_last_layers`` of each net, with their shared ``[E, ...]`` tensors.
        """
        nets = {"dynamics": self.dynamics_net}
        if self.reward_net is not None:
            nets["reward"] = self.reward_net
        if not self.adapt_last_layers:
            return {key: net.params() for key, net in nets.items()}
        return {key: net.params().last(self.adapt_last_layers) for key, net in nets.items()}

    def predict_normalised(
        self,
        obs_action: Tensor,
        adaptation: Adaptation,
        delta_for_reward: Tensor | None = None,
        params: Mapping[str, Mapping[str, Weight]] | None = None,
        with_reward: bool = True,
        traces: Mapping[str, LayerTrace] | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """One batched pass in normalised units.

        Args:
            obs_action: ``[E, B, R, O + A]`` normalised observations and actions.
            adaptation: from :meth:`adapt_normalised`.
            delta_for_reward: ``[E, B, R, O]`` normalised state change fed to the reward net (training: the true
                one); None uses the predicted mean.
            params: weights overriding ``adaptation.params`` (the gradient adapter's inner loop): per network, a
                :class:`~mbmeta.models.layer_weights.NetWeights` or a mapping by parameter name.
            with_reward: skip the reward net when False.
            traces: ``{"dynamics": LayerTrace, "reward": LayerTrace}`` (either optional) to record the layers the
                gradient adapter steps (see :class:`~mbmeta.models.ensemble_weights.LayerTrace`).

        Returns:
            ``(delta_mean [E, B, R, O], logvar [E, B, R, O] or None, reward [E, B, R] or None)``.
        """
        params = adaptation.params if params is None else params
        traces = traces or {}
        z = adaptation.z
        out = self.dynamics_net.grouped_forward(
            obs_action, None if params is None else params["dynamics"], z, traces.get("dynamics")
        )
        o = self.obs_dim
        mean = out[..., :o]
        logvar = self.head(out[..., o:]) if self.head is not None else None
        reward = None
        if with_reward and self.reward_net is not None:
            delta = mean if delta_for_reward is None else delta_for_reward
            reward = self.reward_net.predict(
                obs_action, delta, None if params is None else params["reward"], z, traces.get("reward")
            )
        return mean, logvar, reward

    def inner_loss(
        self,
        params: Mapping[str, Mapping[str, Weight]] | None,
        context: NormalisedSegment,
        mask: Tensor,
        traces: Mapping[str, LayerTrace] | None = None,
    ) -> Tensor:
        """The gradient adapter's context loss: the sum over the B environments of each one's own loss.

        An environment's loss is the mean-squared error (normalised units) of the predicted state-change mean and
        of the reward over its valid slots, summed over members (so each member's gradient is its own loss's). MSE
        rather than NLL because the NLL's ``1/var`` weighting would make the effective inner step size swing with
        the predicted variance. Environment b's rows only reach its own term, so the gradient of the sum with
        respect to b's rows (or b's own weights) is the gradient of b's loss.

        Args:
            params: weights of some layers per network (``{"dynamics": NetWeights, ...}``; shared ``[E, ...]``, per
                environment, or low-rank), or None for the model's own.
            context: fields ``[B, K, ...]``.
            mask: ``[B, K]`` bool.
            traces: passed to :meth:`predict_normalised`.

        Returns:
            ``[]`` the summed loss (an environment with no valid slot contributes 0).
        """
        e = self.ensemble_size
        x = torch.cat([context.obs, context.action], dim=-1).expand(e, -1, -1, -1)
        mean, _, reward = self.predict_normalised(
            x,
            Adaptation(None, None),
            delta_for_reward=context.delta.expand(e, -1, -1, -1),
            params=params,
            traces=traces,
        )
        per_slot = (mean - context.delta).square().mean(-1)  # [E, B, K]
        if reward is not None:
            per_slot = per_slot + self.reward_loss_weight * (reward - context.reward).square()
        weights = mask.to(per_slot.dtype)
        return ((per_slot * weights).sum((0, 2)) / weights.sum(-1).clamp(min=1.0)).sum()

    # ------------------------------------------------------------------ losses

    def loss(self, batch: MetaBatch, multi_step: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """Meta-training loss on a batch of segments.

        Args:
            batch: context ``[B, K, ...]`` (with ``context_mask [B, K]`` or None), target ``[B, M, ...]``, task
                ``[B, T]``.
            multi_step: also compute the open-loop errors ``mse_h1 .. mse_hM`` (no gradient; see
                :meth:`multi_step_error`).

        Returns:
            ``(total, terms)``: the scalar to minimise and detached scalars to log: ``dynamics_nll`` (or
            ``dynamics_mse`` alone when deterministic), ``dynamics_mse`` (normalised Δ, teacher forced),
            ``reward_mse``, ``backward``, ``logvar_bound``, ``physics`` (with known physics), ``loss``, and the
            ``mse_h*`` terms when asked.
        """
        context = self.normalise_segment(batch.context)
        target = self.normalise_segment(batch.target)
        adaptation = self.adapt_normalised(context, batch.context_mask, batch.task)
        e = self.ensemble_size
        x = torch.cat([target.obs, target.action], dim=-1).unsqueeze(0).expand(e, -1, -1, -1)
        mean, logvar, reward = self.predict_normalised(
            x, adaptation, delta_for_reward=target.delta.unsqueeze(0).expand(e, -1, -1, -1)
        )
        terms: dict[str, Tensor] = {}
        mse = (mean - target.delta).square()
        terms["dynamics_mse"] = mse.mean()
        if logvar is not None:
            nll = gaussian_nll(mean, logvar, target.delta).mean()
            bound = self.head.bound_penalty()
            terms["dynamics_nll"], terms["logvar_bound"] = nll, bound
            # Sum over members (the mean times E) so each member's gradient does not shrink with E (mbrl-lib style).
            total = e * nll + self.logvar_bound_weight * bound
        else:
            total = e * terms["dynamics_mse"]
        if reward is not None:
            terms["reward_mse"] = (reward - target.reward).square().mean()
            total = total + self.reward_loss_weight * e * terms["reward_mse"]
        if self.backward_net is not None:
            back = self._backward_loss(batch.target, target, adaptation)
            terms["backward"] = back
            total = total + self.backward_loss_weight * e * back
        if self.physics is not None:
            raw = batch.target
            if getattr(self.physics, "uses_action", False):
                terms["physics"] = self.physics.loss(raw.obs, raw.next_obs, action=raw.action)
            else:
                terms["physics"] = self.physics.loss(raw.obs, raw.next_obs)
            total = total + self.physics_loss_weight * terms["physics"]
        terms["loss"] = total
        terms = {k: v.detach() for k, v in terms.items()}
        if multi_step:
            errors = self.multi_step_error(batch, adaptation=adaptation.detach())
            terms.update({f"mse_h{h + 1}": err for h, err in enumerate(errors)})
        return total, terms

    def _backward_loss(self, raw: Transition, target: NormalisedSegment, adaptation: Adaptation) -> Tensor:
        """CaDM's backward dynamics: predict the normalised Δ from ``(s', a, z)`` (so ``s = s' - Δ``)."""
        e = self.ensemble_size
        next_obs = self.normaliser.normalise_obs(raw.next_obs)
        x = torch.cat([next_obs, target.action], dim=-1).unsqueeze(0).expand(e, -1, -1, -1)
        out = self.backward_net.grouped_forward(x, None, adaptation.z)
        mean = out[..., : self.obs_dim]
        if self.backward_head is None:
            return (mean - target.delta).square().mean()
        logvar = self.backward_head(out[..., self.obs_dim :])
        penalty = self.logvar_bound_weight * self.backward_head.bound_penalty() / e
        return gaussian_nll(mean, logvar, target.delta).mean() + penalty

    @torch.no_grad()
    def multi_step_error(
        self, batch: MetaBatch, adaptation: Adaptation | None = None, scale: Tensor | None = None
    ) -> Tensor:
        """Open-loop prediction error at horizons 1..M.

        Adapts on the context (unless ``adaptation`` is given), then rolls out from ``target.obs[:, 0]`` with the
        target actions, feeding back the ensemble-mean prediction (mean over members of the predicted means).

        Args:
            batch: context ``[B, K, ...]``, target ``[B, M, ...]``, task ``[B, T]``.
            adaptation: a precomputed adaptation for this batch's context.
            scale: ``[O]`` per-dimension units of the error; default: this model's normaliser ``obs_std``. Pass one
                shared scale (e.g. the std of the evaluation data) to compare models with different normalisers.

        Returns:
            ``[M]``: error at horizon h+1 = mean over B and O of ``((pred - next_obs[:, h]) / scale)^2``, i.e.
            squared error in normalised observation units (each dimension divided by its std).
        """
        if adaptation is None:
            adaptation = self.adapt_normalised(self.normalise_segment(batch.context), batch.context_mask, batch.task)
        n, e = self.normaliser, self.ensemble_size
        scale = n.obs_std if scale is None else scale
        target = batch.target
        obs = target.obs[:, 0]
        errors = []
        for h in range(target.obs.shape[1]):
            x = torch.cat([n.normalise_obs(obs), n.normalise_action(target.action[:, h])], dim=-1)
            delta, _, _ = self.predict_normalised(x.expand(e, -1, -1).unsqueeze(2), adaptation, with_reward=False)
            obs = obs + n.denormalise_delta(delta.mean(0).squeeze(1))
            errors.append(((obs - target.next_obs[:, h]) / scale).square().mean())
        if not errors:
            return target.obs.new_zeros(0)
        return torch.stack(errors)

    # ------------------------------------------------------------------ fine-tuning

    def configure_finetune(self, mode: FinetuneMode) -> None:
        """Choose which weights train when fine-tuning on a new task.

        Args:
            mode: ``all`` (everything), ``frozen_encoder`` (every adapter weight frozen — the context encoder,
                GRU, or learned inner step size — the rest trains), ``last_layer`` (only the output layers of the
                dynamics / reward / backward nets and the log-variance bounds train).

        Raises:
            ValueError: unknown mode.
        """
        if mode not in FINETUNE_MODES:
            raise ValueError(f"finetune mode must be one of {list(FINETUNE_MODES)}, got {mode!r}")
        for p in self.parameters():
            p.requires_grad_(mode != "last_layer")
        if mode == "frozen_encoder":
            for p in self.adapter.parameters():
                p.requires_grad_(False)
        elif mode == "last_layer":
            for net in (self.dynamics_net, self.reward_net, self.backward_net):
                if net is not None:
                    for p in net.layers[-1].parameters():
                        p.requires_grad_(True)
            for head in (self.head, self.backward_head):
                if head is not None:
                    for p in head.parameters():
                        p.requires_grad_(True)

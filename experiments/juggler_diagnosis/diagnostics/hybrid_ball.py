"""Step 10's hybrid model for diagnostics: a learned model's arm with the library's simulated ball.

:class:`HybridDynamics` wraps any adapted model of ``juggler_bounce_servo`` (e.g. pilot 3's, which was trained
without known physics) so that its ball comes from :class:`mbmeta.envs.juggler_contact.BallContact` with fitted
constants (``hybrid_fit.py --out``). A model trained with ``--model.known_physics`` does this itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from mbmeta.envs.juggler_contact import BallContact
from mbmeta.types import Prediction

CONSTANTS = ("stiffness", "damping", "friction_rate", "friction")


class HybridDynamics:
    """An :class:`~mbmeta.types.AdaptedDynamics`: the adapted model's joints, the ball and paddle from ``contact``.

    The computed entries get zero variance (as a model with known physics gives them).
    """

    can_skip_reward = True

    def __init__(self, adapted, contact: BallContact) -> None:
        self.adapted, self.contact = adapted, contact
        self.ensemble_size = adapted.ensemble_size

    @torch.no_grad()
    def __call__(self, obs: Tensor, action: Tensor, with_reward: bool = True) -> Prediction:
        """``obs [E, B, *S, 14]``, ``action [E, B, *S, 3]`` -> Prediction (mean/var ``[E, B, *S, 14]``, no reward)."""
        kwargs = {"with_reward": False} if getattr(self.adapted, "can_skip_reward", False) else {}
        arm = self.adapted(obs, action, **kwargs)
        mean = self.contact.complete(obs, arm.mean)
        var = arm.var.index_fill(-1, torch.tensor(self.contact.computed, device=obs.device), 0.0)
        return Prediction(mean, var, None)


def save_contact(contact: BallContact, path: str | Path) -> None:
    """Write the contact's four constants as JSON."""
    Path(path).write_text(json.dumps(contact.parameters_dict(), indent=1) + "\n")


def load_contact(path: str | Path) -> BallContact:
    """A :class:`BallContact` with the constants of :func:`save_contact`'s file."""
    values = json.loads(Path(path).read_text())
    return BallContact(**{name: values[name] for name in CONSTANTS})

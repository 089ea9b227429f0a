"""stable-baselines3's training figures (losses, entropy, rollout returns) into a W&B run (imports sb3: lazily)."""

from __future__ import annotations

from numbers import Real
from typing import Any

from stable_baselines3.common.logger import KVWriter

STEP_KEY = "env_steps"
"""The x axis of every figure a baseline logs (declared with ``run.define_metric``): training environment steps."""


class WandbOutput(KVWriter):
    """An sb3 logger output that logs each dump's numbers as ``sb3/<key>`` against :data:`STEP_KEY`.

    Args:
        run: an open ``wandb`` run.
    """

    def __init__(self, run: Any) -> None:
        self.run = run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        """Log the numeric values of one dump (``step``: the model's environment steps)."""
        numbers = {f"sb3/{k}": float(v) for k, v in key_values.items() if isinstance(v, Real)}
        if numbers:
            self.run.log({STEP_KEY: int(step), **numbers})

    def close(self) -> None:
        """Nothing to close: the run is finished by its owner."""

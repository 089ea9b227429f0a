"""A user's own policy for `mbmeta collect --policy collect_policies:push` (tests/ is on sys.path in the tests)."""

import numpy as np


def push(obs: np.ndarray) -> np.ndarray:
    """Full torque, one action per observation row: [B, O] -> [B, 1]."""
    return np.full((len(obs), 1), 2.0, dtype=np.float32)

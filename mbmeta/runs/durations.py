"""Wall times as the runner's progress lines and status print them."""

from __future__ import annotations


def precise_duration(seconds: float) -> str:
    """Minutes and seconds: ``45 s``, ``4 min 15 s``, ``98 min 3 s``."""
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def coarse_duration(seconds: float) -> str:
    """Minutes, or hours and minutes: ``7 min``, ``1 h 29 min``."""
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"

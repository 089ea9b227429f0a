"""Random samples drawn from an explicit ``torch.Generator``, on the device of a reference tensor.

The one sampling helper of the package: planners draw candidates with it and the rollout objective draws particles
and ensemble members with it, so results depend only on the generator's seed, wherever the generator lives.
"""

from __future__ import annotations

import torch
from torch import Tensor


def fresh_generator(device: torch.device) -> torch.Generator:
    """A generator seeded from OS entropy: used when the caller passes none (results are then not reproducible)."""
    generator = torch.Generator(device=device)
    generator.seed()
    return generator


def gaussian(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    """Standard normal samples of ``shape`` on ``like``'s device and dtype, drawn from ``generator``.

    A generator on another device than ``like`` (e.g. a CPU generator for CUDA planning) still works: samples are
    drawn where the generator lives and moved, so results depend only on the generator's seed.
    """
    if generator.device == like.device:
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    return torch.randn(shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def uniform(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    """Uniform ``[0, 1)`` samples of ``shape`` on ``like``'s device and dtype, drawn from ``generator``."""
    if generator.device == like.device:
        return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    return torch.rand(shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def integers(high: int, shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    """Uniform integers in ``[0, high)`` of ``shape`` (int64) on ``like``'s device, drawn from ``generator``."""
    if generator.device == like.device:
        return torch.randint(high, shape, generator=generator, device=like.device)
    return torch.randint(high, shape, generator=generator, device=generator.device).to(like.device)

"""Coloured (power-law) Gaussian noise along the planning horizon, for iCEM.

Noise with power spectral density ``∝ 1/f^beta`` along the time axis: ``beta = 0`` is white noise, ``beta = 2``
(brown/red) gives smooth, slowly varying action sequences that explore a swing-up far better than white noise.
Built in the frequency domain: independent Gaussian Fourier coefficients scaled by ``f^(-beta/2)``, then an inverse
real FFT. The result is normalised to unit variance at every time step (exactly, from the scales, not estimated).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mbmeta.planners.sampling import gaussian


def coloured_noise(
    leading: tuple[int, ...], horizon: int, action_dim: int, beta: float, generator: torch.Generator, like: Tensor
) -> Tensor:
    """Unit-variance power-law noise ``[*leading, H, A]``, correlated along H only.

    Args:
        leading: leading dims, e.g. ``(B, N)``.
        horizon: H, the length of each sequence.
        action_dim: A; each action dimension gets independent noise.
        beta: spectral exponent >= 0 (0 white, 1 pink, 2 brown).
        generator: source of randomness.
        like: a tensor whose device and dtype the noise takes.

    Returns:
        ``[*leading, H, A]`` samples with mean 0 and variance 1 at every step.
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    freqs = torch.fft.rfftfreq(horizon, device=like.device, dtype=like.dtype)  # [F], F = H // 2 + 1
    # The zero frequency would get infinite weight; give it the lowest non-zero frequency's (1/H), as is usual.
    freqs = freqs.clone()
    freqs[0] = 1.0 / horizon
    scale = freqs ** (-beta / 2)
    # Real-valued bins (zero frequency, and Nyquist for even H) carry no imaginary part; sqrt(2) on their real part
    # keeps their power equal to a complex bin's, so beta = 0 gives i.i.d. white noise.
    real_bin = torch.zeros_like(freqs, dtype=torch.bool)
    real_bin[0] = True
    if horizon % 2 == 0:
        real_bin[-1] = True
    real_scale = torch.where(real_bin, scale * 2**0.5, scale)
    imag_scale = torch.where(real_bin, torch.zeros_like(scale), scale)
    shape = (*leading, action_dim, freqs.numel())
    real = gaussian(shape, generator, like) * real_scale
    imag = gaussian(shape, generator, like) * imag_scale
    signal = torch.fft.irfft(torch.complex(real, imag), n=horizon, dim=-1)  # [*leading, A, H]
    # Per-step variance of the inverse transform: a real bin adds real_scale²/H², a complex bin (with its mirror
    # image) 4·s²/H²; the same at every step, so dividing by its square root gives unit variance everywhere.
    variance = ((real_scale**2 * real_bin).sum() + 4 * (scale**2 * ~real_bin).sum()) / horizon**2
    return (signal / variance.sqrt()).transpose(-1, -2)

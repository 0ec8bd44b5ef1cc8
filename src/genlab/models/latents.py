"""Gaussian latent codes: truncated and tempered prior draws, spherical interpolation."""

from __future__ import annotations

import torch

from genlab.checks.errors import ConfigError


def normal_latents(
    num_samples: int,
    dim: int,
    generator: torch.Generator | None = None,
    truncation: float | None = None,
    temperature: float | None = None,
) -> torch.Tensor:
    """z (num_samples, dim) ~ N(0, I) on the CPU; entries with |z| > ``truncation`` are
    redrawn until inside (the truncation trick), then z is scaled by ``temperature``."""
    z = torch.randn(num_samples, dim, generator=generator)
    if truncation is not None:
        if not isinstance(truncation, int | float) or truncation <= 0:
            raise ConfigError("truncation", truncation, "null or a number > 0")
        while (outside := z.abs() > truncation).any():
            z[outside] = torch.randn(int(outside.sum()), generator=generator)
    if temperature is not None:
        if not isinstance(temperature, int | float) or temperature <= 0:
            raise ConfigError("temperature", temperature, "a number > 0")
        z = z * temperature
    return z


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows a, b (R, D) at fractions t (S,) -> (R, S, D)."""
    a_n, b_n = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]
    t = t[None, :, None]
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a[:, None] + (torch.sin(t * omega) / so) * b[:, None]

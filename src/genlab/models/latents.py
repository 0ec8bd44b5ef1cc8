"""Latent codes: truncated and tempered prior draws (N(0, I) or uniform on [-1, 1]),
spherical interpolation."""

from __future__ import annotations

import torch

from genlab.checks.errors import ConfigError

LATENT_DISTRIBUTIONS = ("normal", "uniform")  # model.latent_distribution of the GAN family


def draw_latents(
    num_samples: int,
    dim: int,
    distribution: str = "normal",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Plain prior draws z (num_samples, dim) on the CPU: ``normal`` N(0, I) or ``uniform``
    on [-1, 1] (Radford et al.'s DCGAN), from ``generator`` (None: the global torch stream)."""
    if distribution == "normal":
        return torch.randn(num_samples, dim, generator=generator)
    if distribution == "uniform":
        return torch.rand(num_samples, dim, generator=generator) * 2 - 1
    raise ConfigError("model.latent_distribution", distribution, list(LATENT_DISTRIBUTIONS))


def normal_latents(
    num_samples: int,
    dim: int,
    generator: torch.Generator | None = None,
    truncation: float | None = None,
    temperature: float | None = None,
    distribution: str = "normal",
) -> torch.Tensor:
    """z (num_samples, dim) ~ N(0, I) (or ``distribution="uniform"``: U[-1, 1]) on the CPU;
    entries with |z| > ``truncation`` are redrawn from the same distribution until inside (the
    truncation trick), then z is scaled by ``temperature``. Untruncated and untempered, the
    draws are :func:`draw_latents`'s from the same generator."""
    z = draw_latents(num_samples, dim, distribution, generator)
    if truncation is not None:
        if not isinstance(truncation, int | float) or truncation <= 0:
            raise ConfigError("truncation", truncation, "null or a number > 0")
        while (outside := z.abs() > truncation).any():
            z[outside] = draw_latents(int(outside.sum()), 1, distribution, generator).view(-1)
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

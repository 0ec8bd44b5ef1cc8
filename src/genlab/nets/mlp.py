"""Fully connected generator and discriminator (any image size).

Generator: z (B, latent_dim) [+ labels] -> images (B, C, H, W) in [-1, 1];
discriminator: images (B, C, H, W) [+ labels] -> logits (B,).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genlab.checks.errors import ConfigError
from genlab.nets.dcgan import ProjectionDiscriminator

MLP_D_NORMS = ("batch", "layer", "none")


def _mlp_norm(kind: str, width: int) -> list[nn.Module]:
    """Normalisation after a hidden layer of the MLP discriminator (instance norm is conv-only)."""
    if kind == "none":
        return []
    return [nn.BatchNorm1d(width) if kind == "batch" else nn.LayerNorm(width)]


def mlp(dims: list[int], activation: type[nn.Module], wrap=lambda m: m) -> list[nn.Module]:
    """Linear layers between consecutive ``dims`` with ``activation`` after all but the last."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(wrap(nn.Linear(d_in, d_out)))
        if i < len(dims) - 2:
            layers.append(activation())
    return layers


class MLPGenerator(nn.Module):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, channels, image_size, image_size) in [-1, 1]."""

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        hidden_dims: tuple[int, ...] = (256, 512),
        num_classes: int | None = None,
    ):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_dim = latent_dim * (2 if num_classes else 1)
        self.net = nn.Sequential(*mlp([in_dim, *hidden_dims, math.prod(self.shape)], nn.ReLU))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return torch.tanh(self.net(z)).view(-1, *self.shape)


class MLPDiscriminator(ProjectionDiscriminator):
    """images (B, channels, image_size, image_size) [+ labels (B,)] -> logits (B,)."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        hidden_dims: tuple[int, ...] = (512, 256),
        spectral_norm: bool = False,
        num_classes: int | None = None,
        norm: str = "none",
    ):
        super().__init__()
        if norm not in MLP_D_NORMS:
            allowed = f"one of {list(MLP_D_NORMS)} for arch=mlp"
            raise ConfigError("model.discriminator.norm", norm, allowed)
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        dims = [channels * image_size * image_size, *hidden_dims]
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(sn(nn.Linear(d_in, d_out)))
            if i > 0:  # no norm on the first layer (as the conv D)
                layers += _mlp_norm(norm, d_out)
            layers.append(nn.LeakyReLU(0.2))
        self._build_head(nn.Sequential(*layers), dims[-1], num_classes, sn)

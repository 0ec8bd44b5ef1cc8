"""Encoders q(z|x) and decoders p(x|z) for VAEs, conv (28/32/64 px) and MLP (any size).

Encoders map images (B, C, H, W) in [0, 1] to ``(mean, log_var)``, each (B, latent_dim).
Decoders map z (B, latent_dim) to likelihood parameters (B, C * params_per_channel, H, W)
(e.g. Bernoulli logits: one parameter per channel; discretised logistic: two).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.nets.mlp import mlp
from genlab.nets.shapes import conv_layout


class ConvEncoder(nn.Module):
    """images (B, C, H, W) -> (mean, log_var), each (B, latent_dim)."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, base_channels: int = 32):
        super().__init__()
        base_size, num_stages = conv_layout(image_size, "encoder")
        layers: list[nn.Module] = []
        width_in, width = channels, base_channels
        for _ in range(num_stages):
            layers += [nn.Conv2d(width_in, width, 4, 2, 1), nn.SiLU()]
            width_in, width = width, width * 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(width_in * base_size * base_size, 2 * latent_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.head(self.features(images)).chunk(2, dim=1)
        return mean, log_var


class ConvDecoder(nn.Module):
    """z (B, latent_dim) -> likelihood parameters (B, out_channels, H, W)."""

    def __init__(
        self, latent_dim: int, out_channels: int, image_size: int, base_channels: int = 32
    ):
        super().__init__()
        base_size, num_stages = conv_layout(image_size, "decoder")
        width = base_channels * 2 ** (num_stages - 1)
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, width * base_size * base_size),
            nn.Unflatten(1, (width, base_size, base_size)),
            nn.SiLU(),
        ]
        for stage in range(num_stages):
            last = stage == num_stages - 1
            out = out_channels if last else width // 2
            layers.append(nn.ConvTranspose2d(width, out, 4, 2, 1))
            if not last:
                layers.append(nn.SiLU())
            width = out
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


MLP_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


class MLPEncoder(nn.Module):
    """images (B, C, H, W) -> (mean, log_var), each (B, latent_dim).

    ``C*H*W -> hidden_dims... -> 2*latent_dim`` with ``activation`` between layers (e.g. the
    784-400-40 VAE of the likelihood literature: ``hidden_dims=(400,)``, ``latent_dim=40``).
    """

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        hidden_dims: tuple[int, ...] = (400,),
        activation: str = "tanh",
    ):
        super().__init__()
        dims = [channels * image_size * image_size, *hidden_dims, 2 * latent_dim]
        self.net = nn.Sequential(nn.Flatten(), *mlp(dims, MLP_ACTIVATIONS[activation]))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.net(images).chunk(2, dim=1)
        return mean, log_var


class MLPDecoder(nn.Module):
    """z (B, latent_dim) -> likelihood parameters (B, out_channels, H, W)."""

    def __init__(
        self,
        latent_dim: int,
        out_channels: int,
        image_size: int,
        hidden_dims: tuple[int, ...] = (400,),
        activation: str = "tanh",
    ):
        super().__init__()
        self.shape = (out_channels, image_size, image_size)
        dims = [latent_dim, *hidden_dims, math.prod(self.shape)]
        self.net = nn.Sequential(*mlp(dims, MLP_ACTIVATIONS[activation]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class GaussianMLP(nn.Module):
    """A diagonal Gaussian layer of a hierarchical VAE: h (B, in_dim) -> (mean, log_var), each
    (B, out_dim), through ``in_dim -> hidden_dims... -> 2*out_dim`` with ``activation``.

    Used for q(z_l | z_{l-1}) (z_0 = the flattened image) and p(z_l | z_{l+1})."""

    def __init__(
        self, in_dim: int, out_dim: int, hidden_dims: tuple[int, ...], activation: str = "tanh"
    ):
        super().__init__()
        dims = [in_dim, *hidden_dims, 2 * out_dim]
        self.net = nn.Sequential(nn.Flatten(), *mlp(dims, MLP_ACTIVATIONS[activation]))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.net(h).chunk(2, dim=1)
        return mean, log_var

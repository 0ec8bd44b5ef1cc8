"""Encoder and decoder of the VQ-VAE (van den Oord et al. 2017, section 4.1): two stride-2
convolutions, residual blocks (ReLU, 3x3, ReLU, 1x1), and the mirror image with transposed
convolutions. The code grid is image_size / 4 on a side (28 -> 7, 32 -> 8, 64 -> 16):
:data:`genlab.models.vqvae.config.DOWNSAMPLING`."""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), channels preserved."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, hidden, 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class VQEncoder(nn.Module):
    """images (B, C, H, W) in [0, 1] -> z_e (B, embedding_dim, H/4, W/4)."""

    def __init__(self, channels: int, hidden: int, num_residual_blocks: int, embedding_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden // 2, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, 1, 1),
            *[ResidualBlock(hidden, hidden // 2) for _ in range(num_residual_blocks)],
            nn.ReLU(),
            nn.Conv2d(hidden, embedding_dim, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2.0 - 1.0)


class VQDecoder(nn.Module):
    """z_q (B, embedding_dim, H/4, W/4) -> image logits (B, C, H, W) (sigmoid: [0, 1])."""

    def __init__(self, channels: int, hidden: int, num_residual_blocks: int, embedding_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(embedding_dim, hidden, 3, 1, 1),
            *[ResidualBlock(hidden, hidden // 2) for _ in range(num_residual_blocks)],
            nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, channels, 4, 2, 1),
        )

    def forward(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.net(z_q)

"""A small U-Net that predicts the noise in x_t from (x_t, t)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding (Vaswani et al. 2017) of integer steps t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """norm-SiLU-conv twice, the time embedding added as a per-channel bias in between;
    (B, in_ch, H, W), (B, time_dim) -> (B, out_ch, H, W)."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(time_dim, out_ch)
        self.norm2, self.conv2 = _norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class TinyUNet(nn.Module):
    """Three resolutions (1, 1/2, 1/4) with widths (b, 2b, 2b), skip connections by
    concatenation, nearest-neighbour upsampling. x (B, C, H, W), t (B,) -> eps (B, C, H, W);
    H and W must be multiples of 4."""

    def __init__(self, channels: int, base_channels: int = 16, time_dim: int = 32):
        super().__init__()
        b = base_channels
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        self.conv_in = nn.Conv2d(channels, b, 3, padding=1)
        self.down1 = ResBlock(b, b, time_dim)
        self.pool1 = nn.Conv2d(b, 2 * b, 3, stride=2, padding=1)
        self.down2 = ResBlock(2 * b, 2 * b, time_dim)
        self.pool2 = nn.Conv2d(2 * b, 2 * b, 3, stride=2, padding=1)
        self.mid = ResBlock(2 * b, 2 * b, time_dim)
        self.up2 = ResBlock(4 * b, 2 * b, time_dim)
        self.up1 = ResBlock(3 * b, b, time_dim)
        self.out = nn.Sequential(_norm(b), nn.SiLU(), nn.Conv2d(b, channels, 3, padding=1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.time_dim))
        h1 = self.down1(self.conv_in(x), temb)  # (B, b, H, W)
        h2 = self.down2(self.pool1(h1), temb)  # (B, 2b, H/2, W/2)
        h = self.mid(self.pool2(h2), temb)  # (B, 2b, H/4, W/4)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.up2(torch.cat([h, h2], dim=1), temb)  # (B, 2b, H/2, W/2)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.up1(torch.cat([h, h1], dim=1), temb)  # (B, b, H, W)
        return self.out(h)

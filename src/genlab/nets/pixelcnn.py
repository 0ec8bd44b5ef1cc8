"""Gated PixelCNN over a grid of discrete codes (van den Oord et al. 2016, "Conditional Image
Generation with PixelCNN Decoders"), the prior of the VQ-VAE's second stage.

Autoregressive in raster order: p(c) = prod_i p(c_i | c_<i). Two stacks remove the blind spot:
the vertical stack sees the rows above, the horizontal stack the pixels to the left in the same
row (plus the vertical stack). Each layer's gated activation is

    y = tanh(W_f * x) . sigmoid(W_g * x)                            (eq. 2)

The first layer masks the centre (type "A": position i never sees c_i), later layers do not
(type "B"); the horizontal stack has residual connections. Input codes (B, h, w) in [0, K);
output logits (B, K, h, w) of p(c_i | c_<i).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a fixed 0/1 ``mask`` (same shape)."""

    def __init__(self, in_channels: int, out_channels: int, mask: torch.Tensor):
        kh, kw = mask.shape
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2))
        self.register_buffer("mask", mask[None, None].clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def vertical_mask(kernel_size: int, mask_center: bool) -> torch.Tensor:
    """k x k: the rows above the centre (and the centre row unless ``mask_center``)."""
    mask = torch.ones(kernel_size, kernel_size)
    mask[kernel_size // 2 + 1 :] = 0
    if mask_center:
        mask[kernel_size // 2] = 0
    return mask


def horizontal_mask(kernel_size: int, mask_center: bool) -> torch.Tensor:
    """1 x k: the pixels left of the centre (and the centre unless ``mask_center``)."""
    mask = torch.ones(1, kernel_size)
    mask[0, kernel_size // 2 + 1 :] = 0
    if mask_center:
        mask[0, kernel_size // 2] = 0
    return mask


class GatedMaskedConv(nn.Module):
    """One gated layer: (vertical, horizontal) (B, C, h, w) each -> the same shapes.

    With ``mask_center`` (the first layer) the vertical stack sees only rows above; its output
    at row r then depends on input rows < r, so in later layers the unmasked centre row of the
    vertical kernel stays causal."""

    def __init__(self, channels: int, kernel_size: int = 3, mask_center: bool = False):
        super().__init__()
        self.vertical = MaskedConv2d(
            channels, 2 * channels, vertical_mask(kernel_size, mask_center)
        )
        self.horizontal = MaskedConv2d(
            channels, 2 * channels, horizontal_mask(kernel_size, mask_center)
        )
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)
        self.residual = not mask_center

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_features = self.vertical(v)
        v_filter, v_gate = v_features.chunk(2, dim=1)
        v_out = torch.tanh(v_filter) * torch.sigmoid(v_gate)
        h_features = self.horizontal(h) + self.vertical_to_horizontal(v_features)
        h_filter, h_gate = h_features.chunk(2, dim=1)
        h_out = self.horizontal_out(torch.tanh(h_filter) * torch.sigmoid(h_gate))
        return v_out, (h + h_out) if self.residual else h_out


class GatedPixelCNN(nn.Module):
    """codes (B, h, w) long in [0, num_codes) -> logits (B, num_codes, h, w)."""

    def __init__(
        self, num_codes: int, channels: int = 64, num_layers: int = 8, kernel_size: int = 3
    ):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(
            [GatedMaskedConv(channels, kernel_size, mask_center=True)]
            + [GatedMaskedConv(channels, kernel_size) for _ in range(num_layers - 1)]
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, num_codes, 1))  # fmt: skip

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.embedding(codes).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

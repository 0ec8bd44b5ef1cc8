"""The one place for image value ranges: uint8 {0..255}, unit floats [0, 1], signed [-1, 1].

genlab's datamodules yield unit images, GAN generators and discriminators work in signed
images, metric networks and files take uint8. Every conversion between them is here."""

from __future__ import annotations

import torch
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """uint8 images pass through; float images in [0, 1] are clamped and rounded to 8 bits."""
    if images.dtype == torch.uint8:
        return images
    return images.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def to_unit(images: Tensor) -> Tensor:
    """uint8 images -> float in [0, 1] (``i / 255``); float images are returned as float."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def unit_to_signed(images: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1] (``2x - 1``)."""
    return images * 2.0 - 1.0


def signed_to_unit(images: Tensor) -> Tensor:
    """[-1, 1] -> float32 [0, 1], clamped."""
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)

"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random, differentiable transformation T is applied to every image D sees, real or
fake, in both the D and the G step::

    L_D = f(-D(T(x))) + f(D(T(G(z))))        L_G = f(-D(T(G(z))))

so gradients reach G through T. Images are (B, C, H, W) in [-1, 1]; every sample draws its
own parameters. The three operations of the paper (with its strengths):

* ``color``: brightness ``x + b``, b ~ U(-0.5, 0.5); saturation
  ``(x - mean_C x) * s + mean_C x``, s ~ U(0, 2); contrast ``(x - mean_CHW x) * c + mean_CHW x``,
  c ~ U(0.5, 1.5).
* ``translation``: shift by integers ``(dy, dx)`` uniform in ``[-r H, r H]`` x ``[-r W, r W]``
  (r = 1/8, rounded), filling with zeros.
* ``cutout``: zero a square of side ``r H`` x ``r W`` (r = 1/2, rounded) centred uniformly at random
  (clipped at the border).

A policy is a comma-separated list of these names applied in that order, e.g.
``"color,translation,cutout"`` (the paper's choice for CIFAR-10 and few-shot data); ``""``
is the identity. Pass a :class:`torch.Generator` for reproducible draws.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genlab.augment.policy import DEFAULT_POLICY, parse_policy


def _rand(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """U[0, 1) of ``shape`` drawn on the generator's device, then moved to ``like``'s."""
    device = generator.device if generator is not None else like.device
    out = torch.rand(shape, generator=generator, device=device)
    return out.to(device=like.device, dtype=like.dtype)


def _randint(low: int, high: int, shape, generator, like: torch.Tensor) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randint(low, high, shape, generator=generator, device=device).to(like.device)


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness, saturation and contrast per sample: (B, C, H, W) -> (B, C, H, W)."""
    b = x.shape[0]
    x = x + (_rand((b, 1, 1, 1), generator, x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand((b, 1, 1, 1), generator, x) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand((b, 1, 1, 1), generator, x) + 0.5) + mean


def translation(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.125
) -> torch.Tensor:
    """Integer shift of each sample by up to ``ratio`` of its size, zero fill: same shape."""
    b, _, h, w = x.shape
    shift_y, shift_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _randint(-shift_y, shift_y + 1, (b, 1, 1), generator, x)
    dx = _randint(-shift_x, shift_x + 1, (b, 1, 1), generator, x)
    batch, rows, cols = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    # index into x padded by one zero pixel on each side; out-of-range reads hit the padding
    rows = torch.clamp(rows + dy + 1, 0, h + 1)
    cols = torch.clamp(cols + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H + 2, W + 2, C)
    return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def cutout(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.5
) -> torch.Tensor:
    """Zero one random ``ratio``-sized square per sample (clipped at the border): same shape."""
    b, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre_y = _randint(0, h + (1 - size_y % 2), (b, 1, 1), generator, x)
    centre_x = _randint(0, w + (1 - size_x % 2), (b, 1, 1), generator, x)
    batch, rows, cols = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(size_y, device=x.device),
        torch.arange(size_x, device=x.device),
        indexing="ij",
    )
    rows = torch.clamp(rows + centre_y - size_y // 2, 0, h - 1)
    cols = torch.clamp(cols + centre_x - size_x // 2, 0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[batch, rows, cols] = 0
    return x * mask.unsqueeze(1)


# name -> operation; the names, for torch-free checks: genlab.augment.policy.DIFFAUGMENT_OPERATIONS
OPERATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


def diff_augment(
    x: torch.Tensor,
    policy: str = DEFAULT_POLICY,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply the operations of ``policy`` in order: (B, C, H, W) -> (B, C, H, W)."""
    for name in parse_policy(policy):
        x = OPERATIONS[name](x, generator)
    return x


class DiffAugment(nn.Module):
    """DiffAugment as a module (no parameters, no state): images (B, C, H, W) -> same shape.

    Apply it to reals and fakes alike, in the D step and in the G step.
    """

    def __init__(self, policy: str = DEFAULT_POLICY, key: str = "model.augment.policy"):
        super().__init__()
        self.operations = parse_policy(policy, key)

    @property
    def policy(self) -> str:
        return ",".join(self.operations)

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        for name in self.operations:
            images = OPERATIONS[name](images, generator)
        return images

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"

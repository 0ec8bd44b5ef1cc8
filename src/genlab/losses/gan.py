"""GAN objectives as named functions, picked by ``model.loss`` (mimicry style).

Every function takes discriminator logits (raw scores, never sigmoid outputs: sigmoid + BCE
is unsafe under autocast) and returns a scalar loss to *minimise*:

- ``d_loss(real_logits (B,), fake_logits (B,)) -> ()``
- ``g_loss(fake_logits (B,)) -> ()``

Note ``log D(x) = -softplus(-l)`` and ``log(1 - D(x)) = -softplus(l)`` for logits ``l``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def d_loss_logistic(real: Tensor, fake: Tensor) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))]: the discriminator side of the minimax game."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_saturating(fake: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))] (Goodfellow et al. 2014, the original minimax generator loss)."""
    return -F.softplus(fake).mean()


def g_loss_non_saturating(fake: Tensor) -> Tensor:
    """-E[log D(G(z))] (the 'non-saturating' heuristic from the same paper)."""
    return F.softplus(-fake).mean()


def d_loss_hinge(real: Tensor, fake: Tensor) -> Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017; SNGAN)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_loss_hinge(fake: Tensor) -> Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


def d_loss_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)] (WGAN critic; pair with a gradient penalty)."""
    return fake.mean() - real.mean()


def d_loss_least_squares(real: Tensor, fake: Tensor) -> Tensor:
    """0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2] (LSGAN, Mao et al. 2017, a=0 b=c=1)."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def g_loss_least_squares(fake: Tensor) -> Tensor:
    """0.5 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


@dataclass(frozen=True)
class GANLoss:
    """A pair of discriminator and generator losses."""

    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]


GAN_LOSSES: dict[str, GANLoss] = {
    "saturating": GANLoss(d_loss_logistic, g_loss_saturating),
    "non_saturating": GANLoss(d_loss_logistic, g_loss_non_saturating),
    "hinge": GANLoss(d_loss_hinge, g_loss_hinge),
    "wasserstein": GANLoss(d_loss_wasserstein, g_loss_hinge),
    "least_squares": GANLoss(d_loss_least_squares, g_loss_least_squares),
}


def gradient_penalty(
    discriminator: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor,
    labels: Tensor | None = None,
) -> Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat (Gulrajani 2017).

    real, fake: (B, C, H, W). Computed in fp32 with autocast off, so it cannot overflow in fp16.
    """
    real, fake = real.detach().float(), fake.detach().float()
    alpha = torch.rand(real.size(0), *([1] * (real.dim() - 1)), device=real.device)
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        scores = discriminator(interpolates, labels)
        (grads,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    return ((grads.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(
    discriminator: Callable[..., Tensor], real: Tensor, labels: Tensor | None = None
) -> Tensor:
    """R1 penalty E[||grad_x D(x)||^2] on real images (Mescheder et al. 2018), without the gamma/2.

    real: (B, C, H, W). Computed in fp32 with autocast off.
    """
    real = real.detach().float().requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        scores = discriminator(real, labels)
        (grads,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return grads.flatten(1).pow(2).sum(dim=1).mean()

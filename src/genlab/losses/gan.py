"""GAN objectives as named functions, picked by ``model.loss`` (mimicry style), and the loss
object that owns the discriminator's forward passes (as in NVlabs' StyleGAN/EDM code).

Every function takes discriminator logits (raw scores, never sigmoid outputs: sigmoid + BCE
is unsafe under autocast) and returns a scalar loss to *minimise*:

- ``d_loss(real_logits (B,), fake_logits (B,)) -> ()``
- ``g_loss(fake_logits (B,), real_logits (B,) | None) -> ()``; only relativistic losses read
  ``real_logits`` (the others accept and ignore it).

Note ``log D(x) = -softplus(-l)`` and ``log(1 - D(x)) = -softplus(l)`` for logits ``l``.
:class:`GANLoss` calls the discriminator itself (``discriminator_terms`` /
``generator_terms`` receive D, the real batch, the fakes and the labels), so a loss that needs
the real logits in the generator step fits without the module knowing.
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


def g_loss_saturating(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """E[log(1 - D(G(z)))] (Goodfellow et al. 2014, the original minimax generator loss)."""
    return -F.softplus(fake).mean()


def g_loss_non_saturating(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """-E[log D(G(z))] (the 'non-saturating' heuristic from the same paper)."""
    return F.softplus(-fake).mean()


def d_loss_hinge(real: Tensor, fake: Tensor) -> Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017; SNGAN)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_loss_hinge(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


def d_loss_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)] (WGAN critic; pair with a gradient penalty)."""
    return fake.mean() - real.mean()


def d_loss_least_squares(real: Tensor, fake: Tensor) -> Tensor:
    """0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2] (LSGAN, Mao et al. 2017, a=0 b=c=1)."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def g_loss_least_squares(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """0.5 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def d_loss_relativistic_average(real: Tensor, fake: Tensor) -> Tensor:
    """RaGAN discriminator (Jolicoeur-Martineau 2019, eq. 11, logistic form):
    -E_x[log sigmoid(C(x) - E_z C(G(z)))] - E_z[log(1 - sigmoid(C(G(z)) - E_x C(x)))]."""
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def g_loss_relativistic_average(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """RaGAN generator: the discriminator loss with real and fake swapped,
    -E_z[log sigmoid(C(G(z)) - E_x C(x))] - E_x[log(1 - sigmoid(C(x) - E_z C(G(z))))]."""
    if real is None:
        raise ValueError("the relativistic average loss needs the real logits in the G step")
    return d_loss_relativistic_average(fake, real)


def d_loss_relativistic_pairing(real: Tensor, fake: Tensor) -> Tensor:
    """RpGAN discriminator (Jolicoeur-Martineau 2019 RSGAN; Huang et al. 2024 R3GAN, eq. 2):
    E_{x,z}[softplus(-(D(x) - D(G(z))))], each real paired with one fake."""
    return F.softplus(-(real - fake)).mean()


def g_loss_relativistic_pairing(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """RpGAN generator: E_{x,z}[softplus(-(D(G(z)) - D(x)))]."""
    if real is None:
        raise ValueError("the relativistic pairing loss needs the real logits in the G step")
    return F.softplus(-(fake - real)).mean()


LossTerms = dict[str, Tensor]
Discriminator = Callable[[Tensor, "Tensor | None"], Tensor]


@dataclass(frozen=True)
class GANLoss:
    """A named pair of discriminator and generator losses that owns D's forward passes.

    Attributes:
        d_loss: ``(real_logits (B,), fake_logits (B,)) -> ()``.
        g_loss: ``(fake_logits (B,), real_logits (B,) | None) -> ()``.
        relativistic: the generator loss reads the real logits (one extra D forward pass on
            the real batch per generator step, without gradient).
    """

    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[..., Tensor]
    relativistic: bool = False

    def discriminator_terms(
        self,
        discriminator: Discriminator,
        real: Tensor,
        fake: Tensor,
        labels: Tensor | None,
        fake_labels: Tensor | None = None,
    ) -> LossTerms:
        """``loss_d`` () and the detached fp32 logits ``real_logits``/``fake_logits`` (B,).

        real, fake: (B, C, H, W) in [-1, 1]; fake should carry no generator graph. The reals
        are scored with ``labels``, the fakes with ``fake_labels`` (None: ``labels``, e.g. the
        fakes were generated with the real batch's labels, ``model.fake_labels: real``)."""
        fake_labels = labels if fake_labels is None else fake_labels
        real_logits = discriminator(real, labels).float()
        fake_logits = discriminator(fake, fake_labels).float()
        return {
            "loss_d": self.d_loss(real_logits, fake_logits),
            "real_logits": real_logits.detach(),
            "fake_logits": fake_logits.detach(),
        }

    def generator_terms(
        self,
        discriminator: Discriminator,
        real: Tensor,
        fake: Tensor,
        labels: Tensor | None,
        fake_labels: Tensor | None = None,
    ) -> LossTerms:
        """``loss_g`` (), differentiable through ``fake`` (B, C, H, W); labels as in
        :meth:`discriminator_terms`."""
        fake_labels = labels if fake_labels is None else fake_labels
        fake_logits = discriminator(fake, fake_labels).float()
        real_logits = None
        if self.relativistic:
            with torch.no_grad():
                real_logits = discriminator(real, labels).float()
        return {"loss_g": self.g_loss(fake_logits, real_logits)}


GAN_LOSSES: dict[str, GANLoss] = {
    "saturating": GANLoss(d_loss_logistic, g_loss_saturating),
    "non_saturating": GANLoss(d_loss_logistic, g_loss_non_saturating),
    "hinge": GANLoss(d_loss_hinge, g_loss_hinge),
    "wasserstein": GANLoss(d_loss_wasserstein, g_loss_hinge),
    "least_squares": GANLoss(d_loss_least_squares, g_loss_least_squares),
    "relativistic_average": GANLoss(
        d_loss_relativistic_average, g_loss_relativistic_average, relativistic=True
    ),
    "relativistic_pairing": GANLoss(
        d_loss_relativistic_pairing, g_loss_relativistic_pairing, relativistic=True
    ),
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

"""DCGAN-style conv generator and discriminator for 28, 32 and 64 px images.

The generator maps ``z`` (B, latent_dim) to images (B, C, H, W) in [-1, 1] (tanh);
the discriminator maps images (B, C, H, W) to logits (B,). Both optionally take integer
class labels (B,): the generator through a label embedding concatenated to ``z``, the
discriminator through a projection head (Miyato & Koyama 2018).

Options that mirror Radford et al.'s code (github.com/Newmu/dcgan_code) rather than
pytorch/examples' DCGAN (genlab's defaults):

* ``kernel_size``: 4 (default; stride 2, padding 1) or 5 (the authors' code: stride 2,
  padding 2, and in G ``output_padding`` 1, so every stage still doubles or halves the side
  exactly: 4 -> 8 -> 16 -> 32 in G at 32 px, 32 -> 16 -> 8 -> 4 in D).
* ``init``: ``default`` (PyTorch's own) or ``normal``: conv, transposed-conv and linear weights
  N(0, 0.02), normalisation gains N(1, 0.02), every bias 0 (paper section 4; the code's
  ``inits.Normal(scale=0.02)``, ``Normal(loc=1., scale=0.02)``, ``Constant(0.)``). Embeddings
  (class conditioning, not in the source) keep PyTorch's N(0, 1).
* ``bias``: ``false`` drops the biases the source does not have: G's output conv and D's convs
  and logit layer (the source's only additive terms are the batch-norm shifts). G's other
  layers never have a bias (each is followed by batch norm).
* ``bn_eps``: epsilon of the batch norms (PyTorch's 1e-5; the code's ``lib/ops.batchnorm``
  uses 1e-8); in D it applies with ``norm=batch``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genlab.checks.errors import ConfigError
from genlab.checks.values import check_bool, check_choice, is_int, number
from genlab.nets.catalog import D_NORMS
from genlab.nets.shapes import conv_layout

# kernel_size -> (padding, G's output_padding): each stride-2 layer doubles (G) or halves (D)
# the side. 4: pytorch/examples' DCGAN; 5: Radford et al.'s code (its deconv is the gradient
# of a stride-2, padding-2 conv, whose input is twice the output side: output_padding 1).
KERNEL_SIZES = {4: (1, 0), 5: (2, 1)}
DCGAN_INITS = ("default", "normal")  # PyTorch's own | Radford et al.: N(0, 0.02), gains N(1, 0.02)
_NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)


def _check_options(net: str, kernel_size, init, bias, bn_eps) -> None:
    """The options both DCGAN nets share; keys are named ``model.<net>.<option>``."""
    if not is_int(kernel_size) or kernel_size not in KERNEL_SIZES:
        raise ConfigError(f"model.{net}.kernel_size", kernel_size, list(KERNEL_SIZES))
    check_choice(f"model.{net}.init", init, DCGAN_INITS)
    check_bool(f"model.{net}.bias", bias)
    if not number(bn_eps) or not 0 < bn_eps < 1:
        raise ConfigError(f"model.{net}.bn_eps", bn_eps, "a number in (0, 1), e.g. 1e-5")


def _initialise(module: nn.Module, init: str) -> nn.Module:
    """Apply ``init`` (:data:`DCGAN_INITS`) to ``module`` and its children in place; return it."""
    if init == "default":
        return module
    for layer in module.modules():
        with torch.no_grad():
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
                nn.init.normal_(layer.weight, 0.0, 0.02)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
            elif isinstance(layer, _NORMS) and layer.weight is not None:
                nn.init.normal_(layer.weight, 1.0, 0.02)
                nn.init.zeros_(layer.bias)
    return module


def _d_norm(kind: str, num_channels: int, bn_eps: float = 1e-5) -> nn.Module:
    """Normalisation layer for the discriminator (batch norm breaks gradient penalties)."""
    if kind == "batch":
        return nn.BatchNorm2d(num_channels, eps=bn_eps)
    if kind == "instance":
        return nn.InstanceNorm2d(num_channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, num_channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError("model.discriminator.norm", kind, D_NORMS)


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, channels, image_size, image_size) in [-1, 1].

    Args:
        latent_dim, channels, image_size, num_classes: as every genlab generator.
        base_channels: width of the last hidden stage (Radford et al.'s ``ngf``); it doubles
            towards z (at 32 px: 4x, 2x, 1x base_channels).
        kernel_size: 4 (stride 2, padding 1) or 5 (stride 2, padding 2, output_padding 1: the
            authors' code); see :data:`KERNEL_SIZES`.
        init: ``default`` (PyTorch's) or ``normal`` (N(0, 0.02) weights, N(1, 0.02) batch-norm
            gains, zero biases: Radford et al.).
        bias: give the output conv a bias (``false``: none, as the authors' code).
        bn_eps: epsilon of every batch norm of G (PyTorch's 1e-5; the authors' code 1e-8).
    """

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        base_channels: int = 64,
        num_classes: int | None = None,
        kernel_size: int = 4,
        init: str = "default",
        bias: bool = True,
        bn_eps: float = 1e-5,
    ):
        super().__init__()
        _check_options("generator", kernel_size, init, bias, bn_eps)
        base_size, num_stages = conv_layout(image_size, "generator")
        padding, output_padding = KERNEL_SIZES[kernel_size]
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_dim = latent_dim * (2 if num_classes else 1)
        width = base_channels * 2 ** (num_stages - 1)
        self.project = nn.Sequential(
            nn.Linear(in_dim, width * base_size * base_size, bias=False),
            nn.Unflatten(1, (width, base_size, base_size)),
            nn.BatchNorm2d(width, eps=bn_eps),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for stage in range(num_stages):
            last = stage == num_stages - 1
            out = channels if last else width // 2
            conv = nn.ConvTranspose2d(
                width, out, kernel_size, 2, padding, output_padding, bias=last and bias
            )
            layers.append(conv)
            if not last:
                layers += [nn.BatchNorm2d(out, eps=bn_eps), nn.ReLU(inplace=True)]
            width = out
        self.upsample = nn.Sequential(*layers)
        _initialise(self.project, init)
        _initialise(self.upsample, init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return torch.tanh(self.upsample(self.project(z)))


class ProjectionDiscriminator(nn.Module):
    """A discriminator made of ``features`` (images -> (B, F)), a linear logit on them and, with
    classes, the projection term ``<embed(y), features>`` (Miyato & Koyama 2018): the head of
    the DCGAN and MLP discriminators. Subclasses build ``features`` and call
    :meth:`_build_head`."""

    def _build_head(
        self,
        features: nn.Module,
        feature_dim: int,
        num_classes: int | None,
        sn: Callable[[nn.Module], nn.Module],
        bias: bool = True,
    ) -> None:
        """Set ``features``, ``head`` and ``projection`` (in that order: the state-dict keys);
        ``sn`` wraps the head's layers (spectral norm or the identity); ``bias``: the logit
        layer's bias."""
        self.features = features
        self.head = sn(nn.Linear(feature_dim, 1, bias=bias))
        self.projection = sn(nn.Embedding(num_classes, feature_dim)) if num_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.features(images)
        logits = self.head(features).squeeze(1)
        if self.projection is not None:
            logits = logits + (self.projection(labels) * features).sum(dim=1)
        return logits


class DCGANDiscriminator(ProjectionDiscriminator):
    """images (B, channels, image_size, image_size) [+ labels (B,)] -> logits (B,).

    Args:
        channels, image_size, num_classes: as every genlab discriminator.
        base_channels: width of the first conv (Radford et al.'s ``ndf``); it doubles with
            depth (at 32 px: 1x, 2x, 4x base_channels).
        norm: normalisation after every conv but the first, one of :data:`D_NORMS`.
        spectral_norm: spectrally normalise every conv and the logit layer.
        kernel_size: 4 (stride 2, padding 1) or 5 (stride 2, padding 2: the authors' code).
        init: ``default`` (PyTorch's) or ``normal`` (N(0, 0.02) weights, N(1, 0.02) norm gains,
            zero biases: Radford et al.); applied before spectral norm.
        bias: give the convs and the logit layer a bias (``false``: none, as the authors' code).
        bn_eps: epsilon of the batch norms with ``norm=batch`` (the authors' code 1e-8).
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        base_channels: int = 64,
        norm: str = "batch",
        spectral_norm: bool = False,
        num_classes: int | None = None,
        kernel_size: int = 4,
        init: str = "default",
        bias: bool = True,
        bn_eps: float = 1e-5,
    ):
        super().__init__()
        _check_options("discriminator", kernel_size, init, bias, bn_eps)
        base_size, num_stages = conv_layout(image_size, "discriminator")
        padding, _ = KERNEL_SIZES[kernel_size]
        spectral = _spectral_norm if spectral_norm else (lambda m: m)

        def sn(module: nn.Module) -> nn.Module:  # initialise, then wrap (SN reads the weight)
            return spectral(_initialise(module, init))

        layers: list[nn.Module] = []
        width_in, width = channels, base_channels
        for stage in range(num_stages):
            layers.append(sn(nn.Conv2d(width_in, width, kernel_size, 2, padding, bias=bias)))
            if stage > 0:  # no norm on the first layer (DCGAN)
                layers.append(_initialise(_d_norm(norm, width, bn_eps), init))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width_in, width = width, width * 2
        features = nn.Sequential(*layers, nn.Flatten())
        self._build_head(features, width_in * base_size * base_size, num_classes, sn, bias)

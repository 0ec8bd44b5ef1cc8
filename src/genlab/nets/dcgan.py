"""DCGAN-style conv generator and discriminator for 28, 32 and 64 px images.

The generator maps ``z`` (B, latent_dim) to images (B, C, H, W) in [-1, 1] (tanh);
the discriminator maps images (B, C, H, W) to logits (B,). Both optionally take integer
class labels (B,): the generator through a label embedding concatenated to ``z``, the
discriminator through a projection head (Miyato & Koyama 2018).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genlab.checks.errors import ConfigError
from genlab.nets.catalog import D_NORMS
from genlab.nets.shapes import conv_layout


def _d_norm(kind: str, num_channels: int) -> nn.Module:
    """Normalisation layer for the discriminator (batch norm breaks gradient penalties)."""
    if kind == "batch":
        return nn.BatchNorm2d(num_channels)
    if kind == "instance":
        return nn.InstanceNorm2d(num_channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, num_channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError("model.discriminator.norm", kind, D_NORMS)


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, channels, image_size, image_size) in [-1, 1]."""

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        base_channels: int = 64,
        num_classes: int | None = None,
    ):
        super().__init__()
        base_size, num_stages = conv_layout(image_size, "generator")
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_dim = latent_dim * (2 if num_classes else 1)
        width = base_channels * 2 ** (num_stages - 1)
        self.project = nn.Sequential(
            nn.Linear(in_dim, width * base_size * base_size, bias=False),
            nn.Unflatten(1, (width, base_size, base_size)),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for stage in range(num_stages):
            last = stage == num_stages - 1
            out = channels if last else width // 2
            layers.append(nn.ConvTranspose2d(width, out, 4, 2, 1, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            width = out
        self.upsample = nn.Sequential(*layers)

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
        self, features: nn.Module, feature_dim: int, num_classes: int | None, sn
    ) -> None:
        """Set ``features``, ``head`` and ``projection`` (in that order: the state-dict keys);
        ``sn`` wraps the head's layers (spectral norm or the identity)."""
        self.features = features
        self.head = sn(nn.Linear(feature_dim, 1))
        self.projection = sn(nn.Embedding(num_classes, feature_dim)) if num_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.features(images)
        logits = self.head(features).squeeze(1)
        if self.projection is not None:
            logits = logits + (self.projection(labels) * features).sum(dim=1)
        return logits


class DCGANDiscriminator(ProjectionDiscriminator):
    """images (B, channels, image_size, image_size) [+ labels (B,)] -> logits (B,)."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        base_channels: int = 64,
        norm: str = "batch",
        spectral_norm: bool = False,
        num_classes: int | None = None,
    ):
        super().__init__()
        base_size, num_stages = conv_layout(image_size, "discriminator")
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        width_in, width = channels, base_channels
        for stage in range(num_stages):
            layers.append(sn(nn.Conv2d(width_in, width, 4, 2, 1)))
            if stage > 0:  # no norm on the first layer (DCGAN)
                layers.append(_d_norm(norm, width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width_in, width = width, width * 2
        features = nn.Sequential(*layers, nn.Flatten())
        self._build_head(features, width_in * base_size * base_size, num_classes, sn)

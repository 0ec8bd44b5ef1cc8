"""The GAN's parts built from its config: G and D from the net zoo (by ``model.generator.arch``
and ``model.discriminator.arch``) and the augmentation of D's inputs (``model.augment``)."""

from __future__ import annotations

from torch import nn

from genlab.augment.ada import AdaptiveAugment
from genlab.augment.diffaugment import DiffAugment
from genlab.models.gan.config import GANConfig
from genlab.nets.zoo import DISCRIMINATORS, GENERATORS


def build_generator(cfg: GANConfig, num_classes: int | None) -> nn.Module:
    """The ``model.generator.arch`` net of :data:`GENERATORS` with the dict's other keys."""
    spec = {k: v for k, v in cfg.generator.items() if k != "arch"}
    net = GENERATORS[cfg.generator["arch"]]
    return net(
        latent_dim=cfg.latent_dim,
        channels=cfg.channels,
        image_size=cfg.image_size,
        num_classes=num_classes,
        **spec,
    )


def build_discriminator(cfg: GANConfig, num_classes: int | None) -> nn.Module:
    """The ``model.discriminator.arch`` net of :data:`DISCRIMINATORS`; with ``model.pack`` = m
    it takes m x ``channels`` input channels (PacGAN, :func:`pack_images`)."""
    spec = {k: v for k, v in cfg.discriminator.items() if k != "arch"}
    net = DISCRIMINATORS[cfg.discriminator["arch"]]
    channels = cfg.channels * cfg.pack
    return net(channels=channels, image_size=cfg.image_size, num_classes=num_classes, **spec)


def build_augment(cfg: GANConfig) -> nn.Module | None:
    """DiffAugment, ADA (p adapted from D's real logits) or None (``model.augment``)."""
    if cfg.augment == "diffaugment":
        return DiffAugment(cfg.augment_policy, key="model.augment_policy")
    if cfg.augment == "ada":
        return AdaptiveAugment(
            cfg.ada_ops,
            target=cfg.ada_target,
            interval=cfg.ada_interval,
            speed_kimg=cfg.ada_speed_kimg,
            p=cfg.ada_p,
            key="model.ada",
            antialias=cfg.ada_antialias,
        )
    return None

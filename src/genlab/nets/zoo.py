"""The fixed tables of GAN networks ``model.{generator,discriminator}.arch`` picks from (never a
class named in a config file). Their names, image sizes and options as plain data, for the
torch-free config checks, are in :mod:`genlab.nets.catalog`."""

from __future__ import annotations

import inspect

from torch import nn

from genlab.nets.catalog import SHAPE_ARGS
from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.mlp import MLPDiscriminator, MLPGenerator
from genlab.nets.resnet import ResNetDiscriminator, ResNetGenerator
from genlab.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

GENERATORS: dict[str, type[nn.Module]] = {
    "dcgan": DCGANGenerator,
    "mlp": MLPGenerator,
    "resnet": ResNetGenerator,
    "stylegan2": StyleGAN2Generator,
}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "dcgan": DCGANDiscriminator,
    "mlp": MLPDiscriminator,
    "resnet": ResNetDiscriminator,
    "stylegan2": StyleGAN2Discriminator,
}


def net_options(net: type[nn.Module]) -> tuple[str, ...]:
    """The constructor arguments of ``net`` a ``model.generator``/``model.discriminator`` dict
    may set (what :data:`genlab.nets.catalog.GENERATOR_OPTIONS` records without torch)."""
    names = inspect.signature(net.__init__).parameters
    return tuple(p for p in names if p != "self" and p not in SHAPE_ARGS)

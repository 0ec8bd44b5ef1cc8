"""PacGAN (Lin et al. 2018): the discriminator judges ``model.pack`` images at once."""

from __future__ import annotations

import torch

from genlab.checks.errors import ConfigError


def pack_images(images: torch.Tensor, pack: int, drop_remainder: bool = False) -> torch.Tensor:
    """PacGAN packing: images (B, C, H, W) -> (B/m, m*C, H, W), packed input j holding images
    j*m .. j*m+m-1 concatenated along the channels (fjxmlzn/PacGAN's ``tf.concat(G_sep, 3)``).
    ``pack`` = 1 returns ``images``. B must be divisible by m (ConfigError naming
    ``data.batch_size`` and ``model.pack``) unless ``drop_remainder`` (evaluation: the last
    B mod m images are left out)."""
    if pack == 1:
        return images
    b, c, h, w = images.shape
    if b % pack:
        if not drop_remainder:
            raise ConfigError(
                "data.batch_size",
                b,
                f"a multiple of model.pack={pack} (the discriminator judges model.pack images "
                "at once; a training split smaller than the batch gives a smaller batch too)",
            )
        b -= b % pack
        images = images[:b]
    return images.reshape(b // pack, pack * c, h, w)

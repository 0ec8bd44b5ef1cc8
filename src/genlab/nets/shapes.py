"""Which image sizes the nets take, and the errors when they cannot (torch-free)."""

from __future__ import annotations

from genlab.checks.errors import ConfigError
from genlab.checks.values import positive_int

# image_size -> (size of the smallest feature map, number of stride-2 up/down-sampling stages)
CONV_LAYOUTS = {28: (7, 2), 32: (4, 3), 64: (4, 4)}


def conv_layout(image_size: int, arch: str) -> tuple[int, int]:
    """Return ``(base_size, num_stages)`` for a conv net on ``image_size`` px images.

    Raises a :class:`ConfigError` naming both the data's shape and the model when the
    architecture cannot take it.
    """
    if image_size not in CONV_LAYOUTS:
        raise ConfigError(
            "data.image_size",
            image_size,
            f"one of {sorted(CONV_LAYOUTS)} for the conv architecture model.{arch}"
            " (use an mlp architecture, or resize the data with data.image_size)",
        )
    return CONV_LAYOUTS[image_size]


def check_net_args(
    arch: str,
    net: str,
    sizes: tuple[int, ...],
    image_size: int,
    channels: int,
    num_classes: int | None,
    widths: dict[str, object],
) -> None:
    """The checks the fixed-size nets (``resnet``, ``stylegan2``) share: ``image_size`` one of
    ``sizes``, ``channels`` >= 1, ``num_classes`` null or >= 1, and every width argument
    (``widths``: name -> value, e.g. ``base_channels``) >= 1. ``net`` is ``generator`` or
    ``discriminator``: the keys are named ``model.<net>.<name>``."""
    if image_size not in sizes:
        raise ConfigError(
            "data.image_size",
            image_size,
            f"one of {list(sizes)} for model.{net}.arch={arch}"
            " (resize the data with data.image_size)",
        )
    if not positive_int(channels):
        raise ConfigError("model.channels", channels, "an integer >= 1")
    if num_classes is not None and not positive_int(num_classes):
        raise ConfigError("model.num_classes", num_classes, "null or an integer >= 1")
    for name, value in widths.items():
        if not positive_int(value):
            raise ConfigError(f"model.{net}.{name}", value, "an integer >= 1")

"""Which image sizes the conv architectures take, and the error when they cannot."""

from __future__ import annotations

from genlab.checks.errors import ConfigError

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

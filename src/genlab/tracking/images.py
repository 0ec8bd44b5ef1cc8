"""Images (sample grids, reconstructions) to every logger that shows images."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger


def log_image(loggers: list[Any], key: str, image: Any, step: int) -> list[Any]:
    """Log one uint8 image (height, width, channels) under ``key`` at ``step``: TensorBoard's
    Images tab, wandb's media panel. Returns the loggers that took it (others, e.g. CSV, show
    no images: the PNG files in the run dir are theirs)."""
    took = []
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, global_step=step, dataformats="HWC")
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[image], step=step)
        else:
            continue
        took.append(logger)
    return took

"""Batches of one split of a genlab datamodule, for evaluations outside the training loop."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from genlab.images import to_unit


def iterate_images(
    datamodule, split: str, num_images: int | None, batch_size: int
) -> Iterator[torch.Tensor]:
    """Yield float batches (B, C, H, W) in [0, 1] of the first ``num_images`` (None = all) of
    ``split`` (eval splits of binarised data come with their fixed binarisation)."""
    dataset = datamodule.dataset(split)
    total = len(dataset) if num_images is None else min(num_images, len(dataset))
    for start in range(0, total, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, total))]
        images = torch.stack([torch.as_tensor(im) for im, _ in items])
        yield to_unit(images)

"""In-memory image datasets: uint8 (N, C, H, W) tensors, fetched a batch at a time.

Holds :class:`TensorImageDataset` (what every fixed-shape datamodule keeps its splits in), the
batch it hands the DataLoader (:class:`ImageBatch`, passed through by :func:`collate_images`),
and the transforms datamodules apply to whole splits once: :func:`zero_padded` and
:func:`fixed_binarize`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate


def fixed_binarize(images: torch.Tensor, seed: int) -> torch.Tensor:
    """Binarise uint8 images (N, C, H, W) once, deterministically: returns uint8 in {0, 255}.

    ``pixel = 255 * Bernoulli(image / 255)`` drawn with ``torch.Generator().manual_seed(seed)``
    in chunks of 1024 images (bounded memory; same result for the same images and seed).
    """
    gen = torch.Generator().manual_seed(int(seed))
    out = torch.empty_like(images, dtype=torch.uint8)
    for start in range(0, images.shape[0], 1024):
        chunk = images[start : start + 1024].float().div_(255.0)
        out[start : start + 1024] = torch.bernoulli(chunk, generator=gen).to(torch.uint8) * 255
    return out


class ImageBatch(Sequence):
    """Images (B, C, H, W) and labels (B,) of a :class:`TensorImageDataset` fetched with one
    indexing operation (its ``__getitems__``).

    :func:`collate_images` (genlab's loaders) passes them through as ``[images, labels]``; as a
    sequence of ``(image, label)`` samples, like the per-sample list torch expects from
    ``__getitems__``, any other collate (e.g. ``default_collate`` in a user's own DataLoader)
    builds the same batch from it.

    Attributes:
        images: uint8 (B, C, H, W), contiguous.
        labels: int64 (B,).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.images[index], int(self.labels[index])


def collate_images(batch: Any) -> Any:
    """Collate of genlab's DataLoaders: an :class:`ImageBatch` as ``[images, labels]`` (what
    ``default_collate`` makes of the same samples, without touching each one); anything else
    (a list of samples from ``__getitem__``) through ``default_collate``."""
    if isinstance(batch, ImageBatch):
        return [batch.images, batch.labels]
    return default_collate(batch)


# native side of a fixed-shape dataset -> the side ``data.image_size`` may zero-pad it to
PADDED_SIZES = {28: 32}


def zero_padded(ds: Dataset, pad: int) -> TensorImageDataset:
    """``ds`` with a ``pad``-pixel black (0) border on every side, as one uint8 tensor."""
    images, labels = (
        (ds.images, ds.labels) if isinstance(ds, TensorImageDataset) else materialise(ds)
    )
    return TensorImageDataset(torch.nn.functional.pad(images, (pad, pad, pad, pad)), labels)


class TensorImageDataset(Dataset):
    """In-memory images: uint8 (N, C, H, W) plus int64 labels (N,).

    ``dataset[i]`` is ``(image (C, H, W), int label)``; ``__getitems__(indices)`` (the batched
    fetch torch's DataLoader uses when a dataset has it) is the same samples as an
    :class:`ImageBatch`, gathered with one indexing operation.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise TypeError(
                f"expected uint8 (N, C, H, W) images, got {images.dtype} {tuple(images.shape)}"
            )
        if labels is None:
            labels = torch.full((images.shape[0],), -1, dtype=torch.int64)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images = images
        self.labels = labels.to(torch.int64)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def __getitems__(self, indices: Sequence[int]) -> ImageBatch:
        index = torch.as_tensor(indices, dtype=torch.long)
        return ImageBatch(self.images[index].contiguous(), self.labels[index])


def materialise(
    ds: Dataset, index: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) and labels (N,) of ``ds`` (or of its ``index`` subset) as tensors."""
    idx = range(len(ds)) if index is None else index  # type: ignore[arg-type]
    items = [ds[i] for i in idx]
    if not items:
        return torch.empty(0, 1, 1, 1, dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
    images = torch.stack([im for im, _ in items])
    labels = torch.tensor([int(lab) for _, lab in items], dtype=torch.int64)
    return images, labels

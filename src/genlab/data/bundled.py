"""The bundled, offline default dataset: a class-balanced Fashion-MNIST subset."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch

from genlab.data.base import ImageDataModule
from genlab.data.hashing import file_digest, short_hash
from genlab.data.tensor_dataset import TensorImageDataset

ASSET = "fashion_mnist_mini.npz"


def bundled_path() -> Path:
    """Path of ``genlab/assets/fashion_mnist_mini.npz`` (built by scripts/build_fashion_mnist_mini.py)."""
    return Path(str(resources.files("genlab") / "assets" / ASSET))


class FashionMNISTMiniDataModule(ImageDataModule):
    """Fashion-MNIST mini: 6000 train (600/class) + 1000 test (100/class) 28x28 grayscale.

    Ships inside the package (``genlab/assets/fashion_mnist_mini.npz``, ~3 MB), needs no
    network and no ``data_dir`` (accepted for a uniform config, unused). val = the held-out
    test split. ``image_size`` 32 zero-pads the images by 2 px per side; other sizes and
    ``channels`` other than 1 raise ``ConfigError`` (no resizing).
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = 28,
        channels: int | None = 1,
        binarize: bool = False,
        num_classes: int | None = None,
        pin_memory: bool = False,
        seed: int = 0,
    ):
        super().__init__(
            data_dir, batch_size, num_workers, image_size, channels, binarize, pin_memory, seed
        )
        self.name = "fashion_mnist_mini"
        self._check_num_classes(num_classes, 10)
        self._check_fixed_shape(image_size, channels, 28, 1)
        self.path = bundled_path()

    def _load(self):
        with np.load(self.path, allow_pickle=False) as z:
            out = {}
            for split in ("train", "test"):
                images = torch.from_numpy(np.ascontiguousarray(z[f"{split}_images"])).unsqueeze(1)
                labels = torch.from_numpy(z[f"{split}_labels"].astype(np.int64))
                out[split] = TensorImageDataset(images, labels)
        return out

    def fingerprint(self, split: str) -> str:
        """Hash of the npz file bytes and the split name (val and test are the same split)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split={split!r} is invalid: allowed one of train, val, test")
        # file_digest, not a per-instance memo: a file rewritten in place is hashed again
        digest = file_digest(self.path)
        return short_hash(self.name, "train" if split == "train" else "test", digest)

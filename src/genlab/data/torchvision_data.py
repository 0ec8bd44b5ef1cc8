"""MNIST, Fashion-MNIST and CIFAR-10 via torchvision, held in memory as uint8 tensors.

Files live under ``data_dir`` with torchvision's layout:

* ``<data_dir>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (uncompressed IDX)
* ``<data_dir>/FashionMNIST/raw/...`` (same names)
* ``<data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``

``download: true`` fetches missing files in :meth:`prepare_data`; when the files are already
present torchvision does not touch the network (MNIST-style datasets only check the raw files
exist; CIFAR-10 verifies their md5 and only downloads if that fails). With ``download: false``
and missing files, :meth:`setup` raises ``ConfigError`` naming ``data.data_dir``.
Images come from the datasets' ``.data``/``.targets`` directly (no per-item PIL transforms).
val = the held-out *test* split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision import datasets as tvd

from genlab.checks.errors import ConfigError
from genlab.data.base import ImageDataModule
from genlab.data.hashing import file_digest, short_hash
from genlab.data.tensor_dataset import TensorImageDataset


class _TorchvisionDataModule(ImageDataModule):
    dataset_cls: type = tvd.MNIST
    native_size: int = 28
    native_channels: int = 1
    default_name: str = "torchvision"

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
        binarize: bool = False,
        num_classes: int | None = None,
        download: bool = False,
        pin_memory: bool = False,
        seed: int = 0,
    ):
        super().__init__(
            data_dir, batch_size, num_workers, image_size, channels, binarize, pin_memory, seed
        )
        self.name = self.default_name
        self._check_num_classes(num_classes, 10)
        self.download = bool(download)
        self._check_fixed_shape(image_size, channels, self.native_size, self.native_channels)

    # torchvision instantiation -------------------------------------------------------------
    def _dataset(self, train: bool, download: bool):
        return self.dataset_cls(root=self.data_dir, train=train, download=download)

    def prepare_data(self) -> None:
        """Download into ``data_dir`` if ``download`` (no-op when the files are present)."""
        if self.download:
            for train in (True, False):
                self._dataset(train, download=True)

    def _load(self):
        out = {}
        for split, train in (("train", True), ("test", False)):
            try:
                ds = self._dataset(train, download=self.download)
            except RuntimeError as e:  # torchvision: "Dataset not found ..."
                raise ConfigError(
                    "data.data_dir",
                    self.data_dir,
                    f"a directory containing {self._expected_files()} ({e}); "
                    "set data.download=true to fetch it",
                ) from e
            out[split] = TensorImageDataset(self._to_uint8_nchw(ds.data), _targets(ds.targets))
        return out

    @staticmethod
    def _to_uint8_nchw(data) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
        t = t.to(torch.uint8)
        if t.ndim == 3:  # (N, H, W) grayscale
            return t.unsqueeze(1).contiguous()
        return t.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)

    def _expected_files(self) -> str:
        return str(Path(self.data_dir) / self.dataset_cls.__name__ / "raw")

    def _split_files(self, split: str) -> list[Path]:
        raw = Path(self.data_dir) / self.dataset_cls.__name__ / "raw"
        prefix = "train" if split == "train" else "t10k"
        return [raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"]

    def fingerprint(self, split: str) -> str:
        """Hash of the split's raw file names and the sha256 of their content
        (:func:`genlab.data.hashing.file_digest`: hashed once per file state in a process).

        Falls back to hashing the loaded tensors when the files cannot be read.
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"split={split!r} is invalid: allowed one of train, val, test")
        files = self._split_files(split)
        try:
            digests = [(f.name, file_digest(f)) for f in files]
        except OSError:
            return super().fingerprint(split)
        return short_hash(self.name, "train" if split == "train" else "test", digests)


def _targets(targets) -> torch.Tensor:
    if isinstance(targets, torch.Tensor):
        return targets.to(torch.int64)
    return torch.as_tensor(list(targets), dtype=torch.int64)


class MNISTDataModule(_TorchvisionDataModule):
    """MNIST handwritten digits: 60000 train / 10000 test, 28x28 grayscale, 10 classes."""

    dataset_cls = tvd.MNIST
    native_size, native_channels = 28, 1
    default_name = "mnist"


class FashionMNISTDataModule(_TorchvisionDataModule):
    """Fashion-MNIST: 60000 train / 10000 test, 28x28 grayscale, 10 classes."""

    dataset_cls = tvd.FashionMNIST
    native_size, native_channels = 28, 1
    default_name = "fashion_mnist"


class CIFAR10DataModule(_TorchvisionDataModule):
    """CIFAR-10: 50000 train / 10000 test, 32x32 RGB, 10 classes.

    ``hflip: true`` mirrors each training image left-right with probability 1/2, drawn afresh
    every time it is seen (the data augmentation of the SNGAN/BigGAN/StyleGAN2 CIFAR-10 recipes;
    the global torch RNG, so seeded and restored on resume). Evaluation batches and the real
    images of the metrics (:meth:`images`) are never flipped.
    """

    dataset_cls = tvd.CIFAR10
    native_size, native_channels = 32, 3
    default_name = "cifar10"

    def __init__(self, *args, hflip: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_hflip(hflip)

    def _expected_files(self) -> str:
        return str(Path(self.data_dir) / tvd.CIFAR10.base_folder)

    def _split_files(self, split: str) -> list[Path]:
        base = Path(self.data_dir) / tvd.CIFAR10.base_folder
        names = tvd.CIFAR10.train_list if split == "train" else tvd.CIFAR10.test_list
        return [base / n for n, _ in names]

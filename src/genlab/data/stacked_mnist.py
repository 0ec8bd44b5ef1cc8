"""Stacked MNIST: three MNIST digits as the R, G and B channels of one image (1,000 modes).

The mode-collapse benchmark of Metz et al. (2017, Unrolled GANs), Srivastava et al. (2017,
VEEGAN) and Lin et al. (2018, PacGAN): each image stacks three MNIST digits drawn
independently, so there are 10 x 10 x 10 = 1,000 modes, and a generator's mode coverage is read
off by classifying each channel with an MNIST classifier (:mod:`genlab.metrics.coverage`).

Built deterministically from the MNIST IDX files genlab already reads
(``<data_dir>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, nothing downloaded):
``torch.Generator().manual_seed(stack_seed)`` draws, with replacement, 3 digit indices per
image: ``num_train`` images from the MNIST *train* digits and ``num_test`` from the MNIST *test*
digits (so the held-out split shares no digit image with the training split). The label of an
image is its mode, ``100 * digit(R) + 10 * digit(G) + digit(B)`` (0..999), the same index as
the coverage metric's. PacGAN's VEEGAN-protocol code (fjxmlzn/PacGAN,
stacked_MNIST_experiments/VEEGAN_experiment/model.py ``load_mnist``) draws its 128,000 training
images the same way from train + test digits together (it has no held-out split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab.checks.errors import ConfigError
from genlab.data.base import ImageDataModule
from genlab.data.hashing import file_digest, short_hash
from genlab.data.tensor_dataset import TensorImageDataset

#: Number of stacked digits (channels) and of modes.
STACK = 3
NUM_MODES = 10**STACK
_IDX_TYPES = {0x08: np.uint8}


def read_idx(path: str | Path) -> np.ndarray:
    """An uncompressed IDX file (MNIST's format) of unsigned bytes as a numpy array.

    Raises ValueError when the header is not that of a ubyte IDX file or the size does not match.
    """
    data = Path(path).read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) if dims else 0
    if len(data) - offset != expected:
        raise ValueError(
            f"{path}: IDX header says {dims} ({expected} bytes), file has {len(data) - offset}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def stack_digits(
    images: torch.Tensor, labels: torch.Tensor, num: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` stacked images from digits ``images`` (N, 28, 28) uint8 and ``labels`` (N,).

    Returns uint8 (num, 3, 28, 28) and their modes int64 (num,) =
    ``100 * labels[i0] + 10 * labels[i1] + labels[i2]`` for the drawn indices (i0, i1, i2).
    """
    index = torch.randint(0, images.shape[0], (num, STACK), generator=generator)
    stacked = images[index]  # (num, 3, 28, 28)
    digits = labels[index]  # (num, 3)
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    return stacked.contiguous(), modes.to(torch.int64)


class StackedMNISTDataModule(ImageDataModule):
    """Stacked MNIST: 28x28 (or zero-padded 32x32) RGB images of 3 MNIST digits, 1,000 modes.

    Args:
        data_dir: root holding ``MNIST/raw/`` (the IDX files; never downloaded here).
        batch_size, num_workers, pin_memory, seed: as every genlab datamodule
            (:class:`genlab.data.base.ImageDataModule`).
        image_size: 28, or 32 (zero-padded by 2 px per side).
        channels: fixed 3 (or null).
        num_classes: fixed 1000 (or null): the modes, as labels.
        num_train: stacked training images (128,000 in PacGAN's VEEGAN protocol).
        num_test: stacked held-out images, from the MNIST test digits.
        stack_seed: seed of the digit draws (the split content depends only on it, the sizes
            and the MNIST files; recorded in :meth:`fingerprint` and the run config).
        binarize: must be false (kept for the datamodule signature).
    """

    name = "stacked_mnist"

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
        num_classes: int | None = None,
        num_train: int = 128000,
        num_test: int = 10000,
        stack_seed: int = 0,
        binarize: bool = False,
        pin_memory: bool = False,
        seed: int = 0,
    ):
        if binarize is not False:
            raise ConfigError("data.binarize", binarize, "false (Stacked MNIST is not binarised)")
        super().__init__(
            data_dir, batch_size, num_workers, image_size, channels, False, pin_memory, seed
        )
        self._check_num_classes(num_classes, NUM_MODES)
        self._check_fixed_shape(image_size, channels, 28, 3)
        for key, value in (("num_train", num_train), ("num_test", num_test)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"data.{key}", value, "an integer >= 1")
        if isinstance(stack_seed, bool) or not isinstance(stack_seed, int):
            raise ConfigError("data.stack_seed", stack_seed, "an integer")
        self.num_train, self.num_test, self.stack_seed = num_train, num_test, stack_seed

    def _raw(self, prefix: str) -> list[Path]:
        raw = Path(self.data_dir) / "MNIST" / "raw"
        return [raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"]

    def _load(self) -> dict[str, TensorImageDataset]:
        out = {}
        # one generator for both splits, train first: the train split does not depend on num_test
        gen = torch.Generator().manual_seed(self.stack_seed)
        for split, prefix, num in (
            ("train", "train", self.num_train),
            ("test", "t10k", self.num_test),
        ):
            image_file, label_file = self._raw(prefix)
            if not (image_file.is_file() and label_file.is_file()):
                raise ConfigError(
                    "data.data_dir",
                    self.data_dir,
                    f"a directory containing MNIST/raw/{image_file.name} and {label_file.name} "
                    "(uncompressed IDX, as data=mnist reads them; fetch them with "
                    "`python -m genlab.train data=mnist data.download=true` once)",
                )
            images = torch.from_numpy(read_idx(image_file).copy())
            labels = torch.from_numpy(read_idx(label_file).astype(np.int64))
            if images.ndim != 3 or labels.shape[0] != images.shape[0]:
                raise ConfigError(
                    "data.data_dir", self.data_dir, f"MNIST IDX files ({image_file} is malformed)"
                )
            stacked, modes = stack_digits(images, labels, num, gen)
            out[split] = TensorImageDataset(stacked, modes)
        return out

    def fingerprint(self, split: str) -> str:
        """Hash of the source IDX files' sha256, the split's size and ``stack_seed``."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split={split!r} is invalid: allowed one of train, val, test")
        prefix = "train" if split == "train" else "t10k"
        try:
            digests = [(f.name, file_digest(f)) for f in self._raw("train") + self._raw("t10k")]
        except OSError:
            return super().fingerprint(split)
        return short_hash(
            self.name,
            prefix,
            self.num_train,
            self.num_test,
            self.stack_seed,
            self.image_size,
            digests,
        )

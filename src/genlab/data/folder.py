"""Any directory tree of images as an (unlabelled) dataset."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from genlab.checks.errors import ConfigError
from genlab.data.base import ImageDataModule
from genlab.data.hashing import file_digest, short_hash

IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm",
)  # fmt: skip
HOLDOUT_FRACTION = 0.1


def list_image_files(root: Path) -> list[Path]:
    """Relative paths of image files under ``root`` (recursive, sorted, hidden entries skipped)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in filenames:
            if not fn.startswith(".") and fn.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(dirpath, fn).relative_to(root))
    return sorted(found, key=lambda p: p.as_posix())


def load_image(path: Path, image_size: int, channels: int) -> torch.Tensor:
    """Decode ``path`` to uint8 (channels, image_size, image_size).

    EXIF orientation applied, converted to ``L``/``RGB`` (alpha dropped), shorter side resized
    to ``image_size`` (bicubic, antialiased), then center-cropped to a square.
    """
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit/float grayscale
            arr = np.asarray(img, dtype=np.float64)
            hi = arr.max() if arr.size and arr.max() > 255 else 255.0
            img = Image.fromarray(np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8), "L")
        img = img.convert("L" if channels == 1 else "RGB")
        w, h = img.size
        scale = image_size / min(w, h)
        nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
        if (nw, nh) != (w, h):
            img = img.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - image_size) // 2, (nh - image_size) // 2
        img = img.crop((left, top, left + image_size, top + image_size))
        arr = np.array(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class ImageFolderDataset(Dataset):
    """Lazily decoded images: each item is decoded from disk when indexed."""

    def __init__(self, root: Path, files: list[Path], image_size: int, channels: int):
        self.root, self.files = root, files
        self.image_size, self.channels = image_size, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.root / self.files[index]
        try:
            return load_image(path, self.image_size, self.channels), -1
        except (OSError, ValueError, SyntaxError) as e:
            raise RuntimeError(f"data.path: could not decode image {path}: {e}") from e


class FolderDataModule(ImageDataModule):
    """Every image file under ``path`` (recursive), unlabelled (label -1, ``num_classes=None``).

    * Images are decoded lazily per item (nothing is cached in memory, except the fixed
      binarised eval split when ``binarize: true``), resized so the shorter side is
      ``image_size`` and center-cropped; converted to grayscale (``channels: 1``) or RGB (3).
    * Split: a deterministic ~10% held-out subset (at least 1 image; the files with the
      smallest ``sha256(seed, relative path)``) is used by both val and test, train uses the
      rest; a single-image folder uses that image for both.
    * Validation (``ConfigError`` on ``data.path``): ``path`` unset, missing, not a directory or
      without image files -> raised in ``__init__``; unreadable files are found in
      :meth:`setup` (each is opened with PIL ``verify()``) and skipped with one warning listing
      them, or raise if ``strict: true``; no readable image at all always raises.
    * ``hflip: true`` mirrors each training image left-right with probability 1/2, drawn afresh
      every time it is seen (the global torch RNG: seeded, per rank, restored on resume), as
      the CIFAR-10 datamodule's ``hflip``; evaluation batches and the metrics' real images
      (:meth:`images`) are never flipped. Off by default.
    """

    def __init__(
        self,
        path: str | None = None,
        data_dir: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 64,
        channels: int = 3,
        binarize: bool = False,
        num_classes: int | None = None,
        strict: bool = False,
        pin_memory: bool = False,
        seed: int = 0,
        hflip: bool = False,
    ):
        super().__init__(
            data_dir, batch_size, num_workers, image_size, channels, binarize, pin_memory, seed
        )
        if image_size is None:
            raise ConfigError("data.image_size", image_size, "an integer >= 1")
        if channels is None:
            raise ConfigError("data.channels", channels, [1, 3])
        self.name = "folder"
        self._set_hflip(hflip)
        self._check_num_classes(num_classes, None)
        self.strict = bool(strict)
        if path is None or str(path).strip() in ("", "???"):
            raise ConfigError("data.path", path, "a directory of images (set data.path=/some/dir)")
        root = Path(os.path.expanduser(str(path)))
        if not root.is_absolute() and not root.exists():
            root_data = Path(self.data_dir) / root
            root = root_data if root_data.exists() else root
        if not root.exists():
            raise ConfigError(
                "data.path", str(path), "an existing directory of images (it does not exist)"
            )
        if not root.is_dir():
            raise ConfigError(
                "data.path", str(path), "a directory of images (it is not a directory)"
            )
        self.path = root.resolve()
        self.files = list_image_files(self.path)
        if not self.files:
            raise ConfigError(
                "data.path",
                str(path),
                f"a directory containing image files ({' '.join(IMAGE_EXTENSIONS)}, any case, "
                "searched recursively); none found",
            )
        self.bad_files: list[Path] = []
        self._split_files: dict[str, list[Path]] = {}

    # ----------------------------------------------------------------------------------- setup
    def _check_readable(self) -> list[Path]:
        good, bad = [], []
        for rel in self.files:
            try:
                with Image.open(self.path / rel) as img:
                    img.verify()
                good.append(rel)
            except Exception as e:  # PIL raises many types for corrupt files
                bad.append((rel, f"{type(e).__name__}: {e}"))
        self.bad_files = [rel for rel, _ in bad]
        if bad:
            listing = "; ".join(f"{rel.as_posix()} ({why})" for rel, why in bad)
            if self.strict or not good:
                raise ConfigError(
                    "data.path",
                    str(self.path),
                    f"a directory of readable images: {len(bad)} of {len(self.files)} "
                    f"file(s) could not be read: {listing}"
                    + ("" if good else "; no readable image left")
                    + (" (data.strict=true)" if self.strict and good else ""),
                )
            warnings.warn(
                f"data.path={str(self.path)!r}: skipping {len(bad)} unreadable image file(s) "
                f"of {len(self.files)}: {listing} (set data.strict=true to make this an error)",
                UserWarning,
                stacklevel=3,
            )
        return good

    def _split(self, files: list[Path]) -> dict[str, list[Path]]:
        if len(files) == 1:
            return {"train": list(files), "test": list(files)}
        n_hold = min(len(files) - 1, max(1, round(HOLDOUT_FRACTION * len(files))))
        ranked = sorted(files, key=lambda p: short_hash(self.seed, p.as_posix(), length=64))
        held = set(ranked[:n_hold])
        return {
            "train": [f for f in files if f not in held],
            "test": [f for f in files if f in held],
        }

    def _load(self):
        self._split_files = self._split(self._check_readable())
        return {
            split: ImageFolderDataset(self.path, files, self.image_size, self.channels)
            for split, files in self._split_files.items()
        }

    def fingerprint(self, split: str) -> str:
        """Hash of the split's sorted relative paths with the sha256 of each file's content
        (:func:`genlab.data.hashing.file_digest`: hashed once per file state in a process),
        image_size and channels."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split={split!r} is invalid: allowed one of train, val, test")
        self.setup()
        entries = []
        for rel in self._split_files["train" if split == "train" else "test"]:
            try:
                entries.append((rel.as_posix(), file_digest(self.path / rel)))
            except OSError:
                entries.append((rel.as_posix(), "unreadable"))
        return short_hash(
            self.name,
            "train" if split == "train" else "test",
            self.image_size,
            self.channels,
            entries,
        )

"""The real-feature cache: reference features computed once per dataset version and network.

An entry is keyed by :func:`real_feature_key` (dataset name, split and content fingerprint,
feature space with its weights' sha256, image shape, number of images), kept in memory (one
entry) and, with a cache directory, in ``<cache_dir>/<key>.pt`` (written atomically; an
unreadable file is recomputed and overwritten).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genlab.metrics.features import FeatureSet
from genlab.runs.atomic_io import atomic_torch_save

CACHE_VERSION = 1


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(s))[:40]


def real_feature_key(dm: Any, split: str, space: str, num_real: int | None) -> str:
    """``realfeats-<name>-<split>-<space>-<C>x<H>x<W>-n<num_real>-<hash>``.

    ``space`` is the feature space id (with the weights' sha256). The hash covers the dataset
    fingerprint of the split, so new data = new key.
    """
    name = str(getattr(dm, "name", "data"))
    size = getattr(dm, "image_size", None)
    hw = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    shape = f"{getattr(dm, 'channels', '?')}x{hw[0]}x{hw[1]}"
    n = "all" if num_real is None else str(num_real)
    fp = str(dm.fingerprint(split))
    parts = [str(CACHE_VERSION), name, split, fp, space, shape, n]
    digest = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:16]
    return f"realfeats-{_safe(name)}-{_safe(split)}-{_safe(space)}-{shape}-n{n}-{digest}"


class RealFeatureCache:
    """Reference features of datamodules: one entry in memory, every entry on disk with a
    directory.

    Args:
        directory: where ``<key>.pt`` files live; ``None`` = memory only.
        split: the datamodule split of the reference images.
        num_real: reference images (``max_images`` of ``dm.images``); ``None`` = the split.
        stats: counters; ``cache_hits`` counts disk hits, ``real_extractions`` computations.
    """

    def __init__(
        self,
        directory: str | os.PathLike | None,
        split: str,
        num_real: int | None,
        stats: dict[str, int],
    ):
        self.directory = Path(directory).expanduser() if directory not in (None, "") else None
        self.split = split
        self.num_real = num_real
        self.stats = stats
        self._entry: tuple[str, FeatureSet] | None = None

    def key(self, dm: Any, space: str) -> str:
        """:func:`real_feature_key` of ``dm`` in feature space ``space``."""
        return real_feature_key(dm, self.split, space, self.num_real)

    def features(self, dm: Any, space: str, extract: Callable[[Tensor], FeatureSet]) -> FeatureSet:
        """The reference features of ``dm`` (``images(split, max_images)``,
        ``fingerprint(split)``, ``name``, ``image_size``, ``channels``) in ``space``:
        ``extract(images)`` once per :meth:`key`, then from memory or disk (:meth:`get`)."""

        def compute() -> FeatureSet:
            return extract(dm.images(split=self.split, max_images=self.num_real))

        return self.get(self.key(dm, space), compute)

    def key_of(self, fs: FeatureSet) -> str | None:
        """The key of ``fs`` when it is the in-memory entry (the very object), else ``None``."""
        return self._entry[0] if self._entry is not None and self._entry[1] is fs else None

    def get(self, key: str, compute: Callable[[], FeatureSet]) -> FeatureSet:
        """The features of ``key``: from memory, else from disk, else ``compute()`` (stored)."""
        if self._entry is not None and self._entry[0] == key:
            return self._entry[1]
        path = self.directory / f"{key}.pt" if self.directory is not None else None
        fs = self._load(path) if path is not None else None
        if fs is not None:
            self.stats["cache_hits"] += 1
        else:
            fs = compute()
            self.stats["real_extractions"] += 1
            if path is not None:
                # atomic: readers see the old file or the complete new one
                atomic_torch_save({"features": fs.features, "logits": fs.logits, "key": key}, path)
        self._entry = (key, fs)
        return fs

    @staticmethod
    def _load(path: Path) -> FeatureSet | None:
        try:
            blob = torch.load(str(path), map_location="cpu", weights_only=True)
            return FeatureSet(blob["features"].float(), blob.get("logits"))
        except FileNotFoundError:
            return None
        except Exception as e:  # corrupt / foreign file: recompute and overwrite
            warnings.warn(f"ignoring unreadable feature cache {path}: {e}", stacklevel=3)
            return None

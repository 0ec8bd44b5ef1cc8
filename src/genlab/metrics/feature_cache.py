"""The real-feature cache: reference features computed once per dataset version and network.

An entry is keyed by :func:`real_feature_key` (dataset name, split and content fingerprint,
feature space with its weights' sha256, image shape, number of images), kept in memory (one
entry) and, with a cache directory, in ``<cache_dir>/<key>.pt`` (written atomically; an
unreadable file is recomputed and overwritten).

A file is trusted only after it is verified (:meth:`RealFeatureCache._load`): its stored key is
the key asked for, its features are a float32 (N, D) tensor (logits (N, K) or none), N and D are
the ones recorded beside them, N is the number of reference images the key asks for (the
datamodule's ``num_images(split)`` capped by ``num_real`` when it has one, else at most
``num_real``), and the sha256 of the features and logits bytes is the digest recorded beside
them. Any mismatch: a warning, the features are recomputed and the file overwritten.
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
#: Format of the cache file (the fields written beside the features, see :func:`_blob`).
FILE_FORMAT = 2


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


def _digest(features: Tensor, logits: Tensor | None) -> str:
    """sha256 of the features' (and logits') float32 bytes, with their shapes."""
    h = hashlib.sha256()
    for t in (features, logits):
        if t is None:
            h.update(b"none")
            continue
        t = t.detach().to("cpu", torch.float32).contiguous()
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _blob(key: str, fs: FeatureSet) -> dict[str, Any]:
    """What a cache file holds: the features and, beside them, what :meth:`_load` verifies."""
    features = fs.features.detach().to("cpu", torch.float32).contiguous()
    logits = None if fs.logits is None else fs.logits.detach().to("cpu", torch.float32)
    return {
        "format": FILE_FORMAT,
        "key": key,
        "features": features,
        "logits": logits,
        "num": int(features.shape[0]),
        "dim": int(features.shape[1]) if features.ndim == 2 else -1,
        "dtype": "float32",
        "sha256": _digest(features, logits),
    }


def expected_count(dm: Any, split: str, num_real: int | None) -> tuple[int | None, int | None]:
    """(exact, at most) number of reference images of ``dm``'s ``split`` capped by ``num_real``:
    exact when ``dm`` has ``num_images(split)``, else only the cap ``num_real``."""
    counter = getattr(dm, "num_images", None)
    if callable(counter):
        n = int(counter(split))
        return (n if num_real is None else min(n, num_real)), None
    return None, num_real


def verify_blob(
    blob: Any, key: str, exact: int | None = None, at_most: int | None = None
) -> FeatureSet:
    """The FeatureSet of a cache file's ``blob``; ``ValueError`` naming the first mismatch."""
    if not isinstance(blob, dict):
        raise ValueError(f"not a feature cache file ({type(blob).__name__})")
    if blob.get("format") != FILE_FORMAT:
        raise ValueError(f"format {blob.get('format')!r}, expected {FILE_FORMAT}")
    if blob.get("key") != key:
        raise ValueError(f"stored key {blob.get('key')!r} is not {key!r}")
    features, logits = blob.get("features"), blob.get("logits")
    if not isinstance(features, Tensor) or features.ndim != 2:
        raise ValueError("features are not an (N, D) tensor")
    if features.dtype != torch.float32 or blob.get("dtype") != "float32":
        raise ValueError(f"features dtype {features.dtype}, expected torch.float32")
    n, d = int(features.shape[0]), int(features.shape[1])
    if (n, d) != (blob.get("num"), blob.get("dim")):
        raise ValueError(f"features are {n}x{d}, recorded {blob.get('num')}x{blob.get('dim')}")
    if logits is not None and (
        not isinstance(logits, Tensor)
        or logits.ndim != 2
        or logits.dtype != torch.float32
        or int(logits.shape[0]) != n
    ):
        raise ValueError("logits are not a float32 (N, K) tensor with N rows of features")
    if exact is not None and n != exact:
        raise ValueError(f"{n} rows, the key asks for {exact} reference images")
    if at_most is not None and n > at_most:
        raise ValueError(f"{n} rows, the key asks for at most {at_most} reference images")
    if n < 2:
        raise ValueError(f"{n} rows")
    if blob.get("sha256") != _digest(features, logits):
        raise ValueError("the features do not match the sha256 recorded beside them")
    return FeatureSet(features, logits)


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

        exact, at_most = expected_count(dm, self.split, self.num_real)
        return self.get(self.key(dm, space), compute, exact, at_most)

    def key_of(self, fs: FeatureSet) -> str | None:
        """The key of ``fs`` when it is the in-memory entry (the very object), else ``None``."""
        return self._entry[0] if self._entry is not None and self._entry[1] is fs else None

    def get(
        self,
        key: str,
        compute: Callable[[], FeatureSet],
        exact: int | None = None,
        at_most: int | None = None,
    ) -> FeatureSet:
        """The features of ``key``: from memory, else from a verified file on disk (``exact`` /
        ``at_most`` rows, see :func:`verify_blob`), else ``compute()`` (stored)."""
        if self._entry is not None and self._entry[0] == key:
            return self._entry[1]
        path = self.directory / f"{key}.pt" if self.directory is not None else None
        fs = self._load(path, key, exact, at_most) if path is not None else None
        if fs is not None:
            self.stats["cache_hits"] += 1
        else:
            fs = compute()
            self.stats["real_extractions"] += 1
            if path is not None:
                # atomic: readers see the old file or the complete new one
                atomic_torch_save(_blob(key, fs), path)
        self._entry = (key, fs)
        return fs

    @staticmethod
    def _load(
        path: Path, key: str, exact: int | None = None, at_most: int | None = None
    ) -> FeatureSet | None:
        try:
            blob = torch.load(str(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except Exception as e:  # corrupt / foreign file: recompute and overwrite
            warnings.warn(f"ignoring unreadable feature cache {path}: {e}", stacklevel=3)
            return None
        try:
            return verify_blob(blob, key, exact, at_most)
        except ValueError as e:  # edited / stale / foreign file: recompute and overwrite
            warnings.warn(
                f"ignoring feature cache {path} that does not verify ({e}); recomputing",
                stacklevel=3,
            )
            return None

#!/usr/bin/env python
"""Build the bundled ``fashion_mnist_mini`` dataset shipped inside the genlab package.

Source: the Fashion-MNIST IDX files (MIT licence, (c) Zalando SE) as installed by the
Debian package ``fashion-mnist`` in ``/usr/share/datasets/fashion-mnist``::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

Output: ``src/genlab/assets/fashion_mnist_mini.npz`` with uint8 arrays

    train_images (6000, 28, 28)  train_labels (6000,)   600 images per class
    test_images  (1000, 28, 28)  test_labels  (1000,)   100 images per class

chosen with a seeded ``numpy.random.default_rng`` (per class, without replacement) and
then shuffled (so that any prefix of a split is roughly class balanced), plus a
``provenance`` entry (a JSON string) and a sibling ``fashion_mnist_mini.json`` with the same
provenance: source file names, their sha256, the seed, the counts and the npz's sha256.

The npz is written in the same format as ``np.savez_compressed`` (a zip of ``.npy`` files,
deflate) but with fixed zip timestamps, so rebuilding with the same inputs and seed gives
a byte-identical file (and thus the same ``FashionMNISTMiniDataModule.fingerprint``).

Usage::

    python scripts/build_fashion_mnist_mini.py [--source DIR] [--out FILE] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = REPO / "src" / "genlab" / "assets" / "fashion_mnist_mini.npz"
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
PER_CLASS = {"train": 600, "test": 100}
NUM_CLASSES = 10
MAX_BYTES = 5 * 1024 * 1024


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_idx_gz(path: Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (magic 0x0000_08_nd), gzip-compressed."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but has {arr.size} values")
    return arr.reshape(shape)


def balanced_subset(
    images: np.ndarray, labels: np.ndarray, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    chosen = []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise ValueError(f"class {c} has only {len(idx)} images, need {per_class}")
        chosen.append(np.sort(rng.choice(idx, size=per_class, replace=False)))
    order = np.concatenate(chosen)
    order = order[rng.permutation(len(order))]
    return np.ascontiguousarray(images[order]), np.ascontiguousarray(labels[order])


def write_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed zip metadata (reproducible bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(path)


def build(source: Path, out: Path, seed: int) -> dict:
    missing = [n for n in FILES.values() if not (source / n).is_file()]
    if missing:
        raise SystemExit(
            f"missing Fashion-MNIST files in {source}: {missing} "
            "(install the Debian package 'fashion-mnist' or pass --source)"
        )
    raw = {key: read_idx_gz(source / name) for key, name in FILES.items()}
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, per_class in PER_CLASS.items():
        imgs, labs = balanced_subset(raw[f"{split}_images"], raw[f"{split}_labels"], per_class, rng)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = imgs, labs

    provenance = {
        "dataset": "Fashion-MNIST (class-balanced subset)",
        "licence": "MIT, Copyright (c) 2017 Zalando SE",
        "source_dir": str(source),
        "source_files": {name: sha256_file(source / name) for name in FILES.values()},
        "seed": seed,
        "sampler": "numpy.random.default_rng(seed): per class choice(replace=False), "
        "train then test, each split then permuted",
        "per_class": PER_CLASS,
        "counts": {k: int(v.shape[0]) for k, v in arrays.items()},
        "builder": "scripts/build_fashion_mnist_mini.py",
    }
    arrays["provenance"] = np.array(json.dumps(provenance, sort_keys=True))
    write_npz_deterministic(out, arrays)

    size = out.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{out} is {size} bytes, above the {MAX_BYTES} byte budget")
    provenance["npz_file"] = out.name
    provenance["npz_sha256"] = sha256_file(out)
    provenance["npz_bytes"] = size
    out.with_suffix(".json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return provenance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    prov = build(args.source, args.out, args.seed)
    print(f"wrote {args.out} ({prov['npz_bytes']} bytes, sha256 {prov['npz_sha256'][:16]}...)")
    print(f"counts: {prov['counts']}")


if __name__ == "__main__":
    main()

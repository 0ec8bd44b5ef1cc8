#!/usr/bin/env python
"""Train the small CNN classifiers behind ``metrics.features=classifier`` and ship their weights.

Writes ``src/genlab/assets/classifier_<dataset>.pt`` (fp16, < 1 MB) with the test accuracy in its
``meta``. Everything is offline; about 1-2 minutes per full dataset on 2 CPU cores.

Usage (from the repository root)::

    python scripts/train_classifier.py                      # all three datasets
    python scripts/train_classifier.py --dataset mnist --epochs 3
    python scripts/train_classifier.py --dataset fashion_mnist --fashion-root DIR

Data sources (IDX files, gzipped or not, are parsed directly, no torchvision download):

* ``fashion_mnist_mini``: the bundled ``src/genlab/assets/fashion_mnist_mini.npz``
  (``train_images``/``train_labels``/``test_images``/``test_labels``);
* ``fashion_mnist``: ``--fashion-root`` (default ``/usr/share/datasets/fashion-mnist``);
* ``mnist``: ``--mnist-root`` (default ``../shared/data/MNIST/raw`` next to the repository, then
  ``/work/shared/data/MNIST/raw``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from genlab.metrics.classifier import (  # noqa: E402
    TRAINABLE_DATASETS,
    SmallClassifier,
    classifier_weights_path,
    save_classifier,
)

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally .gz) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(root: Path, name: str) -> Path:
    for cand in (root / name, root / f"{name}.gz"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"neither {name} nor {name}.gz in {root}")


def load_idx_dir(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for split, (img, lab) in IDX_NAMES.items():
        out[f"{split}_images"] = read_idx(_find(root, img))
        out[f"{split}_labels"] = read_idx(_find(root, lab))
    return out


def load_dataset(name: str, args: argparse.Namespace) -> dict[str, np.ndarray]:
    if name == "fashion_mnist_mini":
        with np.load(args.npz) as d:
            return {k: d[k] for k in ("train_images", "train_labels", "test_images", "test_labels")}
    if name == "fashion_mnist":
        return load_idx_dir(Path(args.fashion_root))
    if name == "mnist":
        for root in args.mnist_root:
            if Path(root).is_dir():
                return load_idx_dir(Path(root))
        raise FileNotFoundError(f"MNIST raw IDX files not found in any of {args.mnist_root}")
    raise ValueError(f"unknown dataset {name!r}; choose from {TRAINABLE_DATASETS}")


def augment(x: torch.Tensor, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random scale (0.85-1.1), translation (+-2 px) and optional horizontal flip, per image.

    The scale range makes the classifier robust to data pipelines that pad/resize 28 -> 32 or 64
    (the metrics resize back to 28, which shrinks the object by up to 28/32).
    """
    b = x.shape[0]
    scale = torch.empty(b).uniform_(0.85, 1.1, generator=gen)
    shift = torch.empty(b, 2).uniform_(-2 / 14, 2 / 14, generator=gen)
    sx = 1.0 / scale
    if flip:
        sx = sx * torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = sx, 1.0 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def accuracy(model: SmallClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(images), 1000):
        correct += (model(images[i : i + 1000]).argmax(1) == labels[i : i + 1000]).sum().item()
    return correct / len(images)


def train_one(name: str, args: argparse.Namespace) -> dict:
    t0 = time.time()
    data = load_dataset(name, args)
    xtr = torch.from_numpy(np.array(data["train_images"])).unsqueeze(1)  # uint8
    ytr = torch.from_numpy(data["train_labels"].astype(np.int64))
    xte = torch.from_numpy(np.array(data["test_images"])).unsqueeze(1)
    yte = torch.from_numpy(data["test_labels"].astype(np.int64))
    n = len(xtr)
    epochs = args.epochs or min(25, max(3, math.ceil(180_000 / n)))
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    mean = xtr.float().div(255).mean().item()
    std = xtr.float().div(255).std().item()
    model = SmallClassifier(
        num_classes=int(ytr.max()) + 1, input_size=xtr.shape[-1], mean=mean, std=std
    )
    steps = epochs * math.ceil(n / args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    flip = name.startswith("fashion")
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, args.batch_size):
            idx = perm[i : i + args.batch_size]
            x = augment(xtr[idx].float() / 255.0, flip, gen)
            loss = F.cross_entropy(model(x), ytr[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(
            f"[{name}] epoch {epoch + 1}/{epochs} loss {total / n:.4f} ({time.time() - t0:.0f} s)",
            flush=True,
        )
    acc = accuracy(model, xte, yte)
    # Round-trip through the shipped fp16 format and report the accuracy of what is shipped.
    out = Path(args.out_dir) / classifier_weights_path(name).name
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(
        data["train_images"].tobytes() + data["train_labels"].tobytes()
    ).hexdigest()
    meta = {
        "dataset": name,
        "n_train": n,
        "n_test": len(xte),
        "epochs": epochs,
        "seed": args.seed,
        "train_data_sha1": digest,
        "train_seconds": round(time.time() - t0, 1),
        "torch": str(torch.__version__),
    }
    save_classifier(model, out, meta)
    ckpt = torch.load(str(out), map_location="cpu", weights_only=True)
    shipped = SmallClassifier(**ckpt["config"])
    shipped.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    )
    acc16 = accuracy(shipped, xte, yte)
    meta.update(test_accuracy=round(acc16, 4), test_accuracy_fp32=round(acc, 4))
    save_classifier(model, out, meta)
    print(
        f"[{name}] test accuracy {acc16:.4f} (fp32 {acc:.4f}) -> {out} ({out.stat().st_size} bytes)",
        flush=True,
    )
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", nargs="+", default=["all"], choices=["all", *TRAINABLE_DATASETS])
    p.add_argument(
        "--epochs", type=int, default=None, help="default: 3 for full sets, more for mini"
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--out-dir", default=str(ROOT / "src" / "genlab" / "assets"))
    p.add_argument(
        "--npz", default=str(ROOT / "src" / "genlab" / "assets" / "fashion_mnist_mini.npz")
    )
    p.add_argument("--fashion-root", default="/usr/share/datasets/fashion-mnist")
    p.add_argument(
        "--mnist-root",
        nargs="+",
        default=[
            str(ROOT.parent / "shared" / "data" / "MNIST" / "raw"),
            "/work/shared/data/MNIST/raw",
        ],
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(TRAINABLE_DATASETS) if "all" in args.dataset else list(dict.fromkeys(args.dataset))
    results = [train_one(name, args) for name in names]
    print(json.dumps({m["dataset"]: m["test_accuracy"] for m in results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

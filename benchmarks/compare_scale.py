"""How long ``genlab.compare`` takes on a sweep of 100 runs, and how big its report.html is.

Builds 100 synthetic run directories in a temporary directory, written the way
``python -m genlab.train -m`` writes them (25 configs x 4 seeds, 50 epochs each: ``.hydra/``,
``env.json``, ``status.json``, ``sample_quality.json``, a GAN's ``csv/metrics.csv`` with 10
training rows and one validation row per epoch, and a real 4x4 PNG sample grid per epoch),
then times :func:`genlab.compare.compare` on it::

    python benchmarks/compare_scale.py [--configs 25] [--seeds 4] [--epochs 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from genlab.compare import compare

TRAIN_ROWS = 10  # training rows written per epoch (log_every_n_steps)
STEPS_PER_EPOCH = 100
PROTOCOL = {
    "metrics": ["fid", "kid", "is", "precision", "recall"], "features": "classifier",
    "network": "classifier-fashion_mnist_mini-136eaffaddea", "reference_data":
    "fashion_mnist_mini", "reference_split": "train", "reference_fingerprint": "95068cfa",
    "num_real": 6000, "num_fake": 1000, "first_epoch": 0, "last_epoch": 49,
}  # fmt: skip


def grid(rng: np.random.Generator, quality: float) -> Image.Image:
    """A 4x4 grid of 28 px grey 'samples' (noise fading into blobs as ``quality`` -> 1)."""
    tiles = []
    for _ in range(16):
        yy, xx = np.mgrid[-1:1:28j, -1:1:28j]
        blob = np.exp(-(xx**2 + yy**2) * rng.uniform(2, 6))
        noise = rng.uniform(0, 1, (28, 28))
        tiles.append(quality * blob + (1 - quality) * noise)
    rows = [np.concatenate(tiles[r * 4 : r * 4 + 4], axis=1) for r in range(4)]
    return Image.fromarray((np.concatenate(rows, axis=0) * 255).astype(np.uint8), mode="L")


def write_run(run_dir: Path, num: int, lr: float, beta: float, seed: int, epochs: int) -> None:
    swept = [f"model.optimizer_g.lr={lr}", f"model.optimizer_g.betas.0={beta}", f"seed={seed}"]
    overrides = ["model=gan", *swept, f"trainer.max_epochs={epochs}"]
    config = {"seed": seed, "optimized_metric": "val/fid", "trainer": {"max_epochs": epochs},
              "model": {"optimizer_g": {"lr": lr, "betas": [beta, 0.999]}}}  # fmt: skip
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    choices = {"model": "gan", "trainer": "cpu", "logger": "csv", "data": "fashion_mnist_mini"}
    hydra = {"hydra": {"runtime": {"choices": choices}}}
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run_dir / "env.json").write_text(json.dumps({"config": config, "overrides": overrides}))
    status = {"status": "completed", "num": num, "swept": swept, "overrides": overrides}
    (run_dir / "status.json").write_text(json.dumps(status))
    (run_dir / "sample_quality.json").write_text(json.dumps({"protocols": [PROTOCOL]}))
    rng = np.random.default_rng(num)
    noise = random.Random(num)
    target = 20 + 400 * abs(math.log10(lr) + 3.5) + 30 * beta + noise.uniform(-5, 5)
    (run_dir / "csv").mkdir()
    (run_dir / "samples").mkdir()
    header = ["epoch", "step", "time/elapsed", "train/d_fake", "train/d_real", "train/d_step",
              "train/g_step", "train/loss_d", "train/loss_g", "val/d_fake", "val/d_real",
              "val/fid", "val/is", "val/is_std", "val/kid", "val/kid_std", "val/precision",
              "val/recall"]  # fmt: skip
    with (run_dir / "csv" / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for epoch in range(epochs):
            progress = (epoch + 1) / epochs
            for row in range(TRAIN_ROWS):
                step = epoch * STEPS_PER_EPOCH + (row + 1) * STEPS_PER_EPOCH // TRAIN_ROWS - 1
                loss_d = 0.6 + 0.4 * noise.random()
                writer.writerow([epoch, step, 0.21 * step, 0.3, 0.7, step, step, loss_d,
                                 2 - loss_d, *[""] * 9])  # fmt: skip
            fid = target + 300 * (1 - progress) ** 2 + noise.uniform(-3, 3)
            step = (epoch + 1) * STEPS_PER_EPOCH - 1
            writer.writerow([epoch, step, 0.21 * step + 4, "", "", "", "", "", "", 0.3, 0.7,
                             fid, 1 + progress, 0.01, fid / 20, 0.1, progress, progress / 2])  # fmt: skip
            grid(rng, progress).save(run_dir / "samples" / f"epoch={epoch:03d}.png")
    grid(rng, 1.0).save(run_dir / "samples" / "last.png")


def build(root: Path, configs: int, seeds: int, epochs: int) -> Path:
    """``root/sweep/<num>/``: ``configs`` learning-rate/beta pairs x ``seeds`` seeds."""
    sweep = root / "sweep"
    lrs = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3]
    betas = [0.0, 0.3, 0.5, 0.7, 0.9]
    num = 0
    for c in range(configs):
        for seed in range(1, seeds + 1):
            write_run(sweep / str(num), num, lrs[c % 5], betas[(c // 5) % 5], seed, epochs)
            num += 1
    return sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=25)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compare_scale_") as tmp:
        start = time.perf_counter()
        sweep = build(Path(tmp), args.configs, args.seeds, args.epochs)
        runs = args.configs * args.seeds
        print(
            f"built {runs} run dirs ({args.epochs} epochs) in {time.perf_counter() - start:.1f} s"
        )
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                report = compare([sweep], out=Path(tmp) / "out")
            seconds.append(time.perf_counter() - start)
        size = report.stat().st_size / 1e6
        print(
            f"genlab.compare, {runs} runs: {statistics.median(seconds):.2f} s median of "
            f"{len(seconds)} ({', '.join(f'{s:.2f}' for s in seconds)}); report.html {size:.1f} MB"
        )


if __name__ == "__main__":
    main()

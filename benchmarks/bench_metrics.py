#!/usr/bin/env python
"""Overhead of SampleQualityCallback on a training epoch (issue 5 budget: < 10%).

Trains genlab's default DCGAN (``genlab.models.GAN``, conf/model/gan.yaml defaults) on the
bundled Fashion-MNIST mini (64-image batches -> 93 training batches, plus the 16-batch
validation loop) for ``--epochs`` epochs, once without and once with the callback at the given
settings (defaults = conf/metrics/default.yaml), and reports:

* ``warmup_s``: one-time reference-feature extraction in ``on_fit_start`` (cached on disk after);
* ``callback_s``: wall time of one evaluation (generation + features + all metrics), mean;
* ``epoch_s_without`` / ``epoch_s_with``: mean epoch wall time (first epoch dropped if > 1);
* ``overhead_pct``: ``callback_s / epoch_s_without`` (the direct measure; the difference of the
  two epoch times is also printed but is noisier on a shared machine);
* ``overhead_cpu_pct``: the same ratio in process CPU time, robust when other jobs share the
  cores (wall times then inflate by an unknown factor).

Usage (repository root)::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_metrics.py
    PYTHONPATH=src .venv/bin/python benchmarks/bench_metrics.py --epochs 3 --num-samples 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from genlab.callbacks.sample_quality import SampleQualityCallback  # noqa: E402
from genlab.data import FashionMNISTMiniDataModule  # noqa: E402
from genlab.models import GAN  # noqa: E402


class EpochTimer(pl.Callback):
    """Wall and process-CPU time from one train-epoch start to the next (covers validation and
    all callbacks). CPU time is the robust number on a machine shared with other jobs."""

    def __init__(self):
        self.starts: list[tuple[float, float]] = []
        self.end: tuple[float, float] | None = None

    def on_train_epoch_start(self, trainer, pl_module):
        self.starts.append((time.perf_counter(), time.process_time()))

    def on_fit_end(self, trainer, pl_module):
        self.end = (time.perf_counter(), time.process_time())

    def epochs(self, which: int) -> list[float]:
        marks = [m[which] for m in [*self.starts, self.end]]
        return [b - a for a, b in zip(marks[:-1], marks[1:])]


class TimedSampleQuality(SampleQualityCallback):
    """Also records the process CPU time of each evaluation."""

    cpu_total = 0.0

    def _run(self, trainer, pl_module):
        t0 = time.process_time()
        super()._run(trainer, pl_module)
        self.cpu_total += time.process_time() - t0


def run(args: argparse.Namespace, with_callback: bool, cache_dir: str) -> dict:
    pl.seed_everything(0, verbose=False)
    dm = FashionMNISTMiniDataModule(batch_size=64)
    model = GAN(image_size=28, channels=1, num_classes=10)
    timer = EpochTimer()
    callbacks: list[pl.Callback] = [timer]
    cb = None
    if with_callback:
        cb = TimedSampleQuality(
            every_n_epochs=1,
            features=args.features,
            num_samples=args.num_samples,
            batch_size=args.batch_size,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            cache_dir=cache_dir,
            protocol_file=None,  # no run directory here (would write ./sample_quality.json)
        )
        callbacks.insert(0, cb)
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        limit_train_batches=args.limit_train_batches,
    )
    t0 = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    wall, cpu = timer.epochs(0), timer.epochs(1)
    out = {
        "fit_s": time.perf_counter() - t0,
        "epochs_s": [round(e, 2) for e in wall],
        "epoch_s": statistics.mean(wall[1:] if len(wall) > 1 else wall),
        "epoch_cpu_s": statistics.mean(cpu[1:] if len(cpu) > 1 else cpu),
    }
    if cb is not None:
        out["callback_s"] = cb.total_duration / max(cb.num_evaluations, 1)
        out["callback_cpu_s"] = cb.cpu_total / max(cb.num_evaluations, 1)
        out["last_results"] = {k: round(v, 4) for k, v in cb.last_results.items()}
        out["last_timing"] = {k: round(v, 3) for k, v in cb.sample_quality.last_timing.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--features", default="classifier", choices=["classifier", "inception"])
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--kid-subsets", type=int, default=10)
    p.add_argument(
        "--kid-subset-size", type=int, default=None, help="default: min(1000, num_samples/2)"
    )
    p.add_argument("--limit-train-batches", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as cache_dir:
        # One-time reference features (what on_fit_start pays on the first run only).
        from genlab.metrics import SampleQuality

        sq = SampleQuality(features=args.features, batch_size=args.batch_size, cache_dir=cache_dir)
        t0 = time.perf_counter()
        sq.real_features(FashionMNISTMiniDataModule(batch_size=64))
        warmup = time.perf_counter() - t0
        without = run(args, False, cache_dir)
        with_cb = run(args, True, cache_dir)
    report = {
        "settings": {k: v for k, v in vars(args).items() if k != "threads"},
        "torch_threads": torch.get_num_threads(),
        "warmup_s": round(warmup, 2),
        "epoch_s_without": round(without["epoch_s"], 2),
        "epoch_s_with": round(with_cb["epoch_s"], 2),
        "callback_s": round(with_cb["callback_s"], 3),
        "overhead_pct": round(100 * with_cb["callback_s"] / without["epoch_s"], 1),
        "epoch_cpu_s_without": round(without["epoch_cpu_s"], 2),
        "callback_cpu_s": round(with_cb["callback_cpu_s"], 3),
        "overhead_cpu_pct": round(100 * with_cb["callback_cpu_s"] / without["epoch_cpu_s"], 1),
        "epoch_diff_pct": round(100 * (with_cb["epoch_s"] / without["epoch_s"] - 1), 1),
        "epochs_s_without": without["epochs_s"],
        "epochs_s_with": with_cb["epochs_s"],
        "last_timing": with_cb["last_timing"],
        "last_results": with_cb["last_results"],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

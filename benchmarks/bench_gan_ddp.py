"""Seconds per training batch of a GAN on ``trainer=ddp_cpu`` (2 CPU processes, gloo, 1 thread
each) with genlab's ``GANDDPStrategy`` vs Lightning's DDP wrapper + ``find_unused_parameters``.

Usage: python benchmarks/bench_gan_ddp.py [--models gan wgan_gp] [--batches 40] [--warmup 5]
       [--base-channels 32] [--batch-size 32] [--repeats 2]
Each configuration runs through the CLI; rank 0 times batches after ``--warmup`` (so process
start-up is excluded). Prints one line per (model, strategy, repeat) and the median per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl

STRATEGIES = {
    "GANDDPStrategy": [],  # trainer/ddp_cpu.yaml as shipped
    "find_unused_parameters": [
        "trainer.strategy._target_=lightning.pytorch.strategies.DDPStrategy",
        "+trainer.strategy.find_unused_parameters=true",
    ],
}


class BatchTimer(pl.Callback):
    """Rank 0 writes ``{"seconds_per_batch": ..}`` over the batches after ``warmup``."""

    def __init__(self, out: str, warmup: int = 5):
        self.out, self.warmup, self.start, self.count = out, warmup, None, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.fit_loop.epoch_loop.batch_progress.total.completed == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.start is not None:
            self.count += 1

    def on_train_end(self, trainer, module):
        if trainer.global_rank == 0 and self.count:
            seconds = (time.perf_counter() - self.start) / self.count
            Path(self.out).write_text(json.dumps({"seconds_per_batch": seconds}))


def run(model: str, strategy: str, args, out: Path) -> float:
    result_file = out / f"{model}_{strategy}.json"
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": here + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [
        sys.executable,
        "-m",
        "genlab.train",
        "trainer=ddp_cpu",
        f"model={model}",
        f"hydra.run.dir={out / (model + '_' + strategy)}",
        "trainer.max_epochs=1",
        f"+trainer.limit_train_batches={args.batches}",
        "+trainer.limit_val_batches=0",
        "trainer.enable_model_summary=false",
        "~callbacks.rich_progress_bar",
        "~callbacks.sample_grid",
        "~logger",
        f"data.batch_size={args.batch_size}",
        f"model.generator.base_channels={args.base_channels}",
        f"model.discriminator.base_channels={args.base_channels}",
        "model.n_critic=1",
        "+callbacks.batch_timer._target_=bench_gan_ddp.BatchTimer",
        f"+callbacks.batch_timer.out={result_file}",
        f"+callbacks.batch_timer.warmup={args.warmup}",
        *STRATEGIES[strategy],
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(result_file.read_text())["seconds_per_batch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gan", "wgan_gp"])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench_gan_ddp_"))
    print(
        f"batches={args.batches} warmup={args.warmup} base_channels={args.base_channels} "
        f"batch_size={args.batch_size}/process, 2 CPU processes"
    )
    results: dict[tuple[str, str], list[float]] = {}
    for repeat in range(args.repeats):
        for model in args.models:
            for strategy in STRATEGIES:  # alternate, so machine load drifts hit both
                seconds = run(model, strategy, args, out)
                results.setdefault((model, strategy), []).append(seconds)
                print(
                    f"{model:8s} {strategy:24s} repeat {repeat}: {seconds * 1000:.1f} ms/batch",
                    flush=True,
                )
    for (model, strategy), values in results.items():
        print(f"median {model:8s} {strategy:24s} {statistics.median(values) * 1000:.1f} ms/batch")


if __name__ == "__main__":
    main()

"""Seconds per training batch of the default GAN and VAE on the bundled data (CPU).

Usage: python benchmarks/bench_train_step.py [--threads 2] [--batches 30] [--base-channels 64]
Prints one line per model: batches/s and the projected seconds per epoch (93 batches of 64).
"""

from __future__ import annotations

import argparse
import time

import torch

from genlab.data import FashionMNISTMiniDataModule
from genlab.models import GAN, VAE


def time_model(model, batches, steps: int) -> float:
    import lightning.pytorch as pl

    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=-1,
        limit_train_batches=steps,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=batches)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--base-channels", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    datamodule = FashionMNISTMiniDataModule(batch_size=64)
    shape = {"image_size": 28, "channels": 1, "num_classes": 10}
    width = {"arch": "dcgan", "base_channels": args.base_channels}
    models = {
        "gan": GAN(**shape, generator=width, discriminator={**width, "norm": "batch"}),
        "vae": VAE(**shape),
    }
    for name, model in models.items():
        seconds = time_model(model, datamodule, args.batches)
        print(
            f"{name}: {1 / seconds:.1f} batches/s, {seconds * 93:.0f} s/epoch "
            f"(threads={args.threads}, base_channels={args.base_channels})"
        )


if __name__ == "__main__":
    main()

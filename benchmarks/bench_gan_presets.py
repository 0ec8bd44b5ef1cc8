"""Train every GAN preset for a few hundred batches on the bundled data and check for NaN/inf.

Usage: python benchmarks/bench_gan_presets.py [--precision bf16-mixed] [--batches 300]
       [--base-channels 32] [--batch-size 64] [--presets gan wgan_gp ...] [--out DIR]
Each preset runs through the CLI (``python -m genlab.train model=<preset> ...``, 1 process);
prints one line per preset: batches, generator steps, non-finite logged values, last losses,
seconds. Exit code 1 when any preset logged a non-finite loss.
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAIN_IMAGES = 6000
PRESETS = ["gan", "wgan_gp", "sngan", "lsgan", "r1gan", "gan_mlp", "cgan"]
WATCHED = ["train/loss_d", "train/loss_g", "train/d_real", "train/d_fake", "train/gp", "train/r1"]


def run_preset(preset: str, args, out: Path) -> dict:
    size = (
        []
        if preset == "gan_mlp"
        else [
            f"model.generator.base_channels={args.base_channels}",
            f"model.discriminator.base_channels={args.base_channels}",
        ]
    )
    epochs = math.ceil(args.batches / (TRAIN_IMAGES // args.batch_size))  # bundled: 6000 images
    cmd = [
        sys.executable,
        "-m",
        "genlab.train",
        f"model={preset}",
        f"hydra.run.dir={out / preset}",
        f"trainer.precision={args.precision}",
        f"trainer.max_epochs={epochs}",
        "trainer.max_steps=-1",
        f"+trainer.limit_train_batches={args.batches // epochs}",
        "+trainer.limit_val_batches=2",
        "trainer.log_every_n_steps=1",
        "trainer.accelerator=cpu",
        f"data.batch_size={args.batch_size}",
        "~callbacks.rich_progress_bar",
        "trainer.enable_model_summary=false",
        "callbacks.sample_grid.num_samples=16",
        *size,
    ]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        return {"preset": preset, "error": result.stderr[-2000:]}
    rows = list(csv.DictReader(open(out / preset / "csv" / "metrics.csv")))
    values = {k: [float(r[k]) for r in rows if r.get(k)] for k in WATCHED}
    bad = sum(not math.isfinite(v) for vs in values.values() for v in vs)
    last = {k: vs[-1] for k, vs in values.items() if vs}
    g_steps = max((float(r["train/g_step"]) for r in rows if r.get("train/g_step")), default=0)
    return {
        "preset": preset,
        "batches": len(values["train/loss_d"]),
        "g_steps": int(g_steps),
        "non_finite": bad,
        "last": last,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--batches", type=int, default=300, help="training batches (one epoch)")
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--out", type=Path, default=None, help="run dirs (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_gan_presets_"))
    failed = False
    print(
        f"precision={args.precision} batches={args.batches} base_channels={args.base_channels}"
        f" batch_size={args.batch_size} runs in {out}"
    )
    for preset in args.presets:
        r = run_preset(preset, args, out)
        if "error" in r:
            failed = True
            print(f"{preset:8s} FAILED\n{r['error']}")
            continue
        failed |= r["non_finite"] > 0
        last = " ".join(f"{k.split('/')[1]}={v:.3g}" for k, v in r["last"].items())
        print(
            f"{preset:8s} batches={r['batches']} g_steps={r['g_steps']} "
            f"non_finite={r['non_finite']} {last} ({r['seconds']:.0f} s)",
            flush=True,
        )
    return int(failed)


if __name__ == "__main__":
    raise SystemExit(main())

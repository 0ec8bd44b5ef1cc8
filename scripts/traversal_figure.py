"""The latent-traversal figure of docs/how-to/traversals.md: a short beta-VAE run on
``data=shapes2d`` on the CPU, then ``genlab.sample mode=traverse`` from a test image.

    python scripts/traversal_figure.py [--steps 2500] [--out docs/traversal_vae.png]

Runs the two commands the page shows (printed before each runs) in ``--workdir``
(default: a ``traversal_figure`` folder under the system temp dir) and copies the overview
grid (one row per latent dimension, columns from -3 to +3 around the test image's posterior
mean) to ``--out``. Prints the wall time of each command.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path) -> float:
    print("$ " + shlex.join(["python", *args[1:]]), flush=True)
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2500, help="training steps (batch 64)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "traversal_vae.png")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "traversal_figure"
    )
    args = parser.parse_args()
    work = args.workdir.resolve()
    run_dir = work / "beta_vae_shapes2d"
    shutil.rmtree(run_dir, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    train = [
        sys.executable, "-m", "genlab.train", "model=beta_vae", "data=shapes2d",
        "data.num_train=20000", "data.num_test=500", "model.likelihood=bernoulli",
        "model.base_channels=16", f"trainer.max_steps={args.steps}",
        "metrics.every_n_epochs=0", "logger=csv", "seed=0", f"paths.output_dir={run_dir}",
    ]  # fmt: skip
    seconds = run(train, work)
    print(f"training: {seconds:.0f} s", flush=True)
    sample = [
        sys.executable, "-m", "genlab.sample", f"ckpt_path={run_dir}/checkpoints/last.ckpt",
        "mode=traverse", "traverse.center=data", "traverse.directions=10", "traverse.range=3",
        "traverse.steps=9", "traverse.rows=4", f"output={work}/traverse.png",
    ]  # fmt: skip
    seconds = run(sample, work)
    print(f"traversal: {seconds:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "traverse.png", args.out)
    print(args.out)


if __name__ == "__main__":
    main()

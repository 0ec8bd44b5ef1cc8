"""Five CPU minutes on Fashion-MNIST: the README's two commands, run one at a time per seed.

The baseline is the plain DCGAN (``model=gan``), the contender ``experiment=cpu_gan_fashion_mnist``;
each trains for the same wall time (``trainer.max_time``, validation included), then the last
``val/fid`` each logged (classifier features, 1,000 samples against 10,000 training images: the
metrics config's protocol, recorded in every run's ``sample_quality.json``) and the generator
steps it reached are printed with their ratio::

    python benchmarks/five_cpu_minutes.py                          # seeds 42 and 1: ~22 min
    python benchmarks/five_cpu_minutes.py --seeds 42 --json five.json
    python benchmarks/five_cpu_minutes.py --seconds 60 --data fashion_mnist_mini

Each run is ``python -m genlab.train <README command> seed=<s> hydra.run.dir=<out>/<name>_seed<s>``
plus what follows ``--`` on this command line. Run it on an otherwise idle machine: the figure
is what the machine's cores can do in the time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from genlab.report.runs import load_run

DATA = "fashion_mnist"  # the data of the README's table (full Fashion-MNIST, IDX files)


def max_time(seconds: int) -> str:
    """Lightning's ``DD:HH:MM:SS`` for a whole number of seconds."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days:02d}:{hours:02d}:{minutes:02d}:{secs:02d}"


def commands(seconds: int, data: str) -> dict[str, list[str]]:
    """The README's two commands (as overrides of ``python -m genlab.train``) for ``seconds``."""
    budget = max_time(seconds)
    cpu_gan = ["experiment=cpu_gan_fashion_mnist", f"trainer.max_time={budget}"]
    if data != DATA:
        cpu_gan.append(f"data={data}")
    return {
        "gan": [
            "model=gan",
            f"data={data}",
            f"+trainer.max_time={budget}",
            "trainer.max_epochs=1000",
        ],
        "cpu_gan": cpu_gan,
    }


def last_fid(run_dir: Path) -> dict[str, float | None]:
    """The run's last ``val/fid`` and the generator steps it reached (``train/g_step``)."""
    metrics = load_run(run_dir).metrics
    fid, steps = metrics.get("val/fid"), metrics.get("train/g_step")
    return {
        "val_fid": fid.final if fid else None,
        "g_steps": int(max(steps.values)) if steps else None,
    }


def run_pair(seed: int, seconds: int, data: str, out: Path, extra: list[str]) -> dict:
    """Both commands for one seed, one after the other; their figures and the FID ratio."""
    row: dict = {"seed": seed}
    for name, overrides in commands(seconds, data).items():
        run_dir = out / f"{name}_seed{seed}"
        argv = [sys.executable, "-m", "genlab.train", *overrides, f"seed={seed}"]
        argv += [f"hydra.run.dir={run_dir}", *extra]
        print("$ python", " ".join(argv[1:]), flush=True)
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(
                f"{name} (seed {seed}) exited {done.returncode}:\n{done.stderr[-3000:]}"
            )
        row[name] = {"run_dir": str(run_dir), **last_fid(run_dir)}
    gan, cpu = row["gan"]["val_fid"], row["cpu_gan"]["val_fid"]
    row["ratio"] = cpu / gan if gan and cpu is not None else None
    return row


def fmt(entry: dict) -> str:
    if entry["val_fid"] is None:
        return "no val/fid"
    return f"{entry['val_fid']:.2f} @ {entry['g_steps']:,}"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1])
    parser.add_argument("--seconds", type=int, default=300, help="training time of each run")
    parser.add_argument("--data", default=DATA, help="data config of both runs")
    parser.add_argument("--out", type=Path, default=Path("outputs/five_cpu_minutes"))
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("extra", nargs="*", help="overrides for both runs, after --")
    args = parser.parse_args(argv)
    rows = [run_pair(s, args.seconds, args.data, args.out, args.extra) for s in args.seeds]
    print(f"\nval/fid @ G steps after {args.seconds} s of training, data={args.data}")
    print("| seed | `model=gan` | `experiment=cpu_gan_fashion_mnist` | ratio |\n|---|---|---|---|")
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        print(f"| {row['seed']} | {fmt(row['gan'])} | {fmt(row['cpu_gan'])} | {ratio} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()

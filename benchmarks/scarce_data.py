"""Scarce data: does DiffAugment / ADA help a DCGAN trained on 1%, 10% and 100% of the data?

Grid: ``data.subset`` in {0.01, 0.1, 1.0} x ``model.augment`` in {none, diffaugment, ada}, each
cell one ``python -m genlab.train`` run with the same number of generator steps (a fixed
compute budget per cell, the same for every subset size) on Fashion-MNIST (the full set when
its files are under ``paths.data_dir``, else the bundled ``fashion_mnist_mini``), then scored
by ``python -m genlab.eval`` on the held-out **test** split (FD in the shipped classifier's
features; mode coverage when genlab.metrics offers it). During training each run logs
``train/d_real`` (D's mean sigmoid output on the augmented training reals), ``val/d_real``
(on held-out test reals, never augmented) and, with ADA, ``train/ada_p``: the gap between
the two D outputs is the overfitting signal of Karras et al. 2020, Fig. 1.

    python benchmarks/scarce_data.py                     # the grid, then the page
    python benchmarks/scarce_data.py --report-only       # rebuild the page from finished runs
    python benchmarks/scarce_data.py --fractions 0.01 --augments none ada --steps 300

Writes ``docs/results/scarce_data.md`` (and ``<out>/results.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results" / "scarce_data.md"


def full_fashion_mnist_present() -> bool:
    data_dir = Path(os.environ.get("GENLAB_DATA_DIR", ROOT / "data"))
    raw = data_dir / "FashionMNIST" / "raw"
    return all(
        (raw / f"{p}-{k}").exists()
        for p in ("train", "t10k")
        for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )


def train_overrides(args, data: str, fraction: float, augment: str, run_dir: Path) -> list[str]:
    return [
        "model=gan",
        f"data={data}",
        f"data.subset={fraction}",
        f"data.subset_seed={args.subset_seed}",
        f"data.batch_size={args.batch_size}",
        f"model.augment={augment}",
        f"model.ada_speed_kimg={args.ada_speed_kimg}",
        f"model.generator.base_channels={args.width}",
        f"model.discriminator.base_channels={args.width}",
        f"trainer.max_steps={args.steps}",
        "trainer.max_epochs=-1",
        "trainer.check_val_every_n_epoch=null",  # validate by steps: same for every subset size
        f"trainer.val_check_interval={args.val_every}",
        f"trainer.limit_val_batches={args.val_batches}",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
        "metrics.every_n_epochs=0",  # scored once at the end by genlab.eval on the test split
        "~callbacks.sample_grid",
        "~callbacks.model_checkpoint",  # last.ckpt comes from callbacks.preemption at the end
        "~callbacks.rich_progress_bar",
        "logger=csv",
        f"seed={args.seed}",
        f"num_threads={args.threads}",
        f"hydra.run.dir={run_dir}",
        "task_name=scarce_data",
    ]


def run(cmd: list[str], log: Path) -> int:
    with open(log, "w") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)


def score(py: str, ckpt: Path, run_dir: Path, threads: int) -> int:
    """genlab.eval of ``ckpt``: FD (and coverage) of 1,000 samples against the whole test split."""
    base = [
        py,
        "-m",
        "genlab.eval",
        f"ckpt_path={ckpt}",
        "split=test",
        "metrics.real_split=test",
        "metrics.num_real=null",
        f"num_threads={threads}",
    ]
    rc = run([*base, "metrics.metrics=[fid,coverage]"], run_dir / "eval.out")
    if rc != 0:  # coverage not available in this checkout: FD alone
        rc = run([*base, "metrics.metrics=[fid]"], run_dir / "eval.out")
    return rc


def scored_on_test(run_dir: Path) -> bool:
    ev = run_dir / "checkpoints" / "eval.json"
    return (
        ev.exists() and json.loads(ev.read_text()).get("sample_quality_reference_split") == "test"
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def series(rows: list[dict[str, str]], key: str) -> list[tuple[int, float]]:
    out = []
    for r in rows:
        v = r.get(key, "")
        if v not in ("", None):
            out.append((int(float(r.get("step") or 0)), float(v)))
    return out


def tail_mean(points: list[tuple[int, float]], frac: float = 0.2) -> float | None:
    if not points:
        return None
    k = max(1, math.ceil(len(points) * frac))
    return sum(v for _, v in points[-k:]) / k


def cell_result(run_dir: Path) -> dict:
    rows = read_csv(run_dir / "csv" / "metrics.csv")
    res: dict = {}
    res["train_d_real"] = tail_mean(series(rows, "train/d_real"))
    res["train_d_fake"] = tail_mean(series(rows, "train/d_fake"))
    val_real = series(rows, "val/d_real")
    res["val_d_real"] = val_real[-1][1] if val_real else None
    res["val_d_real_curve"] = val_real
    ada = series(rows, "train/ada_p")
    if ada:
        res["ada_p_curve"] = [ada[int(i * (len(ada) - 1) / 4)] for i in range(5)]
        res["ada_p_max"] = max(v for _, v in ada)
    ev = run_dir / "checkpoints" / "eval.json"
    if ev.exists():
        res["eval"] = json.loads(ev.read_text())
    t = run_dir / "timing.json"
    if t.exists():
        res.update(json.loads(t.read_text()))
    return res


def find_metric(ev: dict, name: str):
    """``test/<name>`` (or ``<name>``) anywhere in genlab.eval's JSON."""
    stack = [ev]
    while stack:
        d = stack.pop()
        if isinstance(d, dict):
            for k, v in d.items():
                if k in (f"test/{name}", name) and isinstance(v, int | float):
                    return v
                if isinstance(v, dict):
                    stack.append(v)
    return None


def fmt(v, digits=3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def write_page(args, cells: list[dict], data: str, command: str) -> None:
    have_cov = any(find_metric(c.get("eval", {}), "coverage_kl") is not None for c in cells)
    lines = [
        "# GANs on scarce data: DCGAN, + DiffAugment, + ADA at 1%, 10% and 100% of the data",
        "",
        f"Data: `data={data}` "
        + (
            "(full Fashion-MNIST: 60,000 training images, 10,000 test images)."
            if data == "fashion_mnist"
            else "(the bundled Fashion-MNIST mini: 6,000 training images, 600 per class, "
            "1,000 test images; the full set was not on this machine), so 1% = 60 images, "
            "10% = 600, 100% = 6,000."
        ),
        f"Each cell: `model=gan` (DCGAN, non-saturating loss, batch-norm D) with "
        f"base_channels={args.width} in G and D, batch {args.batch_size}, **{args.steps} generator "
        f"steps** (the same budget for every cell), `data.subset` class-balanced with "
        f"subset_seed={args.subset_seed}, run seed {args.seed}, {args.threads} CPU thread(s). "
        f"ADA: `model.ada_speed_kimg={args.ada_speed_kimg}` (p can go 0 -> 1 in "
        f"{args.ada_speed_kimg}k images: the paper's 500k assumes runs of millions of images), "
        "target 0.6.",
        "Scored once after training by `genlab.eval` on the **test** split (never trained on): "
        "FD in the shipped classifier's features (`val`/`test` FD, 1,000 samples against the "
        "test split)"
        + (
            ", mode coverage (KL of the class histogram of the samples to the real one, nats; "
            "classes covered)"
            if have_cov
            else ""
        )
        + ".",
        "",
        "Overfitting signal (Karras et al. 2020, Fig. 1): `D(train)` = mean sigmoid of D on the "
        "training reals it is trained on (through the augmentation, mean over the last 20% of "
        "logged steps), `D(held-out)` = on 256 test reals (no augmentation) at the last "
        "validation. A D that memorises its training set scores these apart.",
        "",
        "Command (reproduces the table; one line):",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs "
        f"(load average {'when this page was rebuilt' if args.report_only else 'at start'} "
        f"{args.load_at_start}); Python {platform.python_version()}. "
        "Minutes are wall-clock per cell (training + scoring) on that shared machine.",
        "",
    ]
    header = "| data | augment | train images | FD (test) ↓ |"
    sep = "|---|---|---|---|"
    if have_cov:
        header += " coverage KL ↓ | classes covered |"
        sep += "---|---|"
    header += " D(train) | D(held-out) | D(fake) | ADA p (start→end, max) | minutes |"
    sep += "---|---|---|---|---|"
    lines += [header, sep]
    for c in cells:
        ev = c.get("eval", {})
        if not ev:
            lines.append(
                f"| {c['fraction']:.0%} | {c['augment']} | {fmt(c.get('num_train'))} | "
                "not run (or not finished) in the time this page was made |"
            )
            continue
        row = (
            f"| {c['fraction']:.0%} | {c['augment']} | {fmt(c.get('num_train'))} | "
            f"{fmt(find_metric(ev, 'fid'))} |"
        )
        if have_cov:
            row += (
                f" {fmt(find_metric(ev, 'coverage_kl'))} |"
                f" {fmt(find_metric(ev, 'classes_covered'))} |"
            )
        ada = c.get("ada_p_curve")
        ada_s = (
            " → ".join(f"{v:.2f}" for _, v in ada) + f" (max {c['ada_p_max']:.2f})" if ada else "–"
        )
        minutes = c.get("train_s", 0) / 60 + c.get("eval_s", 0) / 60
        status = "" if c.get("train_rc", 0) == 0 else f" (train rc {c['train_rc']})"
        row += (
            f" {fmt(c.get('train_d_real'))} | {fmt(c.get('val_d_real'))} |"
            f" {fmt(c.get('train_d_fake'))} | {ada_s} | {minutes:.1f}{status} |"
        )
        lines.append(row)
    summary = []
    for fraction in sorted({c["fraction"] for c in cells}):
        fds = {
            c["augment"]: find_metric(c.get("eval", {}), "fid")
            for c in cells
            if c["fraction"] == fraction
        }
        base = fds.get("none")
        parts = []
        for aug, fd in fds.items():
            if aug != "none" and fd is not None and base:
                parts.append(f"{aug} {fd:.1f} ({(fd - base) / base:+.0%})")
        if base is not None and parts:
            summary.append(f"- {fraction:.0%}: DCGAN FD {base:.1f}; " + ", ".join(parts) + ".")
    if summary:
        lines += ["", "FD against the plain DCGAN at the same data size (one seed each):", ""]
        lines += summary
    lines += [
        "",
        "ADA p is sampled at 0%, 25%, 50%, 75% and 100% of the logged steps (`train/ada_p`, "
        "in each run's csv/metrics.csv).",
        "",
        f"Held-out D output over training (`val/d_real` every {args.val_every} steps):",
        "",
        "| data | augment | val/d_real by step |",
        "|---|---|---|",
    ]
    for c in cells:
        curve = ", ".join(f"{s}: {v:.2f}" for s, v in c.get("val_d_real_curve", []))
        lines.append(f"| {c['fraction']:.0%} | {c['augment']} | {curve or '–'} |")
    lines.append("")
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--augments", nargs="+", default=["none", "diffaugment", "ada"])
    p.add_argument("--steps", type=int, default=800, help="generator steps per cell")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=32, help="base_channels of G and D")
    p.add_argument("--ada-speed-kimg", type=float, default=10)
    p.add_argument("--val-every", type=int, default=200, help="steps between val/d_real")
    p.add_argument("--val-batches", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "scarce_data")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--retrain", action="store_true", help="train cells with a last.ckpt again")
    args = p.parse_args()
    args.load_at_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    data = "fashion_mnist" if full_fashion_mnist_present() else "fashion_mnist_mini"
    py = sys.executable
    cells = []
    for fraction in args.fractions:
        for augment in args.augments:
            run_dir = (args.out / f"{fraction:g}_{augment}").resolve()
            cell = {"fraction": fraction, "augment": augment, "run_dir": str(run_dir)}
            timing = run_dir / "timing.json"
            ckpt = run_dir / "checkpoints" / "last.ckpt"
            done = timing.exists() and ckpt.exists() and not args.retrain
            if not args.report_only and done and not scored_on_test(run_dir):
                cell.update(json.loads(timing.read_text()))  # trained: score it again
                t0 = time.time()
                cell["eval_rc"] = score(py, ckpt, run_dir, args.threads)
                cell["eval_s"] = time.time() - t0
            elif not args.report_only and not done:
                shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished or retrained cell
                run_dir.mkdir(parents=True, exist_ok=True)
                t0 = time.time()
                overrides = train_overrides(args, data, fraction, augment, run_dir)
                cell["train_rc"] = run(
                    [py, "-m", "genlab.train", *overrides], run_dir / "train.out"
                )
                cell["train_s"] = time.time() - t0
                t0 = time.time()
                if ckpt.exists():
                    cell["eval_rc"] = score(py, ckpt, run_dir, args.threads)
                cell["eval_s"] = time.time() - t0
            if not args.report_only and "train_s" in cell:
                keys = ("train_rc", "train_s", "eval_s", "eval_rc")
                timing.write_text(json.dumps({k: cell[k] for k in keys if k in cell}))
                print(
                    f"{fraction:g} {augment}: train {cell['train_s']:.0f}s rc "
                    f"{cell['train_rc']}, eval {cell['eval_s']:.0f}s",
                    flush=True,
                )
            cell.update(cell_result(run_dir))
            n = {"fashion_mnist": 60000, "fashion_mnist_mini": 6000}[data]
            cell["num_train"] = min(n, max(1, round(fraction * n)))
            cells.append(cell)
            write_page(
                args,
                cells,
                data,
                "python benchmarks/scarce_data.py "
                + " ".join(sys.argv[1:]).replace("--report-only", "").strip(),
            )
    (args.out / "results.json").parent.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(cells, indent=1, default=str))
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()

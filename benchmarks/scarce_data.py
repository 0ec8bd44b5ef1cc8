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

    python benchmarks/scarce_data.py --seeds 0 1 2       # the grid per seed, then the page
    python benchmarks/scarce_data.py --seeds 0 1 2 --report-only   # rebuild it from finished runs
    python benchmarks/scarce_data.py --fractions 0.01 --augments none ada --steps 300

Seeds are the outer loop (all cells of seed 0, then of seed 1, ...), so a run cut short loses
seeds, never cells; finished cells (``timing.json`` + ``last.ckpt``) are not trained again.

Writes ``docs/results/scarce_data.md`` (mean ± std over the scored seeds per cell, FD against
the plain DCGAN with every seed's value), ``docs/results/img/scarce_data_curves.png`` (ADA's p
and D's output on training and held-out reals against step) and ``<out>/results.json``. The
page's hand-written part, below its ``<!-- hand-written below`` marker, is kept on every
rewrite; when the generated numbers changed since it was written, a note above it says so
until ``--findings-checked`` is given.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
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
NUM_TRAIN = {"fashion_mnist": 60000, "fashion_mnist_mini": 6000}  # training split sizes
FIGURE_REL = "img/scarce_data_curves.png"  # relative to the page


def full_fashion_mnist_present() -> bool:
    data_dir = Path(os.environ.get("GENLAB_DATA_DIR", ROOT / "data"))
    raw = data_dir / "FashionMNIST" / "raw"
    return all(
        (raw / f"{p}-{k}").exists()
        for p in ("train", "t10k")
        for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )


def train_overrides(
    args, data: str, fraction: float, augment: str, seed: int, run_dir: Path
) -> list[str]:
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
        f"seed={seed}",
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
    res["train_d_real_curve"] = series(rows, "train/d_real")
    res["train_d_real"] = tail_mean(res["train_d_real_curve"])
    res["train_d_fake"] = tail_mean(series(rows, "train/d_fake"))
    val_real = series(rows, "val/d_real")
    res["val_d_real"] = val_real[-1][1] if val_real else None
    res["val_d_real_curve"] = val_real
    ada = series(rows, "train/ada_p")
    if ada:
        res["ada_p_curve"] = [ada[int(i * (len(ada) - 1) / 4)] for i in range(5)]
        res["ada_p_max"] = max(v for _, v in ada)
        res["ada_p_full"] = ada
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


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; None for a single value)."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def fmt_pm(values: list[float], digits: int = 3, decimals: int | None = None) -> str:
    """``mean ± std`` over seeds, both rounded to the mean's ``digits`` significant digits or
    to ``decimals`` places (the value alone for one seed, ``–`` for none)."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return "–"
    m, sd = mean_std(values)
    mag = math.floor(math.log10(abs(m))) if m else 0
    dec = max(0, digits - 1 - mag) if decimals is None else decimals
    return f"{m:.{dec}f}" if sd is None else f"{m:.{dec}f} ± {sd:.{dec}f}"


def cell_values(c: dict) -> dict[str, float | None]:
    """The table's numbers for one scored run."""
    ev = c.get("eval", {})
    d_train, d_held = c.get("train_d_real"), c.get("val_d_real")
    return {
        "fd": find_metric(ev, "fid"),
        "kl": find_metric(ev, "coverage_kl"),
        "classes": find_metric(ev, "classes_covered"),
        "d_train": c.get("train_d_real"),
        "d_held": c.get("val_d_real"),
        "gap": d_train - d_held if d_train is not None and d_held is not None else None,
        "d_fake": c.get("train_d_fake"),
        "minutes": (c.get("train_s", 0) + c.get("eval_s", 0)) / 60,
    }


def aggregate(cells: list[dict], fractions, augments, n_total: int | None = None) -> list[dict]:
    """One group per (fraction, augment), grid order: the per-seed values of every table
    column over the runs that were trained and scored (``eval`` and timing present, train rc
    0)."""
    groups = []
    for fraction in fractions:
        for augment in augments:
            runs = [
                c
                for c in cells
                if c["fraction"] == fraction
                and c["augment"] == augment
                and c.get("eval")
                and "train_s" in c  # timing.json written: trained and scored to the end
                and c.get("train_rc", 0) == 0
            ]
            runs.sort(key=lambda c: c.get("seed", 0))
            vals: dict[str, list[float]] = {}
            for c in runs:
                for k, v in cell_values(c).items():
                    if v is not None:
                        vals.setdefault(k, []).append(float(v))
            failed = [
                c.get("seed", 0)
                for c in cells
                if c["fraction"] == fraction
                and c["augment"] == augment
                and c.get("train_rc", 0) != 0
            ]
            groups.append(
                {
                    "fraction": fraction,
                    "augment": augment,
                    "seeds": [c.get("seed", 0) for c in runs],
                    "failed_seeds": failed,
                    "num_train": (
                        min(n_total, max(1, round(fraction * n_total))) if n_total else None
                    ),
                    "values": vals,
                    "runs": runs,
                }
            )
    return groups


def compare_fd(base: list[float], other: list[float]) -> str:
    """Whether ``other``'s FDs differ from ``base``'s beyond the seeds' spread: only when every
    seed of one is below every seed of the other (non-overlapping ranges) is it called a
    difference."""
    if len(base) < 2 or len(other) < 2:
        return "one seed: the spread is unknown"
    if max(other) < min(base):
        return "lower in every seed (ranges do not overlap)"
    if min(other) > max(base):
        return "higher in every seed (ranges do not overlap)"
    return "the seed ranges overlap: not told apart from seed noise"


def fd_summary(groups: list[dict]) -> list[str]:
    lines = []
    for fraction in dict.fromkeys(g["fraction"] for g in groups):
        row = {g["augment"]: g for g in groups if g["fraction"] == fraction}
        base = row.get("none", {}).get("values", {}).get("fd")
        if not base:
            continue
        seeds = ", ".join(f"{v:.1f}" for v in base)
        parts = [f"DCGAN FD {fmt_pm(base)} (seeds: {seeds})"]
        for aug, g in row.items():
            fd = g["values"].get("fd")
            if aug == "none" or not fd:
                continue
            diff = (mean_std(fd)[0] - mean_std(base)[0]) / mean_std(base)[0]
            parts.append(
                f"{aug} {fmt_pm(fd)} ({diff:+.0%} in the mean; seeds: "
                + ", ".join(f"{v:.1f}" for v in fd)
                + f"): {compare_fd(base, fd)}"
            )
        lines.append(f"- {fraction:.0%}: " + "; ".join(parts) + ".")
    return lines


def mean_curve(curves: list[list[tuple[int, float]]]) -> list[tuple[int, float, float, float]]:
    """(step, mean, min, max) over the runs' curves, at the steps every run logged."""
    by_step: dict[int, list[float]] = {}
    for curve in curves:
        for s, v in curve:
            by_step.setdefault(s, []).append(v)
    n = len(curves)
    return [(s, sum(v) / len(v), min(v), max(v)) for s, v in sorted(by_step.items()) if len(v) == n]


def smooth(curve: list[tuple], window: int) -> list[tuple]:
    """A trailing moving average of each column but the step over ``window`` points."""
    out = []
    for i, (step, *cols) in enumerate(curve):
        part = curve[max(0, i - window + 1) : i + 1]
        out.append((step, *(sum(p[j + 1] for p in part) / len(part) for j in range(len(cols)))))
    return out


HAND_MARKER = "<!-- hand-written below"
STALE_NOTE = "> **Check these findings against the table above:**"


def table_fingerprint(lines: list[str]) -> str:
    """A short hash of the generated numbers (the table rows and FD summary lines), so the page
    can tell when the hand-written findings were written against other numbers."""
    rows = [ln for ln in lines if ln.startswith("| ") or ln.startswith("- ")]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:12]


def merge_hand_section(
    generated: str, fingerprint: str, old_page: str | None, accept: bool = False
) -> tuple[str, bool]:
    """The page: ``generated`` followed by the hand-written section of ``old_page`` (everything
    after its marker line), never dropped. When the generated numbers changed since the
    findings were written (the marker's fingerprint differs), a note above them says so
    (``accept``: the findings were checked, take the new fingerprint). Returns the page and
    whether the findings are flagged as possibly stale."""
    marker = (
        f"{HAND_MARKER}: kept when benchmarks/scarce_data.py rewrites the page; "
        f"written against table {{fp}} -->"
    )
    if old_page and HAND_MARKER in old_page:
        head, _, rest = old_page.partition(HAND_MARKER)
        old_marker, _, hand = rest.partition("\n")
        old_fp = old_marker.split("written against table ")[-1].split()[0]
        hand_lines = hand.split("\n")
        if hand_lines and hand_lines[0].startswith(STALE_NOTE):
            hand_lines.pop(0)  # an earlier rewrite's note, and the blank line after it
            if hand_lines and not hand_lines[0].strip():
                hand_lines.pop(0)
        hand = "\n".join(hand_lines)
        stale = old_fp != fingerprint and not accept
        fp = old_fp if stale else fingerprint
        note = (
            f"{STALE_NOTE} they were written against table {old_fp}, the table is now "
            f"{fingerprint}. Re-read them, then run the command with `--report-only "
            "--findings-checked`.\n\n"
            if stale
            else ""
        )
        return generated + "\n" + marker.format(fp=fp) + "\n" + note + hand, stale
    stub = (
        "## How to read it (written by hand)\n\n"
        "_Not written yet: read the table and the figure, then write the findings here._\n"
    )
    return generated + "\n" + marker.format(fp=fingerprint) + "\n" + stub, False


def plot_curves(groups: list[dict], path: Path) -> None:
    """One PNG: ADA's p against step (ADA cells), and per data size D's mean sigmoid output
    on the training reals (``train/d_real``, dashed, a moving average over 5 logged points)
    and on held-out test reals (``val/d_real``, solid with dots), mean over seeds with the
    seeds' min-max as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = list(dict.fromkeys(g["fraction"] for g in groups))
    colors = {"none": "tab:blue", "diffaugment": "tab:orange", "ada": "tab:green"}
    fig, axes = plt.subplots(1, 1 + len(fractions), figsize=(4.2 * (1 + len(fractions)), 3.6))
    ax = axes[0]
    for i, g in enumerate(g for g in groups if g["augment"] == "ada"):
        curve = mean_curve([c["ada_p_full"] for c in g["runs"] if c.get("ada_p_full")])
        if curve:
            s, m, lo, hi = zip(*curve)
            color = plt.cm.viridis(i / max(1, len(fractions) - 1) * 0.85)
            ax.plot(s, m, color=color, label=f"{g['fraction']:.0%} ({len(g['runs'])} seeds)")
            ax.fill_between(s, lo, hi, color=color, alpha=0.2)
    ax.set(title="ADA: train/ada_p", xlabel="generator step", ylabel="p", ylim=(-0.03, 1.03))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    for ax, fraction in zip(axes[1:], fractions):
        for g in (g for g in groups if g["fraction"] == fraction):
            color = colors.get(g["augment"], "gray")
            for key, style, what, window in (
                ("val_d_real_curve", "o-", "held-out", 1),
                ("train_d_real_curve", "--", "train", 5),
            ):
                curve = smooth(mean_curve([c[key] for c in g["runs"] if c.get(key)]), window)
                if not curve:
                    continue
                s, m, lo, hi = zip(*curve)
                ax.plot(s, m, style, color=color, ms=3, label=f"{g['augment']}, {what}")
                ax.fill_between(s, lo, hi, color=color, alpha=0.12)
        ax.set(
            title=f"{fraction:.0%} of the data: D on reals",
            xlabel="generator step",
            ylabel="mean sigmoid D",
            ylim=(0, 1),
        )
        if ax is axes[1] and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower left")  # the same colours in every panel
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def render_page(args, cells: list[dict], data: str, command: str) -> tuple[str, str]:
    """The generated part of the page (markdown) and its table fingerprint."""
    groups = aggregate(cells, args.fractions, args.augments, NUM_TRAIN.get(data))
    have_cov = any(g["values"].get("kl") for g in groups)
    ev0 = next((c["eval"] for c in cells if c.get("eval")), {})
    n_fake = ev0.get("sample_quality_num_fake", "?")
    n_real = ev0.get("sample_quality_num_real", "?")
    network = ev0.get("sample_quality_network", "?")
    threshold = ev0.get("sample_quality_coverage_threshold", "?")
    seeds_done = sorted({s for g in groups for s in g["seeds"]})
    lines = [
        "# GANs on scarce data: DCGAN, + DiffAugment, + ADA at 1%, 10% and 100% of the data",
        "",
        "<!-- generated by benchmarks/scarce_data.py down to the hand-written marker; "
        "edit the script, not this part -->",
        "",
        f"Data: `data={data}` "
        + (
            "(full Fashion-MNIST: 60,000 training images, 10,000 test images), so 1% = 600 "
            "images, 10% = 6,000, 100% = 60,000."
            if data == "fashion_mnist"
            else "(the bundled Fashion-MNIST mini: 6,000 training images, 600 per class, "
            "1,000 test images; the full set was not on this machine), so 1% = 60 images, "
            "10% = 600, 100% = 6,000."
        ),
        f"Each cell: `model=gan` (DCGAN, non-saturating loss, batch-norm D) with "
        f"base_channels={args.width} in G and D, batch {args.batch_size}, **{args.steps} generator "
        f"steps** (the same budget for every cell: {args.steps * args.batch_size:,} real images "
        f"seen), `data.subset` class-balanced with subset_seed={args.subset_seed} (the same "
        f"images for every seed), run seeds {', '.join(map(str, args.seeds))} "
        f"(scored: {', '.join(map(str, seeds_done)) or 'none yet'}), "
        f"{args.threads} CPU thread(s), one cell at a time. "
        f"ADA: `model.ada_speed_kimg={args.ada_speed_kimg:g}` (p can go 0 -> 1 in "
        f"{args.ada_speed_kimg:g}k images: the paper's 500k assumes runs of millions of images), "
        "target 0.6.",
        "",
        "Scored once after training by `genlab.eval` on the **test** split (never trained on): "
        f"FD in the features of the shipped Fashion-MNIST classifier (`{network}`), "
        f"{n_fake} generated samples against {n_real} test images"
        + (
            "; mode coverage: KL(generated || real) of the classifier's class histograms "
            f"(nats), and classes covered (out of 10): a class counts when it holds at least "
            f"{threshold} of its real share of the samples (argmax of the classifier's logits)"
            if have_cov
            else ""
        )
        + ".",
        "",
        "Overfitting signal (Karras et al. 2020, Fig. 1): `D(train)` = mean sigmoid of D on the "
        "training reals it is trained on (through the augmentation, mean over the last 20% of "
        "logged steps), `D(held-out)` = on "
        f"{args.val_batches * args.batch_size} test reals (no augmentation) at the last "
        "validation, `gap` = D(train) - D(held-out) per seed, `D(fake)` = on generated images "
        "(last 20% of steps). A D that memorises its training set scores training and "
        "held-out reals apart. Part of every gap is a constant offset: D(train) is D in "
        "training mode (batch-norm batch statistics) on augmented reals, D(held-out) D in eval "
        "mode (running statistics) on plain reals, so compare gaps across data sizes rather "
        "than read one gap alone.",
        "",
        "Command (reproduces the table and the figure; one line):",
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
        "Every number is the mean ± standard deviation (n - 1) over the scored seeds.",
        "",
    ]
    header = "| data | augment | train images | seeds | FD (test) ↓ |"
    sep = "|---|---|---|---|---|"
    if have_cov:
        header += " coverage KL ↓ | classes covered |"
        sep += "---|---|"
    header += " D(train) | D(held-out) | gap | D(fake) | minutes |"
    sep += "---|---|---|---|---|"
    lines += [header, sep]
    for g in groups:
        v = g["values"]
        label = f"| {g['fraction']:.0%} | {g['augment']} | {fmt(g['num_train'])} |"
        failed = f" (train failed: seeds {g['failed_seeds']})" if g["failed_seeds"] else ""
        if not g["runs"]:
            lines.append(f"{label} 0{failed} | not run (or not finished) when this page was made |")
            continue
        row = f"{label} {len(g['runs'])}{failed} | {fmt_pm(v.get('fd', []))} |"
        if have_cov:
            row += f" {fmt_pm(v.get('kl', []))} | {fmt_pm(v.get('classes', []), 2)} |"
        row += (
            f" {fmt_pm(v.get('d_train', []))} | {fmt_pm(v.get('d_held', []))} |"
            f" {fmt_pm(v.get('gap', []), decimals=2)} |"
            f" {fmt_pm(v.get('d_fake', []))} | {fmt_pm(v.get('minutes', []), 2)} |"
        )
        lines.append(row)
    total = sum(sum(g["values"].get("minutes", [])) for g in groups)
    n_runs = sum(len(g["runs"]) for g in groups)
    lines += [
        "",
        f"Wall time of the {n_runs} scored runs: {total:.0f} minutes in all (training + "
        "scoring, one run at a time).",
    ]
    summary = fd_summary(groups)
    if summary:
        n = min((len(g["runs"]) for g in groups if g["runs"]), default=0)
        chance = (
            f" With {n} seeds per cell, two cells that differ only by chance give "
            f"non-overlapping ranges with probability 2/C({2 * n},{n}) = "
            f"{2 / math.comb(2 * n, n):.1%}."
            if n >= 2
            else ""
        )
        lines += [
            "",
            "FD (test) against the plain DCGAN at the same data size, with each seed's value "
            f"(a difference is called only when the seed ranges do not overlap).{chance}",
            "",
        ]
        lines += summary
    ada_rows = []
    for g in groups:
        samples = [c["ada_p_curve"] for c in g["runs"] if c.get("ada_p_curve")]
        if samples:
            pts = [sum(s[i][1] for s in samples) / len(samples) for i in range(5)]
            peak = fmt_pm([c["ada_p_max"] for c in g["runs"] if c.get("ada_p_max") is not None])
            ada_rows.append(
                f"| {g['fraction']:.0%} | " + " → ".join(f"{p:.2f}" for p in pts) + f" | {peak} |"
            )
    if ada_rows:
        lines += [
            "",
            "ADA's p (`train/ada_p`), mean over seeds at 0%, 25%, 50%, 75% and 100% of the "
            "logged steps:",
            "",
            "| data | p over training | max p |",
            "|---|---|---|",
            *ada_rows,
        ]
    lines += [
        "",
        "ADA's p, and D's output on training reals (dashed: `train/d_real`, through the "
        "augmentation, moving average over 5 logged points) and on held-out test reals (solid: "
        "`val/d_real`) over training; lines are the mean over seeds, the band the seeds' "
        "min-max:",
        "",
        f"![ADA p and D(real) on training and held-out reals against step]({FIGURE_REL})",
        "",
        "The same series, per run and interactive: `python -m genlab.compare "
        f"{rel(args.out)}/*` (writes report.html with every logged metric against step).",
        "",
        f"Held-out D output over training (`val/d_real` every {args.val_every} steps, mean over "
        "seeds):",
        "",
        "| data | augment | val/d_real by step |",
        "|---|---|---|",
    ]
    for g in groups:
        curve = mean_curve([c["val_d_real_curve"] for c in g["runs"] if c.get("val_d_real_curve")])
        text = ", ".join(f"{s}: {m:.2f}" for s, m, _, _ in curve)
        lines.append(f"| {g['fraction']:.0%} | {g['augment']} | {text or '–'} |")
    return "\n".join(lines) + "\n", table_fingerprint(lines)


def rel(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_page(
    args, cells: list[dict], data: str, command: str, page: Path = PAGE, plot: bool = True
) -> bool:
    """Write the page (generated part + the kept hand-written part) and the figure; returns
    whether the hand-written findings were flagged as written against other numbers."""
    generated, fingerprint = render_page(args, cells, data, command)
    old = page.read_text() if page.exists() else None
    text, stale = merge_hand_section(generated, fingerprint, old, args.findings_checked)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    if plot:
        groups = aggregate(cells, args.fractions, args.augments, NUM_TRAIN.get(data))
        plot_curves(groups, page.parent / FIGURE_REL)
    return stale


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
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="run seeds per cell")
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "scarce_data")
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--page", type=Path, default=PAGE, help="the page to write (figure: img/ beside it)"
    )
    p.add_argument("--retrain", action="store_true", help="train cells with a last.ckpt again")
    p.add_argument(
        "--findings-checked",
        action="store_true",
        help="the hand-written findings were re-read against the new table: drop the page's note",
    )
    args = p.parse_args()
    args.load_at_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    data = "fashion_mnist" if full_fashion_mnist_present() else "fashion_mnist_mini"
    py = sys.executable
    flags = ("--report-only", "--findings-checked", "--retrain")  # not part of the recipe
    command = " ".join(
        ["python benchmarks/scarce_data.py", *(a for a in sys.argv[1:] if a not in flags)]
    )
    cells = []
    grid = [(s, f, a) for s in args.seeds for f in args.fractions for a in args.augments]
    for seed, fraction, augment in grid:  # seeds outermost: a cut run loses seeds, never cells
        run_dir = (args.out / f"{fraction:g}_{augment}_s{seed}").resolve()
        cell = {"fraction": fraction, "augment": augment, "seed": seed, "run_dir": str(run_dir)}
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
            overrides = train_overrides(args, data, fraction, augment, seed, run_dir)
            cell["train_rc"] = run([py, "-m", "genlab.train", *overrides], run_dir / "train.out")
            cell["train_s"] = time.time() - t0
            t0 = time.time()
            if ckpt.exists():
                cell["eval_rc"] = score(py, ckpt, run_dir, args.threads)
            cell["eval_s"] = time.time() - t0
        if not args.report_only and "train_s" in cell:
            keys = ("train_rc", "train_s", "eval_s", "eval_rc")
            timing.write_text(json.dumps({k: cell[k] for k in keys if k in cell}))
            print(
                f"{fraction:g} {augment} s{seed}: train {cell['train_s']:.0f}s rc "
                f"{cell['train_rc']}, eval {cell['eval_s']:.0f}s",
                flush=True,
            )
        cell.update(cell_result(run_dir))
        cells.append(cell)
        if not args.report_only:  # the page so far, after every cell
            write_page(args, cells, data, command, args.page, plot=False)
    stale = write_page(args, cells, data, command, args.page)
    if stale:
        print(
            f"note: {args.page.name}'s hand-written findings were written against other numbers; "
            "re-read them, then rerun with --report-only --findings-checked",
            file=sys.stderr,
        )
    (args.out / "results.json").parent.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(cells, indent=1, default=str))
    print(f"wrote {args.page}")


if __name__ == "__main__":
    main()

"""The table of docs/results/disentanglement.md (issue 34): VAE variants x seeds on
``data=shapes2d``, each trained by ``python -m genlab.train`` and scored by ``python -m
genlab.eval ... disentanglement.metrics=[mig,dci,factor_vae]``, one run at a time.

    python benchmarks/disentanglement.py                   # train + score what is missing
    python benchmarks/disentanglement.py --report-only     # rebuild results.json and the table

Run directories: ``outputs/disentanglement/<variant>_s<seed>`` (``--out``); each gets
``train.out``/``eval.out`` (the commands' output), ``timing.json`` (wall seconds, exit codes)
and the usual ``checkpoints/last.ckpt`` + ``checkpoints/eval.json``. A run with a
``timing.json`` and a checkpoint is not trained again (``--retrain`` forces it); one that is
trained but not scored is scored. The results go to ``<out>/results.json`` and the table
(mean ± sample std over the seeds) replaces the part of the page between the two markers
``<!-- disentanglement-table:start -->`` and ``<!-- disentanglement-table:end -->``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results" / "disentanglement.md"
START = "<!-- disentanglement-table:start -->"
END = "<!-- disentanglement-table:end -->"

# variant -> (label on the page, model overrides)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "beta_vae_b1": (
        "β-VAE, β = 1 (the VAE)",
        ["model=beta_vae", "model.beta=1", "model.kl_warmup_steps=0"],
    ),
    "beta_vae_b4": (
        "β-VAE, β = 4",
        ["model=beta_vae", "model.beta=4", "model.kl_warmup_steps=0"],
    ),
    "beta_vae_b8": (
        "β-VAE, β = 8",
        ["model=beta_vae", "model.beta=8", "model.kl_warmup_steps=0"],
    ),
    "beta_tcvae": ("β-TCVAE (α = γ = 1, β = 6, mws)", ["model=beta_tcvae"]),
    "factor_vae": (
        "FactorVAE (γ = 40, D 2 × 512)",
        ["model=factor_vae", "model.discriminator_hidden_dims=[512,512]"],
    ),
}
# (eval.json key, column title): the split prefix is disentanglement.split's (train)
METRICS = [
    ("train/mig", "MIG"),
    ("train/dci_disentanglement", "DCI disentanglement"),
    ("train/dci_completeness", "DCI completeness"),
    ("train/dci_informativeness_test", "DCI informativeness (test acc.)"),
    ("train/factor_vae_score", "FactorVAE score"),
]
# training terms read from the last logged row of csv/metrics.csv
TERMS = ["train/recon", "train/kl", "train/mi", "train/tc", "train/dwkl", "train/d_accuracy"]


def train_overrides(args, variant: str, seed: int, run_dir: Path) -> list[str]:
    """``genlab.train`` overrides of one run (shown on the page, run as written)."""
    hidden = ",".join(str(h) for h in args.hidden)
    return [
        *VARIANTS[variant][1],
        "data=shapes2d",
        f"data.num_train={args.num_train}",
        "data.num_test=500",
        f"data.batch_size={args.batch_size}",
        "trainer=cpu",
        "trainer.max_epochs=-1",
        f"trainer.max_steps={args.steps}",
        "+trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=100",
        "~callbacks.rich_progress_bar",
        "~callbacks.sample_quality",
        "~callbacks.sample_grid",
        "logger=csv",
        f"num_threads={args.threads}",
        "model.arch=mlp",
        f"model.hidden_dims=[{hidden}]",
        "model.likelihood=bernoulli",
        f"model.optimizer.lr={args.lr:g}",
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
    ]


def eval_overrides(args, ckpt: Path, seed: int) -> list[str]:
    """``genlab.eval`` overrides: the disentanglement metrics only, on a reduced protocol."""
    return [
        f"ckpt_path={ckpt}",
        "num_test_images=50",
        "k=2",
        "k_batch=2",
        "metrics.num_samples=0",
        "disentanglement.metrics=[mig,dci,factor_vae]",
        f"disentanglement.num_images={args.eval_images}",
        "disentanglement.num_points=4000",
        "disentanglement.num_test_points=2000",
        "disentanglement.dci_classifier=logistic",
        "disentanglement.factor_vae_num_train=2000",
        "disentanglement.factor_vae_num_eval=1000",
        f"num_threads={args.threads}",
        f"seed={seed}",
    ]


def trend(args, run_dir: Path, seed: int, py: str) -> None:
    """Score every periodic checkpoint (``epoch_NNN.ckpt``) of a run into
    ``checkpoints/eval_epoch_NNN.json``: the scores along training."""
    for ckpt in sorted((run_dir / "checkpoints").glob("epoch_*.ckpt")):
        out = ckpt.parent / f"eval_{ckpt.stem}.json"
        if not out.exists():
            cmd = [py, "-m", "genlab.eval", *eval_overrides(args, ckpt, seed), f"output={out}"]
            run(cmd, run_dir / f"eval_{ckpt.stem}.out")


def trend_points(run_dir: Path) -> list[tuple[int, float, float]]:
    """(step, MIG, FactorVAE score) of the run's scored periodic checkpoints and last.ckpt."""
    paths = sorted((run_dir / "checkpoints").glob("eval_epoch_*.json"))
    paths.append(run_dir / "checkpoints" / "eval.json")
    points = []
    for path in paths:
        if path.exists():
            data = json.loads(path.read_text())
            mig, fv = data.get("train/mig"), data.get("train/factor_vae_score")
            if data.get("global_step") is not None and mig is not None:
                points.append((int(data["global_step"]), float(mig), float(fv or 0.0)))
    return sorted(set(points))


def mutual_info(run_dir: Path, num_images: int, seed: int, threads: int) -> dict:
    """Per-factor MIG and the (codes x factors) mutual-information matrix (nats) of a run's
    last.ckpt on ``num_images`` training images: which factors the codes carry and how spread
    each factor is over the codes. Written to ``<run>/mi.json``."""
    import numpy as np
    import torch

    from genlab.data.registry import datamodule_from_checkpoint
    from genlab.metrics.disentanglement import encode_factors, mig
    from genlab.models.registry import build_model_from_checkpoint
    from genlab.runs.checkpoints import load_checkpoint

    torch.set_num_threads(threads)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    model = build_model_from_checkpoint(ckpt).eval()
    datamodule = datamodule_from_checkpoint(load_checkpoint(ckpt), {})
    datamodule.setup("test")
    codes, factors = encode_factors(model, datamodule, "train", num_images, 256, "cpu", seed)
    result = mig(codes, factors, 20)
    out = {
        "factor_names": list(datamodule.factor_names),
        "mig_per_factor": [round(v, 4) for v in result["mig_per_factor"]],
        "mutual_info": np.round(result["mutual_info"], 3).tolist(),
        "code_std": np.round(codes.astype(np.float64).std(axis=0), 3).tolist(),
        "num_images": len(codes),
    }
    (run_dir / "mi.json").write_text(json.dumps(out) + "\n")
    return out


def traversals(runs: list[dict], out: Path, img_dir: Path, py: str) -> None:
    """For each variant, the scored seed with the highest MIG: ``genlab.sample mode=traverse``
    (10 latent dimensions walked from -3 to +3 around the posterior means of the first 4 test
    images) into ``<out>/traverse/``, its overview copied to
    ``<img_dir>/disentanglement_<variant>.png``; the choice goes to ``traverse/chosen.json``."""
    folder = out / "traverse"
    folder.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    chosen = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        scored = [r for r in runs if r["variant"] == variant and r.get("metrics")]
        if not scored:
            continue
        best = max(scored, key=lambda r: r["metrics"].get("train/mig", float("-inf")))
        ckpt = Path(best["run_dir"]) / "checkpoints" / "last.ckpt"
        png = folder / f"{variant}.png"
        cmd = [py, "-m", "genlab.sample", f"ckpt_path={ckpt}", "mode=traverse",
               "traverse.center=data", "traverse.directions=10", "traverse.rows=4",
               f"output={png}"]  # fmt: skip
        t0 = time.time()
        rc = run(cmd, folder / f"{variant}.out")
        if rc == 0:
            shutil.copyfile(png, img_dir / f"disentanglement_{variant}.png")
        chosen[variant] = {"seed": best["seed"], "mig": best["metrics"].get("train/mig"),
                           "rc": rc, "seconds": round(time.time() - t0, 1)}  # fmt: skip
        print(f"traversal {variant}: seed {best['seed']}, rc {rc}", flush=True)
    (folder / "chosen.json").write_text(json.dumps(chosen, indent=1) + "\n")


def run(cmd: list[str], log: Path) -> int:
    with log.open("w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode


def last_terms(run_dir: Path) -> dict[str, float]:
    """The last logged value of each of TERMS (csv/metrics.csv), with its step."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.exists():
        return {}
    out: dict[str, float] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            for key in TERMS:
                if row.get(key):
                    out[key] = float(row[key])
                    out["step"] = int(row["step"]) + 1
    return out


def run_result(run_dir: Path) -> dict:
    """What one run left behind: timing.json, eval.json's metrics, the last training terms."""
    out: dict = {}
    timing = run_dir / "timing.json"
    if timing.exists():
        out.update(json.loads(timing.read_text()))
    ev = run_dir / "checkpoints" / "eval.json"
    if ev.exists():
        data = json.loads(ev.read_text())
        out["metrics"] = {k: data[k] for k, _ in METRICS if k in data}
        out["global_step"] = data.get("global_step")
        out["active_dims"] = data.get("train/factor_vae_active_dims")
    out["terms"] = last_terms(run_dir)
    out["trend"] = trend_points(run_dir)
    if (run_dir / "mi.json").exists():
        out["mi"] = json.loads((run_dir / "mi.json").read_text())
    return out


def mean_std(values: list[float]) -> str:
    """``mean ± sample std`` with three decimals (no ± for one value, – for none)."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(runs: list[dict]) -> list[str]:
    """The page's table: one row per variant (in the order first seen), mean ± std over the
    seeds that were scored, and the mean train / eval wall seconds per run."""
    head = (
        "| model | seeds | " + " | ".join(t for _, t in METRICS) + " | train s / eval s per run |"
    )
    lines = [head, "|" + "---|" * (len(METRICS) + 3)]
    for variant in dict.fromkeys(r["variant"] for r in runs):
        rows = [r for r in runs if r["variant"] == variant and r.get("metrics")]
        label = VARIANTS[variant][0] if variant in VARIANTS else variant
        if not rows:
            lines.append(f"| {label} | – | not scored yet |" + " |" * len(METRICS))
            continue
        cells = [mean_std([r["metrics"][k] for r in rows if k in r["metrics"]]) for k, _ in METRICS]
        seeds = ",".join(str(r["seed"]) for r in rows)
        means = []
        for key in ("train_s", "eval_s"):
            values = [r[key] for r in rows if r.get(key) is not None]
            means.append(f"{statistics.mean(values):.0f}" if values else "–")
        secs = " / ".join(means)
        lines.append(f"| {label} | {seeds} | " + " | ".join(cells) + f" | {secs} |")
    return lines


def per_run_table(runs: list[dict]) -> list[str]:
    """Every run's MIG, FactorVAE score and last training terms (the seeds behind the means)."""
    lines = [
        "| run | step | MIG | FactorVAE score | active dims | "
        + " | ".join(f"`{t}`" for t in TERMS)
        + " |",
        "|" + "---|" * (len(TERMS) + 5),
    ]
    for r in runs:
        m, t = r.get("metrics") or {}, r.get("terms") or {}
        vals = [f"{m[k]:.3f}" if k in m else "–" for k in ("train/mig", "train/factor_vae_score")]
        terms = [f"{t[k]:.2f}" if k in t else "–" for k in TERMS]
        lines.append(
            f"| `{r['variant']}_s{r['seed']}` | {t.get('step', '–')} | "
            + " | ".join(vals)
            + f" | {r.get('active_dims', '–')} | "
            + " | ".join(terms)
            + " |"
        )
    return lines


def trend_table(runs: list[dict]) -> list[str]:
    """MIG (FactorVAE score) at each scored checkpoint of the runs that have more than one."""
    rows = [r for r in runs if len(r.get("trend") or []) > 1]
    if not rows:
        return []
    lines = [
        "MIG (FactorVAE score) along training, at the periodic checkpoints:",
        "",
        "| run | " + " | ".join(f"step {s}" for s, _, _ in rows[0]["trend"]) + " |",
        "|" + "---|" * (len(rows[0]["trend"]) + 1),
    ]
    for r in rows:
        cells = [f"{m:.3f} ({f:.2f})" for _, m, f in r["trend"]]
        lines.append(f"| `{r['variant']}_s{r['seed']}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def mi_table(runs: list[dict]) -> list[str]:
    """Per-factor MIG of the runs with a mi.json (``--mi``)."""
    rows = [r for r in runs if r.get("mi")]
    if not rows:
        return []
    names = rows[0]["mi"]["factor_names"]
    lines = [
        "MIG per factor (`python benchmarks/disentanglement.py --mi <run dirs>`, "
        f"{rows[0]['mi']['num_images']} training images):",
        "",
        "| run | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|" + "---|" * (len(names) + 1),
    ]
    for r in rows:
        cells = [f"{v:.3f}" for v in r["mi"]["mig_per_factor"]]
        lines.append(f"| `{r['variant']}_s{r['seed']}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_page(runs: list[dict], command: str, page: Path = PAGE) -> None:
    """Replace the generated part of ``page`` (between START and END) with the tables."""
    block = [
        START,
        "",
        f"Generated by `{command}` (rebuild: add `--report-only`).",
        "",
        *table(runs),
        "",
        "Per run (the last logged training terms, nats per image):",
        "",
        *per_run_table(runs),
        "",
        *trend_table(runs),
        *mi_table(runs),
        END,
    ]
    text = page.read_text() if page.exists() else f"{START}\n{END}\n"
    if START not in text or END not in text:
        raise SystemExit(f"{page} lacks the markers {START} / {END}")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    page.write_text(head + "\n".join(block) + tail)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps per run")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the VAE")
    p.add_argument("--hidden", type=int, nargs="+", default=[512], help="MLP hidden layers")
    p.add_argument("--num-train", type=int, default=20000, help="data.num_train")
    p.add_argument("--eval-images", type=int, default=6000, help="disentanglement.num_images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--trend-seeds",
        type=int,
        nargs="*",
        default=[0],
        help="seeds whose epoch_*.ckpt are scored",
    )
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "disentanglement")
    p.add_argument("--page", type=Path, default=PAGE)
    p.add_argument("--report-only", action="store_true", help="rebuild from the run dirs")
    p.add_argument(
        "--traversals",
        action="store_true",
        help="after the runs: traversal grids of each variant's best seed (by MIG) into "
        "docs/results/img/disentanglement_<variant>.png",
    )
    p.add_argument(
        "--mi",
        type=Path,
        nargs="+",
        help="print (and write to <run>/mi.json) the per-factor MIG and the code x factor "
        "mutual information of these run dirs, then stop",
    )
    p.add_argument("--retrain", action="store_true", help="train runs with a checkpoint again")
    args = p.parse_args()
    if args.mi:
        for run_dir in args.mi:
            out = mutual_info(run_dir, 4000, 0, args.threads)
            print(
                f"{run_dir}: MIG per factor {dict(zip(out['factor_names'], out['mig_per_factor']))}"
            )
            print(f"  code std {out['code_std']}")
            print("  mutual information (nats), one row per code:")
            for code, row in enumerate(out["mutual_info"]):
                print(f"  z[{code}] " + " ".join(f"{v:5.2f}" for v in row))
        return
    py = sys.executable
    command = " ".join(
        ["python benchmarks/disentanglement.py", *(a for a in sys.argv[1:] if a != "--report-only")]
    )
    runs = []
    # seeds outermost: a run cut short loses a seed of every variant, never a whole variant
    for seed in args.seeds:
        for variant in args.variants:
            run_dir = (args.out / f"{variant}_s{seed}").resolve()
            ckpt = run_dir / "checkpoints" / "last.ckpt"
            timing_path = run_dir / "timing.json"
            timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
            if not args.report_only:
                if args.retrain or not (timing and ckpt.exists()):
                    run_dir.mkdir(parents=True, exist_ok=True)
                    for stale in (ckpt, ckpt.parent / "eval.json"):
                        stale.unlink(missing_ok=True)
                    cmd = [py, "-m", "genlab.train", *train_overrides(args, variant, seed, run_dir)]
                    t0 = time.time()
                    timing = {"train_rc": run(cmd, run_dir / "train.out")}
                    timing["train_s"] = round(time.time() - t0, 1)
                    timing["load_avg"] = round(os.getloadavg()[0], 2)
                if ckpt.exists() and not (ckpt.parent / "eval.json").exists():
                    cmd = [py, "-m", "genlab.eval", *eval_overrides(args, ckpt, seed)]
                    t0 = time.time()
                    timing["eval_rc"] = run(cmd, run_dir / "eval.out")
                    timing["eval_s"] = round(time.time() - t0, 1)
                timing_path.write_text(json.dumps(timing) + "\n")
                if seed in args.trend_seeds:
                    trend(args, run_dir, seed, py)
            result = {"variant": variant, "seed": seed, "run_dir": str(run_dir)}
            result.update(run_result(run_dir))
            print(
                f"{variant}_s{seed}: train {result.get('train_s', '-')} s, "
                f"eval {result.get('eval_s', '-')} s, {result.get('metrics')}",
                flush=True,
            )
            runs.append(result)
            if not args.report_only:
                write_page(runs, command, args.page)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(runs, indent=1) + "\n")
    write_page(runs, command, args.page)
    if args.traversals:
        traversals(runs, args.out, ROOT / "docs" / "results" / "img", py)
    print(f"wrote {args.out / 'results.json'} and {args.page}")


if __name__ == "__main__":
    main()

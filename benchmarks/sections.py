"""The sections of ``benchmarks/run.py``; each returns a list of table rows (dicts)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import training_rates as tr

HERE = Path(__file__).resolve().parent
SHARED_DATA = HERE.parent.parent / "shared" / "data"  # full MNIST, when present
DEFAULT_CALLBACKS = [
    "model_checkpoint",
    "sample_grid",
    "sample_quality",
    "best_checkpoint",
    "rich_progress_bar",
    "elapsed_time",
    "divergence",
    "preemption",
]


@dataclass
class Context:
    """Shared state of one benchmark run: scratch dir, mode, rates measured so far."""

    work: Path
    quick: bool
    rates: dict = field(default_factory=dict)  # model -> section-1 result
    runs: int = 0

    def run_dir(self) -> Path:
        self.runs += 1
        return self.work / "runs" / f"{self.runs:03d}"

    def folder(self, ext: str = "png") -> Path:
        return tr.write_image_folder(self.work / f"images_{ext}", 1500, 64, ext)

    def overrides(self, model: str) -> list[str]:
        extra = []
        if model == "dcgan64":  # folder data has no shipped classifier: no per-epoch FID
            extra = [f"data.path={self.folder()}", "metrics.every_n_epochs=0"]
        return tr.MODELS[model] + extra

    def compose(self, model: str, *more: str):
        return tr.compose_train(self.run_dir(), self.overrides(model) + list(more), self.cache)

    @property
    def cache(self) -> Path:
        return self.work / "cache"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def row(section: str, name: str, value, unit: str = "", note: str = "", key: str | None = None):
    return {"section": section, "name": name, "value": value, "unit": unit, "note": note,
            "key": key, "load": load()}  # fmt: skip


def max_batches(model: str) -> int:
    """Timed batches that fit in the first epoch after the warm-up (no epoch-end work)."""
    per_epoch = 1350 // 64 if model == "dcgan64" else 6000 // 64
    return per_epoch - tr.WARMUP_BATCHES - 1


def hand_loop(ctx: Context, model: str, threads: int | None = None) -> tr.HandLoop:
    from genlab.cli.task import configure_threads

    cfg = ctx.compose(model)
    if threads is None:
        configure_threads(cfg)
    else:
        torch.set_num_threads(threads)
    return tr.HandLoop(cfg, tr.train_images(cfg))


def calibrate(hand: tr.HandLoop, seconds: float, limit: int) -> int:
    """Batches that take about ``seconds`` in the hand loop (3 .. limit)."""
    rate = hand.rate(2, warmup=1) / hand.batch_size
    return max(3, min(limit, int(seconds * rate)))


def ratio_rows(section, name, res, key) -> list[dict]:
    note = (
        f"genlab {res['framework_img_s']} vs hand {res['hand_img_s']} img/s, "
        f"rounds {res['ratios']}, threads {res['threads']}; batch ms: genlab "
        f"{res['plain_ms']} (+{res['written_extra_ms']} when written) vs hand {res['hand_ms']}"
    )
    return [
        row(section, name, res["ratio"], "x hand", note, key),
        row(section, f"{name} (CPU time)", res["cpu_ratio"], "x hand", "", f"cpu_{key}"),
    ]


# ---------------------------------------------------------------------------- 1 overhead
def overhead(ctx: Context) -> list[dict]:
    rounds, seconds = (1, 1.5) if ctx.quick else (3, 4.0)
    out = []
    for model in tr.MODELS:
        if model in tr.ZOO and ctx.quick:
            out.append(row("overhead", f"{model} train img/s genlab/hand", "skipped", "",
                           "full run only"))  # fmt: skip
            continue
        hand = hand_loop(ctx, model)
        batches = calibrate(hand, seconds, max_batches(model))
        n = 1 if model in tr.ZOO else rounds  # the zoo presets: one round each (time)
        res = tr.interleaved_ratio(lambda m=model: ctx.compose(m), hand, batches, n)
        ctx.rates[model] = {**res, "batches": batches, "hand": hand}
        out += ratio_rows("overhead", f"{model} train img/s genlab/hand", res, f"ratio_{model}")
        out.append(batch_gap_row(model, hand, res))
    return out


def batch_gap_row(model: str, hand: tr.HandLoop, res: dict) -> dict:
    """Where a batch's extra time goes: genlab's ordinary (unwritten) batch minus the hand
    loop's, by median, and what a batch whose metrics Lightning writes adds on top. With
    ``n_critic`` > 1 batches with and without a G step differ, so the medians would compare
    unlike batches: the row then gives the mean batch times instead."""
    n_critic = int(getattr(hand.model.config, "n_critic", 1) or 1)
    if n_critic > 1:
        size = hand.batch_size
        gap = 1000 * size / res["framework_img_s"] - 1000 * size / res["hand_img_s"]
        note = f"mean batch times (n_critic {n_critic}: a G step every {n_critic} batches)"
        return row("overhead", f"{model} batch genlab - hand", round(gap, 2), "ms", note,
                   f"gap_ms_{model}")  # fmt: skip
    gap = round(res["plain_ms"] - res["hand_ms"], 2)
    note = f"+{res['written_extra_ms']} ms on each batch Lightning writes (log_every_n_steps)"
    return row("overhead", f"{model} unwritten batch genlab - hand", gap, "ms", note,
               f"gap_ms_{model}")  # fmt: skip


# ---------------------------------------------------------------------------- 2 callbacks
def callback_cost(ctx: Context) -> list[dict]:
    models = ["vae"] if ctx.quick else ["vae", "gan_mlp"]
    offs = ["rich_progress_bar", "elapsed_time", "divergence"] if ctx.quick else DEFAULT_CALLBACKS
    out = []
    for model in models:
        base = ctx.rates.get(model)
        hand = base["hand"] if base else hand_loop(ctx, model)
        batches = base["batches"] if base else calibrate(hand, 1.5, max_batches(model))
        variants = {f"~{c}": [f"~callbacks.{c}"] for c in offs}
        variants["~logger"] = ["~logger"]
        variants["all off"] = [f"~callbacks.{c}" for c in DEFAULT_CALLBACKS] + ["~logger"]
        for label, more in variants.items():
            res = tr.interleaved_ratio(lambda m=model, x=more: ctx.compose(m, *x), hand, batches, 1)
            key = f"ratio_{model}_no_{label.strip('~').replace('=', '_').replace(' ', '_')}"
            out += ratio_rows("callbacks", f"{model} {label}", res, key)
    return out


# ---------------------------------------------------------------------------- 3 start-up
def _env() -> dict:
    env = dict(os.environ)
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), src, env.get("PYTHONPATH", "")])
    env["WANDB_MODE"], env["WANDB_SILENT"] = "offline", "true"
    return env


def _timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode


def startup(ctx: Context) -> list[dict]:
    n = 1 if ctx.quick else 3
    train = [sys.executable, "-m", "genlab.train"]
    ctx.work.mkdir(parents=True, exist_ok=True)
    out = []
    for label, args, code in [
        ("--cfg job", ["--cfg", "job"], 0),
        ("--help", ["--help"], 0),
        ("config error (model.latnt_dim=8)", ["model.latnt_dim=8"], 2),
        ("model value error (model.latent_dim=-3)", ["model.latent_dim=-3"], 2),
    ]:
        times = []
        for _ in range(n):
            seconds, rc = _timed(train + args, ctx.work)
            times.append(seconds if rc == code else float("nan"))
        out.append(row("start-up", label, round(statistics.median(times), 2), "s",
                       f"runs {[round(t, 2) for t in times]} (exit {code} expected)"))  # fmt: skip
    firsts = []
    for _ in range(n):
        stamp, run_dir = ctx.work / "first_step.txt", ctx.run_dir()
        stamp.unlink(missing_ok=True)
        launch = time.time()
        _timed(train + ["model=vae", f"hydra.run.dir={run_dir}", "trainer.max_steps=1",
                        "+callbacks.first_step._target_=training_rates.FirstStepStamp",
                        f"+callbacks.first_step.path={stamp}"], ctx.work)  # fmt: skip
        firsts.append(float(stamp.read_text()) - launch if stamp.exists() else float("nan"))
    out.append(row("start-up", "launch -> first training step (vae)",
                   round(statistics.median(firsts), 2), "s", f"runs {[round(t, 2) for t in firsts]}"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------- 4 data path
def _delivered(dm, seconds: float) -> float:
    """Images/s of the datamodule's training loader alone (with its uint8 -> float step)."""
    dm.setup("fit")
    images, start = 0, time.perf_counter()
    for batch in dm.train_dataloader():
        images += len(dm.on_after_batch_transfer(batch, 0)["image"])
        if time.perf_counter() - start > seconds:
            break
    return images / (time.perf_counter() - start)


def data_path(ctx: Context) -> list[dict]:
    import hydra.utils

    seconds = 1.0 if ctx.quick else 3.0
    sources = {"bundled": ("vae", [])}
    mnist = Path(os.environ.get("GENLAB_DATA_DIR", SHARED_DATA))
    if (mnist / "MNIST" / "raw").is_dir():
        sources["mnist"] = ("vae", ["data=mnist", f"paths.data_dir={mnist}"])
    sources["folder png 64px"] = ("dcgan64", [])
    sources["folder jpeg 64px"] = ("dcgan64", [f"data.path={ctx.folder('jpg')}"])
    fastest = max((r["framework_img_s"] for r in ctx.rates.values()), default=None)
    out = []
    for label, (model, more) in sources.items():
        cfg = ctx.compose(model, *more)
        torch.set_num_threads(1)
        rate = _delivered(hydra.utils.instantiate(cfg.data), seconds)
        consumer = (
            ctx.rates.get(model, {}).get("framework_img_s") if model == "dcgan64" else fastest
        )
        if consumer:
            out.append(row("data", f"{label}: delivered / consumed", round(rate / consumer, 1),
                           "x", f"{rate:.0f} img/s alone vs {consumer:.0f} consumed by training"))  # fmt: skip
        else:
            out.append(row("data", f"{label}: delivered", round(rate), "img/s"))
    return out


# ---------------------------------------------------------------------------- 5 scaling
def scaling(ctx: Context) -> list[dict]:
    if ctx.quick:
        return [row("scaling", "gan ddp_cpu(2) / 1 process", "skipped", "", "full run only")]
    batches = 25
    rates = {}
    for label, trainer in [
        ("1 process", "trainer=cpu"),
        ("ddp_cpu 2 processes", "trainer=ddp_cpu"),
    ]:
        result, run_dir = ctx.work / "rate.json", ctx.run_dir()
        result.unlink(missing_ok=True)
        _timed([sys.executable, "-m", "genlab.train", trainer, f"hydra.run.dir={run_dir}",
                "trainer.min_epochs=0", "~callbacks.sample_quality",
                "+callbacks.rate._target_=training_rates.RateFile",
                f"+callbacks.rate.path={result}", "+callbacks.rate.warmup=3",
                f"+callbacks.rate.batches={batches}"], ctx.work)  # fmt: skip
        rates[label] = json.loads(result.read_text())["images_per_s"] if result.exists() else None
    one, two = rates["1 process"], rates["ddp_cpu 2 processes"]
    note = f"gan img/s: 1 process {one and round(one)}, 2 processes {two and round(two)}"
    value = round(two / one, 2) if one and two else float("nan")
    return [row("scaling", "gan ddp_cpu(2) / 1 process", value, "x", note, "ratio_ddp_cpu")]


# ---------------------------------------------------------------------------- 6 flops
def flops(ctx: Context) -> list[dict]:
    out = []
    # the peak on the threads the training runs used (section 1), else the current count
    used = [max(r["threads"]) for r in ctx.rates.values() if r.get("threads")]
    threads = max(used, default=torch.get_num_threads())
    peak = tr.matmul_gflops(threads, seconds=0.5 if ctx.quick else 2.0)
    out.append(row("flops", f"fp32 matmul 1024^2, {threads} threads", round(peak, 1), "GFLOP/s"))
    for model in tr.MODELS:
        base = ctx.rates.get(model)
        if model in tr.ZOO and not base:
            continue  # quick run: the zoo presets are measured in the full run only
        hand = base["hand"] if base else hand_loop(ctx, model)
        gflop = tr.step_flops(hand) / 1e9
        rate = base["framework_img_s"] if base else hand.rate(5)
        achieved = gflop * rate / hand.batch_size
        out.append(row("flops", f"{model} train step achieved / matmul", round(achieved / peak, 3),
                       "x peak", f"{gflop:.2f} GFLOP/step, {achieved:.1f} GFLOP/s",
                       f"flops_fraction_{model}"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------- 7 inception
def inception(ctx: Context) -> list[dict]:
    import inception_options

    return inception_options.rows(ctx.quick, row)


# ---------------------------------------------------------------------------- 8 threads
def threads(ctx: Context) -> list[dict]:
    from genlab.cli.task import configure_threads

    rounds = 1 if ctx.quick else 2
    hand = ctx.rates.get("gan", {}).get("hand") or hand_loop(ctx, "gan")
    cfg = ctx.compose("gan")
    batches = 3 if ctx.quick else 8
    out = []
    for condition in ["quiet", "one core busy"]:
        busy = None
        if condition != "quiet":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            rates = {"1": [], "2": [], "genlab": []}
            chosen = []
            for _ in range(rounds):
                for label in rates:
                    if label == "genlab":
                        chosen.append(configure_threads(cfg))
                    else:
                        torch.set_num_threads(int(label))
                    rates[label].append(hand.rate(batches, warmup=1))
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        med = {k: statistics.median(v) for k, v in rates.items()}
        best = max(med["1"], med["2"])
        note = ", ".join(f"{k} threads {v:.0f} img/s" for k, v in med.items()) + f"; chose {chosen}"
        key = "threads_" + condition.replace(" ", "_")
        out.append(row("threads", f"gan hand loop, {condition}: genlab/best fixed",
                       round(med["genlab"] / best, 3), "x", note, key))  # fmt: skip
    return out


# ---------------------------------------------------------------------------- 9 options
OPTIONS = {  # label -> overrides switching the option on
    "channels_last": ["model.channels_last=true"],
    "bf16-mixed": ["trainer.precision=bf16-mixed"],
    "compile": ["model.compile=true"],  # full run only: compiling takes minutes on a CPU
}


def options(ctx: Context) -> list[dict]:
    """Training images/s of ``genlab.train`` with each speed option on / off (the default
    GAN and VAE), runs alternating; compilation happens inside the untimed warm-up batches."""
    rounds, seconds = (1, 1.0) if ctx.quick else (2, 3.0)
    out = []
    for model in ("gan", "vae"):
        base = ctx.rates.get(model)
        hand = base["hand"] if base else hand_loop(ctx, model)
        batches = base["batches"] if base else calibrate(hand, seconds, max_batches(model))
        for label, more in OPTIONS.items():
            name, key = f"{model} {label} on / off", f"option_{label.split('-')[0]}_{model}"
            if label == "compile" and ctx.quick:
                out.append(row("options", name, "skipped", "", "full run only"))
                continue
            rates: dict[str, list[float]] = {"off": [], "on": []}
            try:
                for _ in range(1 if label == "compile" else rounds):  # a compile: ~1 min
                    rates["off"].append(tr.framework_rate(ctx.compose(model), batches)["img_s"])
                    on = tr.framework_rate(ctx.compose(model, *more), batches)
                    rates["on"].append(on["img_s"])
            except Exception as err:  # noqa: BLE001 - e.g. no C++ compiler for torch.compile
                out.append(row("options", name, "unavailable", "", f"{err}"[:160]))
                continue
            ratios = [a / b for a, b in zip(rates["on"], rates["off"])]
            note = (
                f"on {statistics.median(rates['on']):.0f} vs off "
                f"{statistics.median(rates['off']):.0f} img/s, rounds "
                f"{[round(r, 3) for r in ratios]}, {batches} batches"
            )
            out.append(
                row("options", name, round(statistics.median(ratios), 3), "x off", note, key)
            )
    return out

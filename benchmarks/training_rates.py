"""Training images/s of ``genlab.train`` (in-process, default config) and of a hand-written loop
doing the same math on the same nets, batch, optimisers and in-memory data.

Used by ``benchmarks/run.py``; every function works on composed configs (``compose_train``).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import genlab

CONF_DIR = Path(genlab.__file__).parent / "conf"
MODELS: dict[str, list[str]] = {  # benchmark name -> overrides of python -m genlab.train
    "gan": ["model=gan"],  # the plain DCGAN (the default run is model=cpu_gan)
    "vae": ["model=vae"],
    "gan_mlp": ["model=gan_mlp"],
    "dcgan64": ["model=gan", "data=folder", "data.image_size=64", "data.channels=3"],  # + data.path
    # the model-zoo presets on the bundled data, at widths a CPU runs in seconds per batch;
    # penalties the hand loop does not compute (lazy R1, path length, orthogonal reg.) are off
    "resnet_gan": [
        "model=resnet_gan", "data.image_size=32",
        "model.generator.base_channels=16", "model.discriminator.base_channels=16",
    ],
    "biggan": [
        "model=biggan", "data.image_size=32", "model.ortho_reg=0",
        "model.generator.base_channels=16", "model.discriminator.base_channels=16",
    ],
    "stylegan2": [
        "model=stylegan2", "data.image_size=32", "model.r1_gamma=0", "model.pl_weight=0",
        "model.latent_dim=128", "model.generator.w_dim=128",
        "model.generator.channel_base=1024", "model.generator.channel_max=64",
        "model.discriminator.channel_base=1024", "model.discriminator.channel_max=64",
    ],
    "vamp_vae": ["model=vamp_vae"],
    "iwae_2layer": ["model=iwae_2layer"],
    "topdown_vae": ["model=topdown_vae", "model.width=16"],
    "vqvae": ["model=vqvae"],
}  # fmt: skip
ZOO = ("resnet_gan", "biggan", "stylegan2", "vamp_vae", "iwae_2layer", "topdown_vae", "vqvae")
# Untimed batches before timing starts. genlab: past the first step Lightning writes
# (trainer.log_every_n_steps = 10), whose one-time cost (registering each logged key, the
# loggers' first record: ~0.2 s once per run, measured) is start-up, not per-step overhead;
# the hand loop has no such first-time work, and 3 batches warm up its allocator and kernels.
WARMUP_BATCHES = 11
HAND_WARMUP_BATCHES = 3
SKIP_AFTER_STOP = ("SampleQualityCallback", "SampleGridCallback")  # epoch-end work, untimed


def compose_train(out_dir: Path, overrides: list[str], cache_dir: Path) -> DictConfig:
    """The config ``python -m genlab.train <overrides>`` composes, writing into ``out_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = cfg.hydra.runtime.cwd = str(out_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir, cfg.paths.log_dir = str(out_dir), str(out_dir / "logs")
        cfg.paths.cache_dir = str(cache_dir)
        del cfg.hydra
    return cfg


class StepTimer(pl.Callback):
    """Wall time of ``batches`` training batches after ``warmup`` ones; stops training then.

    Also each timed batch's own wall time and whether Lightning wrote its step metrics to the
    loggers (``genlab.compat.lightning_writes_logs_now``), so the report can split the cost
    of an ordinary batch from that of a written one."""

    last: dict[str, float] = {}  # filled at the end of each timed run (seconds, batches)

    def __init__(self, warmup: int, batches: int):
        self.warmup, self.batches, self.seen, self.start, self.cpu = warmup, batches, 0, 0.0, 0.0
        self.batch_start, self.durations, self.written = 0.0, [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.seen == self.warmup:
            self.start, self.cpu = time.perf_counter(), time.process_time()
        self.batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        from genlab.compat import lightning_writes_logs_now

        self.seen += 1
        if self.seen > self.warmup:
            self.durations.append(time.perf_counter() - self.batch_start)
            self.written.append(lightning_writes_logs_now(trainer))
        if self.seen == self.warmup + self.batches:
            StepTimer.last = {
                "seconds": time.perf_counter() - self.start,
                "cpu_seconds": time.process_time() - self.cpu,
                "batches": self.batches,
                **batch_split(self.durations, self.written),
            }
            trainer.should_stop = True
            for callback in trainer.callbacks:  # the measurement is over: skip epoch-end work
                if type(callback).__name__ in SKIP_AFTER_STOP:
                    callback.every_n_epochs = 10**9  # never due again


def batch_split(durations: list[float], written: list[bool]) -> dict[str, float]:
    """Median ms of the batches whose metrics were not written (``plain_ms``) and how much
    longer, by median, the written ones took (``written_extra_ms``; 0 when none was)."""
    plain = [d for d, w in zip(durations, written) if not w] or durations
    wrote = [d for d, w in zip(durations, written) if w]
    plain_ms = 1000 * statistics.median(plain)
    extra = 1000 * statistics.median(wrote) - plain_ms if wrote else 0.0
    return {"plain_ms": plain_ms, "written_extra_ms": extra}


class FirstStepStamp(pl.Callback):
    """Writes the wall-clock time (``time.time()``) of the first training batch to ``path``."""

    def __init__(self, path: str):
        self.path, self.done = path, False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.done:
            self.done = True
            Path(self.path).write_text(str(time.time()))


class RateFile(pl.Callback):
    """Rank 0 writes ``{"images_per_s": ..}`` (all ranks together) over ``batches`` batches
    after ``warmup`` ones to ``path``, then stops training."""

    def __init__(self, path: str, warmup: int, batches: int):
        self.path, self.timer = path, StepTimer(warmup, batches)

    def on_train_batch_start(self, *args) -> None:
        self.timer.on_train_batch_start(*args)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        StepTimer.last = {}
        self.timer.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if StepTimer.last and trainer.is_global_zero:
            images = StepTimer.last["batches"] * len(batch["image"]) * trainer.world_size
            rate = images / StepTimer.last["seconds"]
            Path(self.path).write_text(json.dumps({"images_per_s": rate}))


def framework_rate(cfg: DictConfig, batches: int) -> dict[str, float]:
    """Images/s of ``genlab.train.train(cfg)`` over ``batches`` batches after the warm-up:
    per wall second (``img_s``) and per second of this process's CPU time (``cpu_img_s``)."""
    from genlab.train import train

    with open_dict(cfg):
        cfg.trainer.min_epochs = 0  # lets StepTimer stop mid-epoch (no effect on step cost)
        cfg.trainer.max_epochs = 1
        # after the timed batches: no validation (FID & co.) when StepTimer stops the run, and
        # no sanity check before it; neither changes the cost of a training step
        cfg.trainer.limit_val_batches = 0
        cfg.callbacks.bench_step_timer = {
            "_target_": f"{StepTimer.__module__}.StepTimer",
            "warmup": WARMUP_BATCHES,
            "batches": batches,
        }
    StepTimer.last = {}
    train(cfg)
    if not StepTimer.last:
        raise RuntimeError(f"training ended before {WARMUP_BATCHES + batches} batches")
    images = StepTimer.last["batches"] * cfg.data.batch_size
    return {
        "img_s": images / StepTimer.last["seconds"],
        "cpu_img_s": images / StepTimer.last["cpu_seconds"],
        "plain_ms": StepTimer.last["plain_ms"],
        "written_extra_ms": StepTimer.last["written_extra_ms"],
    }


def train_images(cfg: DictConfig, max_images: int = 6000) -> torch.Tensor:
    """The datamodule's training images as float32 (N, C, H, W) in [0, 1], in memory."""
    import hydra.utils

    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    return dm.images("train", max_images).float().div_(255.0)


class HandLoop:
    """A plain PyTorch loop over the same nets (built from ``cfg.model``), optimisers and loss
    functions as genlab's model, on in-memory data ``images`` (N, C, H, W) in [0, 1]."""

    def __init__(self, cfg: DictConfig, images: torch.Tensor):
        import hydra.utils

        from genlab.models.base import build_optimizer

        self.model = hydra.utils.instantiate(cfg.model)
        self.model.train()
        self.images, self.batch_size = images, int(cfg.data.batch_size)
        self.family = self.model.family
        c = self.model.config
        if self.family == "gan":
            self.opt_d = build_optimizer(c.optimizer_d, self.model.discriminator.parameters())
            self.opt_g = build_optimizer(c.optimizer_g, self.model.generator.parameters())
        else:
            self.opt = build_optimizer(c.optimizer, self.model.parameters())
        self.order, self.position = torch.randperm(len(images)), 0
        self.d_steps = 0

    def batch(self) -> torch.Tensor:
        """The next (B, C, H, W) batch of a random permutation (drop_last)."""
        if self.position + self.batch_size > len(self.order):
            self.order, self.position = torch.randperm(len(self.images)), 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.images[index]

    def step(self, x: torch.Tensor) -> None:
        """One training step: GAN = one D step, then every ``n_critic``-th batch one G step
        (model.loss, D frozen) and the EMA update (random labels when conditional); the other
        families = one optimizer step on ``loss_terms``."""
        m = self.model
        if self.family != "gan":
            loss = m.loss_terms(x)["loss"]
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            return
        real, c = x * 2.0 - 1.0, m.config
        labels = torch.randint(0, c.num_classes, (len(x),)) if c.conditional else None
        with torch.no_grad():
            fake = m.generator(torch.randn(len(x), c.latent_dim), labels)
        loss_d = m.loss_fns.discriminator_terms(m.discriminator, real, fake, labels)["loss_d"]
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.d_steps += 1
        if self.d_steps % c.n_critic:
            return
        m.discriminator.requires_grad_(False)
        fake = m.generator(torch.randn(len(x), c.latent_dim), labels)
        loss_g = m.loss_fns.generator_terms(m.discriminator, real, fake, labels)["loss_g"]
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        m.discriminator.requires_grad_(True)
        if m.generator_ema is not None:
            m.generator_ema.update_parameters(m.generator)

    def rates(self, batches: int, warmup: int = HAND_WARMUP_BATCHES) -> dict[str, float]:
        """Images/s over ``batches`` steps after ``warmup`` ones, per wall second (``img_s``)
        and per second of this process's CPU time (``cpu_img_s``)."""
        for _ in range(warmup):
            self.step(self.batch())
        start, cpu, durations = time.perf_counter(), time.process_time(), []
        for _ in range(batches):
            t = time.perf_counter()
            self.step(self.batch())
            durations.append(time.perf_counter() - t)
        images = batches * self.batch_size
        return {
            "img_s": images / (time.perf_counter() - start),
            "cpu_img_s": images / (time.process_time() - cpu),
            "median_ms": 1000 * statistics.median(durations),
        }

    def rate(self, batches: int, warmup: int = HAND_WARMUP_BATCHES) -> float:
        """Images/s (wall) over ``batches`` steps after ``warmup`` ones."""
        return self.rates(batches, warmup)["img_s"]


def interleaved_ratio(make_cfg, hand: HandLoop, batches: int, rounds: int) -> dict[str, Any]:
    """``rounds`` x (framework run, hand loop), alternating so that machine drift cancels.

    ``make_cfg()`` returns a fresh composed config per framework run; the hand loop runs on
    the threads that run chose (``genlab.cli.task.configure_threads``). Returns the medians
    of both wall rates, of the per-round ratios framework / hand (``ratio``) and of the same
    ratio in CPU time (``cpu_ratio``: robust when other programs share the cores).
    """
    fw, hd, threads = [], [], []
    for _ in range(rounds):
        fw.append(framework_rate(make_cfg(), batches))
        threads.append(torch.get_num_threads())
        hd.append(hand.rates(batches))
    ratios = [f["img_s"] / h["img_s"] for f, h in zip(fw, hd)]
    cpu_ratios = [f["cpu_img_s"] / h["cpu_img_s"] for f, h in zip(fw, hd)]
    return {
        "framework_img_s": round(statistics.median(f["img_s"] for f in fw), 1),
        "hand_img_s": round(statistics.median(h["img_s"] for h in hd), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "cpu_ratio": round(statistics.median(cpu_ratios), 3),
        "threads": threads,
        # per batch (ms, medians over rounds): genlab's unwritten batches, the extra of a
        # batch whose metrics Lightning writes, and the hand loop's batch
        "plain_ms": round(statistics.median(f["plain_ms"] for f in fw), 2),
        "written_extra_ms": round(statistics.median(f["written_extra_ms"] for f in fw), 2),
        "hand_ms": round(statistics.median(h["median_ms"] for h in hd), 2),
    }


def step_flops(hand: HandLoop) -> int:
    """FLOPs of one training batch (forward + backward, the D step and the G step) of
    ``hand``: averaged over ``n_critic`` batches for a GAN that takes a G step less often."""
    from torch.utils.flop_counter import FlopCounterMode

    batches = getattr(hand.model.config, "n_critic", 1) if hand.family == "gan" else 1
    with FlopCounterMode(display=False) as counter:
        for _ in range(batches):
            hand.step(hand.batch())
    return int(counter.get_total_flops()) // batches


def matmul_gflops(threads: int, size: int = 1024, seconds: float = 1.0) -> float:
    """fp32 square-matmul GFLOP/s on ``threads`` threads (the machine's practical peak)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start) / 1e9


def write_image_folder(root: Path, count: int, size: int, ext: str) -> Path:
    """``count`` RGB ``size`` px images (bundled Fashion-MNIST, upscaled, tinted) as ``ext``."""
    from PIL import Image

    from genlab.data.bundled import bundled_path

    root.mkdir(parents=True, exist_ok=True)
    if len(list(root.glob(f"*.{ext}"))) >= count:
        return root
    with np.load(bundled_path()) as z:
        grey = np.array(z["train_images"][:count])
    for i, img in enumerate(grey):
        rgb = np.stack([img, img[::-1], 255 - img], axis=-1).astype(np.uint8)
        Image.fromarray(rgb).resize((size, size)).save(root / f"{i:05d}.{ext}")
    return root

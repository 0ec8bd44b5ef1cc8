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
    "gan": [],
    "vae": ["model=vae"],
    "gan_mlp": ["model=gan_mlp"],
    "dcgan64": ["data=folder", "data.image_size=64", "data.channels=3"],  # + data.path
}
WARMUP_BATCHES = 3
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
    """Wall time of ``batches`` training batches after ``warmup`` ones; stops training then."""

    last: dict[str, float] = {}  # filled at the end of each timed run (seconds, batches)

    def __init__(self, warmup: int, batches: int):
        self.warmup, self.batches, self.seen, self.start, self.cpu = warmup, batches, 0, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.seen == self.warmup:
            self.start, self.cpu = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen == self.warmup + self.batches:
            StepTimer.last = {
                "seconds": time.perf_counter() - self.start,
                "cpu_seconds": time.process_time() - self.cpu,
                "batches": self.batches,
            }
            trainer.should_stop = True
            for callback in trainer.callbacks:  # the measurement is over: skip epoch-end work
                if type(callback).__name__ in SKIP_AFTER_STOP:
                    callback.every_n_epochs = 10**9  # never due again


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

    def batch(self) -> torch.Tensor:
        """The next (B, C, H, W) batch of a random permutation (drop_last)."""
        if self.position + self.batch_size > len(self.order):
            self.order, self.position = torch.randperm(len(self.images)), 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.images[index]

    def step(self, x: torch.Tensor) -> None:
        """One training step: GAN = one D step then one G step (non-saturating / model.loss),
        D frozen during the G step; VAE = one optimizer step on ``loss_terms``."""
        m = self.model
        if self.family == "vae":
            loss = m.loss_terms(x)["loss"]
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            return
        real = x * 2.0 - 1.0
        with torch.no_grad():
            fake = m.generator(torch.randn(len(x), m.config.latent_dim), None)
        loss_d = m.loss_fns.discriminator_terms(m.discriminator, real, fake, None)["loss_d"]
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        m.discriminator.requires_grad_(False)
        fake = m.generator(torch.randn(len(x), m.config.latent_dim), None)
        loss_g = m.loss_fns.generator_terms(m.discriminator, real, fake, None)["loss_g"]
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        m.discriminator.requires_grad_(True)

    def rates(self, batches: int, warmup: int = WARMUP_BATCHES) -> dict[str, float]:
        """Images/s over ``batches`` steps after ``warmup`` ones, per wall second (``img_s``)
        and per second of this process's CPU time (``cpu_img_s``)."""
        for _ in range(warmup):
            self.step(self.batch())
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            self.step(self.batch())
        images = batches * self.batch_size
        return {
            "img_s": images / (time.perf_counter() - start),
            "cpu_img_s": images / (time.process_time() - cpu),
        }

    def rate(self, batches: int, warmup: int = WARMUP_BATCHES) -> float:
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
    }


def step_flops(hand: HandLoop) -> int:
    """FLOPs of one training step (forward + backward, both GAN steps) of ``hand``."""
    from torch.utils.flop_counter import FlopCounterMode

    x = hand.batch()
    with FlopCounterMode(display=False) as counter:
        hand.step(x)
    return int(counter.get_total_flops())


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

"""GPU smoke benchmark of every GAN architecture (run through ``benchmarks/gpu_check.sh``).

For each architecture (DCGAN; DCGAN with dcgan_cifar10's 5x5 kernels, N(0, 0.02) init and no
biases; the ResNet with wgan_gp_cifar10's inits; class-conditional BigGAN + DiffAugment with
biggan_cifar10's self-attention at 16 px in G and D; StyleGAN2 + anti-aliased ADA with the
cifar recipes' orig D, EMA half-life ramp-up and separate lazy R1 steps; from the shipped
presets at 32 px) and each precision (16-mixed, bf16-mixed): train
``--steps`` generator steps (n_critic 1) on the bundled Fashion-MNIST mini (6,000 images,
zero-padded from 28 to 32 px and repeated to RGB, so nothing is read from the network or
disk), then report images/s (D-step images, after ``--warmup`` warm-up steps), whether every
loss and weight stayed finite, and an FID of ``--fid-samples`` generated images against the
6,000 training images in the shipped Fashion-MNIST classifier's feature space (generated images
cropped back to 28 px). Not the published-FID protocol (that is Inception on CIFAR-10); a health
check that the nets learn something in a few hundred steps.

``--cpu-dry-run``: the same code path with tiny nets, 3 steps and 200 samples on the CPU (bf16
only), to check the script itself where there is no GPU. Exit status: 0 all finite, 1 a NaN/Inf,
2 no CUDA device (without ``--cpu-dry-run``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

import genlab
from genlab.data.base import ImageDataModule
from genlab.data.bundled import FashionMNISTMiniDataModule
from genlab.data.tensor_dataset import TensorImageDataset
from genlab.metrics.sample_quality import SampleQuality
from genlab.models import GAN

CONF = Path(genlab.__file__).parent / "conf" / "model"
# name: (model preset, overrides merged into it): the recipes' own settings where they differ
# from the preset (conf/experiment/*_cifar10.yaml), at n_critic 1 so every arch gets the same
# number of G steps.
ARCHS = {
    "dcgan": ("gan", {}),
    "dcgan_radford": (  # experiment=dcgan_cifar10: 5x5 kernels, N(0, 0.02) init, no biases
        "gan",
        {
            "generator": {"kernel_size": 5, "init": "normal", "bias": False, "bn_eps": 1.0e-8},
            "discriminator": {"kernel_size": 5, "init": "normal", "bias": False, "bn_eps": 1.0e-8},
        },
    ),
    "resnet": (  # experiment=wgan_gp_cifar10's inits (PyTorch default biases and shortcuts)
        "resnet_gan",
        {
            "generator": {"bias_init": "default", "default_init_layers": ["shortcut", "output"]},
            "discriminator": {"bias_init": "default", "default_init_layers": ["shortcut"]},
        },
    ),
    "biggan": (  # experiment=biggan_cifar10: self-attention at 16 px in G and D, BN eps 1e-4
        "biggan",
        {
            "augment": "diffaugment",
            "latent_dim": 80,
            "ema_start": 50,
            "generator": {"attention_resolution": 16, "bn_eps": 1.0e-4},
            "discriminator": {"base_channels": 96, "attention_resolution": 16},
        },
    ),
    "stylegan2": (  # experiment=stylegan2_ada_cifar10: orig D, EMA ramp-up, separate lazy R1
        "stylegan2",
        {
            "augment": "ada",
            "ada_p": 0.2,
            "r1_gamma": 0.01,
            "ema_rampup": 0.05,
            "lazy_reg": "separate",
            "discriminator": {"architecture": "orig"},
        },
    ),
}
TINY = {
    "dcgan": {"generator": {"base_channels": 4}, "discriminator": {"base_channels": 4}},
    "dcgan_radford": {"generator": {"base_channels": 4}, "discriminator": {"base_channels": 4}},
    "resnet": {"generator": {"base_channels": 4}, "discriminator": {"base_channels": 4}},
    "biggan": {
        "generator": {"base_channels": 4, "class_embedding_dim": 8},
        "discriminator": {"base_channels": 4},
    },
    "stylegan2": {
        "generator": {"channel_base": 128, "channel_max": 8, "w_dim": 8, "mapping_layers": 2},
        "discriminator": {"channel_base": 128, "channel_max": 8, "cmap_dim": 8},
    },
}


class Padded32(ImageDataModule):
    """The bundled Fashion-MNIST mini zero-padded to 32x32 and repeated to 3 channels (uint8)."""

    def __init__(self, batch_size: int):
        super().__init__("unused", batch_size, 0, 32, 3, False, False, 0)
        self.name, self.image_size, self.channels, self.num_classes = "fmnist_mini_32", 32, 3, 10

    def _load(self):
        source = FashionMNISTMiniDataModule(data_dir=".")
        source.setup()
        out = {}
        for split in ("train", "test"):
            ds = source.dataset(split)
            images = torch.stack([ds[i][0] for i in range(len(ds))])  # (N, 1, 28, 28) uint8
            labels = torch.tensor([int(ds[i][1]) for i in range(len(ds))])
            images = F.pad(images, (2, 2, 2, 2)).repeat(1, 3, 1, 1)
            out[split] = TensorImageDataset(images.contiguous(), labels)
        return out


def preset_settings(arch: str, dry_run: bool) -> dict:
    """The preset's model settings at 32 px RGB with 10 classes, n_critic 1."""
    preset, overrides = ARCHS[arch]
    cfg = OmegaConf.load(CONF / f"{preset}.yaml")
    for parent in [d for d in cfg.get("defaults", []) if d != "_self_"]:
        cfg = OmegaConf.merge(OmegaConf.load(CONF / f"{parent}.yaml"), cfg)  # biggan: resnet_gan
    settings = OmegaConf.to_container(cfg)
    settings = {k: v for k, v in settings.items() if not k.startswith("_") and k != "defaults"}
    settings.update(image_size=32, channels=3, num_classes=10, n_critic=1)
    for name, value in overrides.items():  # nets' specs are merged key by key
        settings[name] = {**settings[name], **value} if isinstance(value, dict) else value
    for name, spec in (TINY[arch] if dry_run else {}).items():
        settings[name] = {**settings[name], **spec}
    if dry_run and arch == "biggan":
        settings["latent_dim"] = 24
    return settings


class Throughput(pl.Callback):
    """Images per second of the training batches after ``warmup`` batches."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.images, self.losses_finite = warmup, None, 0, True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx + 1 == self.warmup:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.start = time.perf_counter()
        elif self.start is not None:
            self.images += batch["image"].shape[0]
        for name in ("train/loss_d", "train/loss_g"):
            value = trainer.callback_metrics.get(name)
            if value is not None and not torch.isfinite(value).all():
                self.losses_finite = False

    def rate(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if self.start is None or self.images == 0:
            return float("nan")
        return self.images / (time.perf_counter() - self.start)


def fid(model: GAN, real: torch.Tensor, num_samples: int, device: str) -> float:
    """Classifier-feature FID of ``num_samples`` fakes (cropped to 28 px) vs ``real`` uint8."""
    quality = SampleQuality(
        features="classifier",
        dataset="fashion_mnist_mini",
        metrics=["fid"],
        num_samples=num_samples,
        num_real=None,
        device=device,
    )
    generator = torch.Generator().manual_seed(0)
    fakes = []
    for start in range(0, num_samples, 500):
        n = min(500, num_samples - start)
        fakes.append(model.generate(n, generator=generator)[:, :, 2:30, 2:30].cpu())
    return quality.compute(torch.cat(fakes), real, device)["fid"]


def run(arch: str, precision: str, args, datamodule: Padded32, real: torch.Tensor) -> dict:
    torch.manual_seed(0)
    model = GAN(**preset_settings(arch, args.cpu_dry_run))
    meter = Throughput(args.warmup)
    trainer = pl.Trainer(
        accelerator="cpu" if args.cpu_dry_run else "gpu",
        devices=1,
        precision=precision,
        max_steps=args.steps,
        max_epochs=-1,
        logger=False,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[meter],
    )
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    rate = meter.rate()
    weights_finite = all(torch.isfinite(p).all() for p in model.parameters())
    device = "cpu" if args.cpu_dry_run else "cuda"
    score = fid(model, real, args.fid_samples, device) if weights_finite else float("nan")
    return {
        "arch": arch,
        "precision": precision,
        "g_steps": model.g_steps,
        "skipped_g_steps": model.skipped_g_steps,
        "img_per_s": round(rate, 1),
        "finite": bool(weights_finite and meter.losses_finite and math.isfinite(score)),
        "fid": round(score, 2),
        "ada_p": round(float(model.augment.p), 4) if hasattr(model.augment, "p") else None,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny nets on the CPU")
    parser.add_argument("--steps", type=int, default=300, help="generator steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="batches before timing")
    parser.add_argument("--batch-size", type=int, default=64, help="images per D step")
    parser.add_argument("--fid-samples", type=int, default=10000, help="generated images")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated subset")
    parser.add_argument("--precisions", default="16-mixed,bf16-mixed", help="comma-separated")
    args = parser.parse_args(argv)
    if args.cpu_dry_run:
        args.steps, args.warmup, args.batch_size, args.fid_samples = 3, 1, 8, 200
        args.precisions = "bf16-mixed"
    elif not torch.cuda.is_available():
        print("gpu_check: error: no CUDA device (torch.cuda.is_available() is False); "
              "use --cpu-dry-run to check the script on the CPU", file=sys.stderr)  # fmt: skip
        return 2
    else:
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    datamodule = Padded32(args.batch_size)
    datamodule.setup()
    real = datamodule.images("train")[:, :1, 2:30, 2:30].contiguous()  # the 28 px originals
    results = []
    for arch in args.archs.split(","):
        for precision in args.precisions.split(","):
            result = run(arch, precision, args, datamodule, real)
            results.append(result)
            print(json.dumps(result), flush=True)
    print(f"{'arch':<13} {'precision':<11} {'img/s':>9} {'FID':>8} finite")
    for r in results:
        print(
            f"{r['arch']:<13} {r['precision']:<11} {r['img_per_s']:>9} {r['fid']:>8} {r['finite']}"
        )
    bad = [f"{r['arch']}/{r['precision']}" for r in results if not r["finite"]]
    if bad:
        print(f"gpu_check: NaN/Inf in {', '.join(bad)}", file=sys.stderr)
        return 1
    print("gpu_check: all finite")
    return 0


if __name__ == "__main__":
    sys.exit(main())

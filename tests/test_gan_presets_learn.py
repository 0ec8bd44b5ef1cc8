"""Every GAN preset learns on the bundled data: a short CPU run's held-out FD falls.

Each preset trains on the bundled Fashion-MNIST subset (6,000 images) with its own loss,
regularisers, optimisers and n_critic; only the widths are cut down, and, for the n_critic 4-5
presets, StyleGAN2 and the MLP, batches of 16 (and the 32 px, zero-padded, images the ResNet
and StyleGAN2 nets need), so that a few CPU minutes buy a few hundred to a few thousand
generator steps. StyleGAN2 takes stylegan2-ada's CIFAR settings where they differ from the
preset's FFHQ ones. ``val/fid`` (the held-out test split's classifier features, 1,000 samples)
is logged after every epoch; the mean of the last two epochs' FDs must end below 0.8x the
first epoch's. The figures each run printed are in the README ("Short CPU runs of the GAN
presets"). Slow: ``pytest -m slow tests/test_gan_presets_learn.py -s`` (about 40 minutes on
one core).
"""

from __future__ import annotations

import csv

import pytest

from genlab.train import train

NARROW_DCGAN = ["model.generator.base_channels=32", "model.discriminator.base_channels=32"]
SMALL_BATCHES_32PX = ["data.batch_size=16", "data.image_size=32"]
# preset -> (overrides; everything else as the preset has it, epochs)
SMALL = {
    "gan": (NARROW_DCGAN, 4),
    "cpu_gan": (NARROW_DCGAN, 4),
    "sngan": (NARROW_DCGAN, 4),
    "wgan_gp": ([*NARROW_DCGAN, "data.batch_size=16"], 4),
    "gan_mlp": (["data.batch_size=16"], 10),
    "resnet_gan": (
        [
            *SMALL_BATCHES_32PX,
            "model.generator.base_channels=16",
            "model.discriminator.base_channels=16",
        ],
        12,
    ),
    "biggan": (
        [
            *SMALL_BATCHES_32PX,
            "model.generator.base_channels=16",
            "model.discriminator.base_channels=32",
        ],
        4,
    ),
    "stylegan2": (
        [
            *SMALL_BATCHES_32PX,
            "model.latent_dim=128",
            "model.generator.w_dim=128",
            "model.generator.mapping_layers=2",
            "model.generator.channel_base=1024",
            "model.discriminator.channel_base=1024",
            # stylegan2-ada's CIFAR (32 px) config where it differs from the preset's FFHQ one:
            "model.r1_gamma=0.01",
            "model.pl_weight=0",
            "model.generator.style_mixing_prob=0",
            "model.ema_decay=0.99",  # its EMA ramp-up (half-life 5% of the images seen) this early
        ],
        8,
    ),
}


def fid_by_epoch(metrics_csv) -> list[float]:
    with open(metrics_csv, newline="") as handle:
        return [float(row["val/fid"]) for row in csv.DictReader(handle) if row.get("val/fid")]


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(SMALL))
def test_short_cpu_run_of_each_gan_preset_lowers_the_held_out_fd(make_cfg, tmp_path, preset):
    overrides, epochs = SMALL[preset]
    cfg = make_cfg(
        "trainer=cpu",
        "trainer.enable_model_summary=false",
        "~callbacks.rich_progress_bar",
        "logger=csv",
        f"model={preset}",
        *overrides,
        "metrics.every_n_epochs=1",
        f"trainer.max_epochs={epochs}",
        fast=False,  # the default callbacks (sample quality every epoch), full epochs
    )
    train(cfg)
    fids = fid_by_epoch(tmp_path / "csv" / "metrics.csv")
    print(f"{preset}: val/fid by epoch {[round(f, 1) for f in fids]}")  # pytest -s shows it
    assert len(fids) == epochs
    late = sum(fids[-2:]) / 2  # the last two epochs: one epoch's FD jitters by several points
    assert late < 0.8 * fids[0], fids

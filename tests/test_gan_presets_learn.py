"""Every GAN preset learns on the bundled data: a short CPU run ends below half its untrained FD.

An untrained generator already scores a finite FD in the shipped classifier's features (about
50-100 for the ResNet, BigGAN and StyleGAN2 nets, 130-200 for the DCGAN and MLP ones), and a
first epoch can be at or above it, so "the FD fell from the first epoch" proves little. Each run
here therefore also scores its own untrained generator before the first training step, with the
same weights (the run's seed), latents, features, reference and number of samples
(``callbacks.sample_quality.at_start``: ``untrained/fid`` at step 0 in ``metrics.csv``), and the
mean FD of the last two epochs must end below ``MARGIN`` (0.5) times it.

Why 0.5: the untrained FD of one preset moves with the initialisation seed, and a run whose
weights only wandered could land anywhere in that range. The slow
``test_the_margin_is_wider_than_the_untrained_fd_spread`` pins the margin to a measurement: over
10 init seeds (the runs' 42 and 0-8) each preset's untrained FDs stay within a factor
1/``MARGIN`` of each other (measured max/min: 1.04-1.62 < 2), so a fall below half one's own
untrained FD is more than a re-draw of the weights gives. One epoch's FD jitters by several
points, hence the mean of the last two epochs.

Each preset trains on the bundled Fashion-MNIST subset (6,000 images) with its own loss,
regularisers, optimisers and n_critic; only the widths are cut down, and, for the n_critic 4-5
presets, StyleGAN2 and the MLP, batches of 16 (and the 32 px, zero-padded, images the ResNet
and StyleGAN2 nets need), so that a few CPU minutes buy a few hundred to a few thousand
generator steps. StyleGAN2 takes stylegan2-ada's CIFAR settings where they differ from the
preset's FFHQ ones. ``val/fid`` (classifier features, 1,000 generated samples against the 6,000
images of the train split, ``metrics/default.yaml``) is logged after every epoch. The measured
table: docs/results/gan_short_runs.md. Slow: ``pytest -m slow tests/test_gan_presets_learn.py
-s`` (about 75 CPU minutes on one thread, 70% of it ``stylegan2`` and ``resnet_gan``).
"""

from __future__ import annotations

import csv
import math
import time

import pytest
import torch

from genlab.train import train

#: The last epochs' FD must end below MARGIN x the untrained generator's FD (see module docstring).
MARGIN = 0.5
#: Init seeds of the spread measurement that justifies MARGIN: the runs' own (42) and 9 others.
SPREAD_SEEDS = (42, *range(9))

NARROW_DCGAN = ["model.generator.base_channels=32", "model.discriminator.base_channels=32"]
SMALL_BATCHES_32PX = ["data.batch_size=16", "data.image_size=32"]
# preset -> (overrides; everything else as the preset has it, epochs)
SMALL = {
    "gan": (NARROW_DCGAN, 4),
    "cpu_gan": (NARROW_DCGAN, 4),
    "sngan": (NARROW_DCGAN, 4),
    "wgan_gp": ([*NARROW_DCGAN, "data.batch_size=16"], 8),  # 4 epochs (300 G steps): 0.499x
    "gan_mlp": (["data.batch_size=16"], 20),  # 10 epochs: 0.51x its untrained FD, still falling
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
            "model.ema_kimg=500",  # its EMA: half-life 500 kimg, ramped up: at most 5% of the
            "model.ema_rampup=0.05",  # images seen (2.4k images after 8 epochs of 6,000)
        ],
        8,
    ),
}

# The defaults' callbacks and logging, without the progress bar and summary; csv logger only.
RUN = [
    "trainer=cpu",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
    "logger=csv",
    "metrics.every_n_epochs=1",
    "callbacks.sample_quality.at_start=true",  # untrained/fid at step 0
]


def read_metrics(metrics_csv) -> tuple[dict[str, float], list[float], int]:
    """(the ``untrained/*`` values of step 0, ``val/fid`` by epoch, the last logged step)."""
    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    untrained = {
        key: float(value)
        for row in rows
        for key, value in row.items()
        if key.startswith("untrained/") and value
    }
    assert all(int(row["step"]) == 0 for row in rows if row.get("untrained/fid")), rows
    fids = [float(row["val/fid"]) for row in rows if row.get("val/fid")]
    return untrained, fids, max(int(row["step"]) for row in rows)


def untrained_scores(cfg) -> dict[str, float]:
    """The metrics of ``cfg``'s generator as ``genlab.train`` builds it (seed, then datamodule,
    then model), untrained, scored by the sample-quality callback the config builds."""
    import hydra.utils
    import lightning.pytorch as pl

    from genlab.metrics.sample_quality import eval_mode

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    callback = hydra.utils.instantiate(cfg.callbacks.sample_quality)
    with eval_mode(model), torch.no_grad():
        return callback.sample_quality.evaluate(model.generate, dm)


TINY = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "data.batch_size=16",
    "callbacks.sample_grid.num_samples=16",
    "metrics.metrics=[fid]",
    "metrics.num_samples=64",
    "metrics.num_real=200",
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
]


def test_at_start_logs_the_untrained_generators_fd_at_step_0(tmp_path):
    """``untrained/fid`` is the FD of the generator the run starts from (the same number a
    separately built, same-seed, untrained model scores), at step 0, and scoring it changes
    nothing in the run."""
    from conftest import compose_config

    with_start = compose_config(tmp_path / "a", *RUN, *TINY, "model=gan")
    train(with_start)
    untrained, fids, _ = read_metrics(tmp_path / "a" / "csv" / "metrics.csv")
    assert set(untrained) == {"untrained/fid"} and len(fids) == 1
    assert untrained["untrained/fid"] == pytest.approx(untrained_scores(with_start)["fid"])
    assert untrained["untrained/fid"] != pytest.approx(fids[0])  # one epoch changed the model

    without = compose_config(tmp_path / "b", *RUN[:-1], *TINY, "model=gan")
    metrics = train(without)
    untrained_again, fids_again, _ = read_metrics(tmp_path / "b" / "csv" / "metrics.csv")
    assert not untrained_again
    assert fids_again == fids and metrics["val/fid"] == pytest.approx(fids[0])


def test_at_start_must_be_a_bool():
    from genlab.callbacks.sample_quality import SampleQualityCallback
    from genlab.checks.errors import ConfigError

    with pytest.raises(ConfigError, match="callbacks.sample_quality.at_start='yes'"):
        SampleQualityCallback(at_start="yes")


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(SMALL))
def test_short_cpu_run_of_each_gan_preset_ends_below_its_untrained_fd(make_cfg, tmp_path, preset):
    overrides, epochs = SMALL[preset]
    cfg = make_cfg(
        *RUN,
        f"model={preset}",
        *overrides,
        f"trainer.max_epochs={epochs}",
        fast=False,  # the default callbacks (sample quality every epoch), full epochs
    )
    t0, cpu0 = time.perf_counter(), time.process_time()
    metrics = train(cfg)
    minutes, cpu_minutes = (time.perf_counter() - t0) / 60, (time.process_time() - cpu0) / 60
    untrained, fids, _ = read_metrics(tmp_path / "csv" / "metrics.csv")
    start = untrained["untrained/fid"]
    late = sum(fids[-2:]) / 2  # the last two epochs: one epoch's FD jitters by several points
    # pytest -s shows it: the row of docs/results/gan_short_runs.md
    print(
        f"\nROW | `{preset}` | {start:.1f} | {late:.1f} | {late / start:.2f} | "
        f"{int(metrics['step'])} | {epochs} | {cpu_minutes:.1f} | {minutes:.1f} | "
        f"{', '.join(f'{f:.1f}' for f in fids)} |"
    )
    assert len(fids) == epochs and math.isfinite(start)
    assert late < MARGIN * start, (start, fids)


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(SMALL))
def test_the_margin_is_wider_than_the_untrained_fd_spread(make_cfg, preset):
    """Over ``SPREAD_SEEDS`` init seeds a preset's untrained FDs stay within a factor
    1/MARGIN of each other: a fall below MARGIN x one's own is more than a re-draw gives."""
    overrides, _ = SMALL[preset]
    fds = [
        untrained_scores(make_cfg(*RUN, f"model={preset}", *overrides, f"seed={seed}", fast=False))[
            "fid"
        ]
        for seed in SPREAD_SEEDS
    ]
    print(
        f"\nSPREAD | `{preset}` | {', '.join(f'{f:.1f}' for f in fds)} | {max(fds) / min(fds):.2f} |"
    )
    assert max(fds) < min(fds) / MARGIN, fds

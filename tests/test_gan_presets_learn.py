"""The DCGAN presets learn on the bundled data: a short CPU run's held-out FD falls.

The DCGAN presets (``gan``, ``cpu_gan``, ``sngan``) train for 4 epochs each on the bundled
Fashion-MNIST subset with their own loss, regularisers and optimisers, only the widths cut
down so that a few CPU minutes suffice; ``val/fid`` (the held-out test split's classifier
features, 1,000 samples) is logged every epoch and must end well below where the first epoch
left it. Not covered, measured on this 2-core CPU: the n_critic 4-5 presets (``wgan_gp``,
``resnet_gan``, ``biggan``: 4-5x fewer G steps in the same epochs; 2 epochs of ``biggan`` left
its FD at 36.2 -> 35.9; 6 epochs of ``resnet_gan`` at widths 16: 38.3, 43.5, 53.1, 52.3,
42.6, 50.4), ``stylegan2`` (19 batches in 12
minutes at ``channel_base=2048`` on 32 px, padded) and ``gan_mlp``, whose FD does not fall in
4 epochs (147.2, 136.9, 141.7, 149.9). Slow: run with
``pytest -m slow tests/test_gan_presets_learn.py``.
"""

from __future__ import annotations

import csv

import pytest

from genlab.train import train

SMALL = {  # preset -> width overrides (everything else as the preset has it)
    "gan": ["model.generator.base_channels=32", "model.discriminator.base_channels=32"],
    "cpu_gan": ["model.generator.base_channels=32", "model.discriminator.base_channels=32"],
    "sngan": ["model.generator.base_channels=32", "model.discriminator.base_channels=32"],
}
EPOCHS = 4


def fid_by_epoch(metrics_csv) -> list[float]:
    with open(metrics_csv, newline="") as handle:
        return [float(row["val/fid"]) for row in csv.DictReader(handle) if row.get("val/fid")]


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(SMALL))
def test_short_cpu_run_of_each_gan_preset_lowers_the_held_out_fd(make_cfg, tmp_path, preset):
    cfg = make_cfg(
        "trainer=cpu",
        "trainer.enable_model_summary=false",
        "~callbacks.rich_progress_bar",
        "logger=csv",
        f"model={preset}",
        *SMALL[preset],
        "metrics.every_n_epochs=1",
        f"trainer.max_epochs={EPOCHS}",
        fast=False,  # the default callbacks (sample quality every epoch), full epochs
    )
    train(cfg)
    fids = fid_by_epoch(tmp_path / "csv" / "metrics.csv")
    print(f"{preset}: val/fid by epoch {[round(f, 1) for f in fids]}")  # pytest -s shows it
    assert len(fids) == EPOCHS
    assert fids[-1] < 0.8 * fids[0], fids

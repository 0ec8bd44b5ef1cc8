"""Training-step scalars are logged only on the steps Lightning writes (log_every_n_steps),
with metrics.csv, the progress bar, the returned metrics and the divergence guard unchanged."""

from __future__ import annotations

import csv

import lightning.pytorch as pl
import pytest
import torch

import genlab.cli.components as components
from conftest import FAST, compose_config
from genlab.callbacks.divergence import DivergenceError
from genlab.data import FashionMNISTMiniDataModule
from genlab.models import GAN
from genlab.models.base import GenerativeModule
from genlab.train import train

TINY_GAN = [
    "model=gan_mlp",
    "model.latent_dim=8",
    "model.generator.hidden_dims=[16]",
    "model.discriminator.hidden_dims=[16]",
    "model.n_critic=2",  # train/loss_g only on every 2nd batch
]
TINY_VAE = ["model=vae_mlp", "model.latent_dim=4", "model.hidden_dims=[16]"]
SHORT = [
    "~callbacks.sample_grid",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=7",  # 7 batches: writes on 3, 6 | 9, 12 (steps of the run)
    "trainer.log_every_n_steps=3",
    "data.batch_size=8",
]


def log_every_step(self, values, prog_bar=()):
    """What the families did before: every value logged on every step."""
    self.log_dict(
        {k: v for k, v in values.items() if k not in prog_bar}, on_step=True, on_epoch=False
    )
    for name in prog_bar:
        if name in values:
            self.log(name, values[name], prog_bar=True, on_step=True, on_epoch=False)


def training_rows(path) -> list[dict[str, str]]:
    """metrics.csv rows of training steps, without the wall-clock column."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    kept = [{k: v for k, v in r.items() if k != "time/elapsed"} for r in rows]
    return [r for r in kept if any(v for k, v in r.items() if k.startswith("train/"))]


def run(tmp_path, name: str, overrides: list[str]) -> tuple[dict, list[dict[str, str]]]:
    out = tmp_path / name
    torch.manual_seed(0)
    metrics = train(compose_config(out, *FAST, *overrides, *SHORT, "seed=3"))
    return metrics, training_rows(out / "csv" / "metrics.csv")


@pytest.mark.parametrize("model", [TINY_GAN, TINY_VAE], ids=["gan", "vae"])
def test_metrics_csv_rows_equal_logging_every_step(tmp_path, monkeypatch, model):
    logged_at = set()  # the batches (counted over the run) on which train/ values are logged
    original_log = pl.LightningModule.log

    def recording_log(self, name, *args, **kwargs):
        if name.startswith("train/"):
            logged_at.add(self.trainer.fit_loop.epoch_loop.batch_progress.total.ready)
        return original_log(self, name, *args, **kwargs)

    monkeypatch.setattr(pl.LightningModule, "log", recording_log)
    metrics, rows = run(tmp_path, "now", model)
    assert logged_at == {3, 6, 7, 9, 12, 14}  # Lightning's writes, the end of each epoch
    with monkeypatch.context() as m:
        m.setattr(GenerativeModule, "log_train_scalars", log_every_step)
        logged_at.clear()
        reference, reference_rows = run(tmp_path, "every_step", model)
    assert len(logged_at) == 14
    assert len(reference_rows) == 4  # the rows Lightning writes: steps 3, 6, 9, 12
    assert rows == reference_rows  # same rows, same columns, same values
    train_keys = {k for k in reference if k.startswith("train/")}
    assert train_keys and {k: metrics[k] for k in train_keys} == {
        k: reference[k] for k in train_keys
    }  # what train() returns (the last step's values) is unchanged too


def test_progress_bar_shows_the_readme_key_and_last_step_values(tmp_path):
    """The GAN's bar shows train/loss_d only; after fitting (last batch not a logging step)
    the callback metrics hold the last step's counters."""
    torch.manual_seed(0)
    spec = {"arch": "mlp", "hidden_dims": [16]}
    model = GAN(image_size=28, channels=1, latent_dim=8, generator=spec, discriminator=spec)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=5,
        limit_val_batches=0,
        log_every_n_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=FashionMNISTMiniDataModule(batch_size=8))
    assert set(trainer.progress_bar_metrics) == {"train/loss_d"}
    assert float(trainer.callback_metrics["train/d_step"]) == 5.0


class InjectNaN(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 1:
            batch["image"][0, 0, 0, 0] = float("nan")


@pytest.mark.parametrize(
    "model, loss", [(TINY_GAN, "train/loss_d"), (TINY_VAE, "train/loss")], ids=["gan", "vae"]
)
def test_divergence_guard_fires_between_logging_steps(tmp_path, monkeypatch, model, loss):
    original = components.instantiate_callbacks
    monkeypatch.setattr(components, "instantiate_callbacks", lambda c: original(c) + [InjectNaN()])
    cfg = compose_config(tmp_path, *FAST, *model, *SHORT, "trainer.log_every_n_steps=50")
    with pytest.raises(DivergenceError) as err:
        train(cfg)
    assert f"{loss}=nan" in str(err.value) and "batch 1" in str(err.value)


def test_every_validation_row_has_its_own_wall_time(tmp_path):
    """``genlab.compare`` draws validation points against wall time: each validation row of
    metrics.csv carries ``time/elapsed`` measured at that validation (after its FID), not a
    time interpolated from (or clamped to) training rows."""
    cfg = compose_config(
        tmp_path, *FAST, "trainer.max_epochs=3", "trainer.log_every_n_steps=50", "seed=3"
    )
    train(cfg)
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/d_real")]
    assert len(rows) == 3
    times = [float(r["time/elapsed"]) for r in rows]  # KeyError/ValueError: no own time
    assert times[0] > 0 and times == sorted(times) and len(set(times)) == 3

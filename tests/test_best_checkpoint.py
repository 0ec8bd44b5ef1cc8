"""callbacks.best_checkpoint: best.ckpt holds the best epoch of a metric (not the last), written
atomically, kept across resumes, logged at the end of fit, and taken by sample/eval."""

from __future__ import annotations

import csv
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from genlab import eval as genlab_eval
from genlab import sample as genlab_sample
from genlab.callbacks.best_checkpoint import BestCheckpoint, infer_mode
from genlab.checks.errors import ConfigError
from genlab.runs import atomic_io as checkpoint_io
from genlab.runs.atomic_io import AtomicCheckpointIO
from genlab.train import train


class ScriptedMetric(pl.LightningModule):
    """A linear model whose validation logs ``val/fid = scores[current_epoch]``."""

    def __init__(self, scores: dict[int, float]):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.scores = scores

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/fid", self.scores[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)


def fit(ckpt_dir: Path, scores: dict[int, float], max_epochs: int, ckpt_path=None):
    """Fit ``max_epochs`` (from ``ckpt_path`` when given) with genlab's checkpoint setup."""
    best = BestCheckpoint(dirpath=str(ckpt_dir), monitor="val/fid")
    last = ModelCheckpoint(dirpath=str(ckpt_dir), save_last=True, save_top_k=0)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        callbacks=[last, best],  # Lightning runs ModelCheckpoint last whatever the order
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ScriptedMetric(scores), loader(), loader(), ckpt_path=ckpt_path, weights_only=True)
    return best


def recorded_best(path: Path) -> tuple[int, float]:
    """(best epoch, best value) recorded in a checkpoint file's BestCheckpoint state."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    (state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("BestCheckpoint")]
    return state["best_epoch"], state["best_value"]


def best_state(path: Path) -> tuple[int, float]:
    """(epoch, best value) of a best.ckpt, which must be the checkpoint of that epoch."""
    epoch, value = recorded_best(path)
    assert torch.load(path, map_location="cpu", weights_only=True)["epoch"] == epoch
    return epoch, value


def test_mode_is_inferred_from_the_metric_name():
    assert [infer_mode(m) for m in ("val/fid", "val/kid", "val/loss", "train/loss_d")] == [
        "min"
    ] * 4
    assert [infer_mode(m) for m in ("val/is", "val/precision", "val/recall", "val/elbo")] == [
        "max"
    ] * 4
    coverage = ("val/coverage_kl", "val/class_fid", "val/modes_covered", "val/classes_covered")
    assert [infer_mode(m) for m in coverage] == ["min", "min", "max", "max"]
    with pytest.raises(ConfigError, match="callbacks.best_checkpoint.mode.*min or max"):
        BestCheckpoint(dirpath=".", monitor="val/d_real")
    assert BestCheckpoint(dirpath=".", monitor="val/d_real", mode="max").mode == "max"
    with pytest.raises(ConfigError, match="callbacks.best_checkpoint.mode"):
        BestCheckpoint(dirpath=".", monitor="val/fid", mode="lowest")


def test_keeps_the_best_epoch_across_resumes_and_logs_it(tmp_path, caplog):
    first, second, third = tmp_path / "run1", tmp_path / "run2", tmp_path / "run3"
    scores = {0: 5.0, 1: 3.0, 2: 4.0, 3: 3.5, 4: 6.0, 5: 2.0}
    with caplog.at_level(logging.INFO, logger="genlab.callbacks.best_checkpoint"):
        best = fit(first, scores, max_epochs=3)
    assert (best.best_epoch, best.best_value) == (1, 3.0)
    assert best_state(first / "best.ckpt") == (1, 3.0)  # not the last epoch (2)
    assert recorded_best(first / "last.ckpt") == (1, 3.0)  # last.ckpt carries the best so far
    assert "Best checkpoint:" in caplog.text and "epoch 1" in caplog.text
    assert "val/fid=3" in caplog.text

    # resumed into a new directory: the best (epoch 1) comes along; worse epochs do not replace it
    best = fit(second, scores, max_epochs=5, ckpt_path=first / "last.ckpt")
    assert (best.best_epoch, best.best_value) == (1, 3.0)
    assert best_state(second / "best.ckpt") == (1, 3.0)
    assert recorded_best(second / "last.ckpt") == (1, 3.0)

    # resumed again: epoch 5 beats it
    best = fit(third, scores, max_epochs=6, ckpt_path=second / "last.ckpt")
    assert best_state(third / "best.ckpt") == (5, 2.0)
    assert best_state(second / "best.ckpt") == (1, 3.0)  # the earlier run's file is untouched


def test_best_ckpt_is_written_atomically(tmp_path, monkeypatch):
    scores = {0: 5.0, 1: 3.0}
    fit(tmp_path, scores, max_epochs=1)
    before = (tmp_path / "best.ckpt").read_bytes()

    real_save = torch.save

    def killed_midway(obj, f, *args, **kwargs):  # half a file, then the process "dies"
        real_save(obj, f, *args, **kwargs)
        f.truncate(100)
        raise OSError("killed while writing")

    monkeypatch.setattr(checkpoint_io.torch, "save", killed_midway)
    with pytest.raises(OSError, match="killed while writing"):
        fit(tmp_path, scores, max_epochs=2, ckpt_path=tmp_path / "last.ckpt")
    assert (tmp_path / "best.ckpt").read_bytes() == before
    assert not list(tmp_path.glob(".best.ckpt.*"))  # the temp file is gone too


def test_genlab_run_best_ckpt_then_sample_and_eval(make_cfg, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="genlab.callbacks.best_checkpoint"):
        train(
            make_cfg(
                "model=vae_mlp",
                "model.hidden_dims=[32]",
                "trainer.max_epochs=2",
                "~callbacks.sample_grid",
                "callbacks.best_checkpoint.monitor=val/loss",  # mode inferred: min
            )
        )
    best = tmp_path / "checkpoints" / "best.ckpt"
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("val/loss")]
    losses = {int(row["epoch"]): float(row["val/loss"]) for row in rows}
    assert len(losses) == 2
    epoch, value = best_state(best)
    assert value == pytest.approx(min(losses.values())) and losses[epoch] == pytest.approx(value)
    assert f"epoch {epoch}" in caplog.text and "Best checkpoint:" in caplog.text

    from conftest import compose_config

    out = tmp_path / "grid.png"
    genlab_sample.hydra_main.__wrapped__(
        compose_config(tmp_path / "s", f"ckpt_path={best}", "num_samples=4", f"output={out}",
                       config_name="sample")
    )  # fmt: skip
    assert out.is_file()
    results = genlab_eval.evaluate(
        compose_config(tmp_path / "e", f"ckpt_path={best}", "num_test_images=8", "k=2",
                       "metrics.num_samples=16", "metrics.num_real=32", config_name="eval")
    )  # fmt: skip
    assert math.isfinite(results["test/fid"])  # scored the model in best.ckpt
    assert json.loads((best.parent / "eval.json").read_text())["test/fid"] == results["test/fid"]


@pytest.mark.slow  # ~1 min: two processes
def test_best_ckpt_under_two_process_ddp(tmp_path):
    """All ranks take rank 0's value, so they save together (a collective) and never hang."""
    run = subprocess.run(
        [sys.executable, "-m", "genlab.train", "trainer=ddp_cpu", "model=vae_mlp"]
        + ["model.hidden_dims=[32]", "trainer.max_epochs=2", "trainer.limit_train_batches=2"]
        + ["trainer.limit_val_batches=1", "logger=csv", "~callbacks.sample_quality"]
        + ["callbacks.best_checkpoint.monitor=val/loss", "hydra.run.dir=run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    epoch, value = best_state(tmp_path / "run" / "checkpoints" / "best.ckpt")
    output = run.stdout + run.stderr  # the log goes to stdout
    assert (
        "Best checkpoint:" in output and f"epoch {epoch}," in output and f"={value:.6g}" in output
    )

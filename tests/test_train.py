"""Short training runs of each model through train(cfg), sampling and resuming."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.checks.errors import ConfigError
from genlab.models.registry import build_model_from_checkpoint
from genlab.runs.checkpoints import load_checkpoint
from genlab.train import train


@pytest.mark.parametrize("model", ["gan", "vae"])
def test_train_writes_run_directory(make_cfg, tmp_path, model):
    metrics = train(make_cfg(f"model={model}", "model.latent_dim=8"))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    grids = sorted((tmp_path / "samples").glob("epoch=*.png"))
    assert grids, "a sample grid per epoch"
    csv = (tmp_path / "csv" / "metrics.csv").read_text()
    names = ["train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"]
    if model == "vae":
        names = ["train/loss", "train/recon", "train/kl", "val/loss"]
        assert (tmp_path / "samples" / "recon_epoch=000.png").is_file()
    for name in names:
        assert name in csv, name
        if name in metrics:
            assert torch.isfinite(torch.tensor(metrics[name]))


def test_checkpoint_rebuilds_model_without_run_config(make_cfg, tmp_path):
    train(make_cfg("model=vae"))
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["genlab"]["family"] == "vae"
    model = build_model_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    images = model.generate(5)
    assert images.shape == (5, 1, 28, 28)
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_resume_continues_from_stored_step(make_cfg, tmp_path):
    first = train(make_cfg("trainer.max_epochs=1"))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    stored = load_checkpoint(ckpt)
    assert stored["genlab"]["counters"]["g_steps"] == first["step"] == 3
    resumed = train(make_cfg("trainer.max_epochs=2", f"ckpt_path={ckpt}"))
    assert resumed["step"] == 6  # 3 stored + 3 new, not 3
    assert load_checkpoint(ckpt)["epoch"] == stored["epoch"] + 1


def test_resume_refuses_other_model_family(make_cfg, tmp_path):
    train(make_cfg("model=vae"))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match="ckpt_path.*gan checkpoint"):
        train(make_cfg("model=gan", f"ckpt_path={ckpt}"))


def test_bad_model_for_data_shape_fails_before_training(make_cfg, tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 50, 0, 0)).save(tmp_path / "images" / f"{i}.png")
    cfg = make_cfg("data=folder", f"data.path={tmp_path / 'images'}", "data.image_size=30")
    with pytest.raises(Exception) as err:
        train(cfg)
    assert "data.image_size=30" in str(err.value) and "model.generator" in str(err.value)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("model", ["gan", "vae"])
def test_bf16_mixed_precision_trains_finite(make_cfg, model):
    metrics = train(make_cfg(f"model={model}", "trainer.precision=bf16-mixed"))
    key = "train/loss_d" if model == "gan" else "train/loss"
    assert torch.isfinite(torch.tensor(metrics[key]))


def run_cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_cli_train_then_sample_png_and_npz(tmp_path):
    run = run_cli(
        "genlab.train",
        "trainer=cpu",
        "trainer.limit_train_batches=2",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=1",
        "model.generator.base_channels=8",
        "model.discriminator.base_channels=8",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    run_dir = tmp_path / "run"
    for path in (".hydra/config.yaml", "checkpoints/last.ckpt", "csv/metrics.csv", "train.log"):
        assert (run_dir / path).is_file(), path
    ckpt = "run/checkpoints/last.ckpt"
    out = run_cli(
        "genlab.sample", f"ckpt_path={ckpt}", "num_samples=9", "output=g.png", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    from PIL import Image

    assert Image.open(tmp_path / "g.png").size == (3 * 30 + 2, 3 * 30 + 2)
    out = run_cli(
        "genlab.sample", f"ckpt_path={ckpt}", "num_samples=5", "output=s.npz", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    import numpy as np

    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8


def test_cli_config_error_is_one_clear_line(tmp_path):
    run = run_cli("genlab.train", "model.latent_dim=-3", "hydra.run.dir=run", cwd=tmp_path)
    assert run.returncode == 2
    assert "model.latent_dim=-3" in run.stderr and "Traceback" not in run.stderr

"""Divergence guard, SIGTERM/Ctrl-C checkpoints, reproducibility and the run's records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf

from genlab.callbacks.divergence import DivergenceError
from genlab.cli.entry import run_hydra_cli
from genlab.report.runs import load_run
from genlab.runs.checkpoints import load_checkpoint
from genlab.train import train

TINY = [
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
    "model.latent_dim=8",
    "~callbacks.sample_grid",
]


class InjectNaN(pl.Callback):
    """Corrupt one pixel of the ``at_batch``-th training batch (counted over the run) with NaN."""

    def __init__(self, at_batch: int):
        self.at_batch, self.seen = at_batch, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen += 1
        if self.seen == self.at_batch:
            batch["image"][0, 0, 0, 0] = float("nan")


@pytest.fixture
def extra_callbacks(monkeypatch):
    """``extra_callbacks.append(cb)`` adds ``cb`` to the callbacks train() instantiates."""
    added: list = []
    import genlab.cli.components as components

    original = components.instantiate_callbacks
    monkeypatch.setattr(components, "instantiate_callbacks", lambda c: original(c) + added)
    return added


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_nan_loss_stops_run_and_keeps_last_good_checkpoint(make_cfg, tmp_path, extra_callbacks):
    train(make_cfg(*TINY))  # one good epoch: last.ckpt
    last = tmp_path / "checkpoints" / "last.ckpt"
    good = file_bytes(last)
    extra_callbacks.append(InjectNaN(at_batch=2))
    cfg = make_cfg(*TINY, "trainer.max_epochs=2", f"ckpt_path={last}")
    with pytest.raises(DivergenceError) as err:
        train(cfg)
    message = str(err.value)
    assert "train/loss_d=nan" in message and "epoch 1, batch 1" in message
    assert file_bytes(last) == good  # never overwritten
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "diverged" and "train/loss_d" in status["what"]
    assert "train/diverged" in (tmp_path / "csv" / "metrics.csv").read_text()
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")
    assert load_run(tmp_path).status == "diverged"  # what genlab.compare reports
    state = load_checkpoint(last)["state_dict"]
    assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


def test_bad_steps_are_skipped_up_to_max_skips(make_cfg, tmp_path, extra_callbacks):
    extra_callbacks.append(InjectNaN(at_batch=2))
    vae = ["model=vae", "model.base_channels=8", "model.latent_dim=8", "~callbacks.sample_grid"]
    metrics = train(make_cfg(*vae, "callbacks.divergence.max_skips=1"))
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "completed"
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    assert torch.isfinite(torch.tensor(metrics["val/loss"]))


def test_nonfinite_weights_are_never_saved(make_cfg, tmp_path, extra_callbacks):
    class PoisonWeights(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("inf"))

    extra_callbacks.append(PoisonWeights())
    with pytest.raises(DivergenceError, match="not finite"):
        train(make_cfg(*TINY, "callbacks.divergence.check_grad_norm=false"))
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_divergence_exits_with_code_3(capsys):
    def task():
        raise DivergenceError("training diverged at epoch 0, batch 3: train/loss=nan")

    with pytest.raises(SystemExit) as exit_info:
        run_hydra_cli(task, config_name="train")
    assert exit_info.value.code == 3
    assert capsys.readouterr().err.strip() == (
        "genlab: error: training diverged at epoch 0, batch 3: train/loss=nan"
    )


def test_same_seed_gives_bit_identical_metrics_and_weights(make_cfg, tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = make_cfg(*TINY, "trainer.deterministic=true")
        cfg.paths.output_dir = str(tmp_path / name)
        cfg.callbacks.model_checkpoint.dirpath = str(tmp_path / name / "checkpoints")
        cfg.callbacks.preemption.dirpath = str(tmp_path / name / "checkpoints")
        cfg.logger.csv.save_dir = str(tmp_path / name)
        metrics = train(cfg)
        runs.append((metrics, load_checkpoint(tmp_path / name / "checkpoints" / "last.ckpt")))
    (m1, c1), (m2, c2) = runs
    timing = {"time/elapsed"}  # wall-clock, the one metric allowed to differ
    assert {k: v for k, v in m1.items() if k not in timing} == {
        k: v for k, v in m2.items() if k not in timing
    }
    assert len(m1) > 5
    assert c1["state_dict"].keys() == c2["state_dict"].keys()
    assert all(torch.equal(c1["state_dict"][k], c2["state_dict"][k]) for k in c1["state_dict"])
    # the run records its environment and resolved config, in the run dir and the checkpoint
    env = json.loads((tmp_path / "a" / "env.json").read_text())
    assert env["genlab_version"] and env["packages"]["torch"] == torch.__version__
    assert env["config"]["seed"] == 42 and env["config"]["model"]["latent_dim"] == 8
    assert c1["genlab"]["env"]["packages"]["lightning"] == env["packages"]["lightning"]
    if env["git"] is not None:
        assert len(env["git"]["commit"]) == 40
    assert c1["genlab"]["run_config"]["model"]["latent_dim"] == 8


def test_sigterm_saves_resumable_checkpoint_and_exits_cleanly(tmp_path):
    """A real ``python -m genlab.train`` process gets SIGTERM mid-training."""
    args = [*TINY, "trainer=cpu", "logger=csv", "trainer.max_epochs=1000", "num_threads=1"]
    args += ["~callbacks.rich_progress_bar", "~callbacks.sample_quality", "data.batch_size=16"]
    args += ["hydra.run.dir=run"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "genlab.train", *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    status = tmp_path / "run" / "status.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if status.exists() and json.loads(status.read_text())["status"] == "running":
            break
        time.sleep(0.2)
    time.sleep(2.0)  # fit started (handlers are installed at its setup), likely training
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr and "stopped by SIGTERM" in stderr
    record = json.loads(status.read_text())
    assert record["status"] == "interrupted" and record["signal"] == "SIGTERM"
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] > 0
    assert checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"] > 0


def test_sigint_is_a_graceful_stop_too(make_cfg, tmp_path, extra_callbacks):
    class CtrlC(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 1:
                os.kill(os.getpid(), signal.SIGINT)

    extra_callbacks.append(CtrlC())
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background (nohup, &)
    with pytest.raises(SystemExit) as exit_info:
        train(make_cfg(*TINY, "trainer.limit_train_batches=6"))
    assert exit_info.value.code == 128 + signal.SIGINT
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert progress["completed"] == 2  # stopped after the batch that got Ctrl-C
    assert json.loads((tmp_path / "status.json").read_text())["signal"] == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is before  # the handler it had is restored

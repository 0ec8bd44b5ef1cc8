"""The benchmark suite's building blocks (benchmarks/) and the per-step costs it measures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from genlab.callbacks.divergence import DivergenceGuard
from genlab.callbacks.elapsed_time import ElapsedTimeCallback
from genlab.models import GAN

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import training_rates as tr  # noqa: E402


@pytest.mark.parametrize("model", ["vae", "gan_mlp"])
def test_hand_loop_trains_the_same_nets(make_cfg, model):
    cfg = make_cfg(*tr.MODELS[model], "data.batch_size=16")
    hand = tr.HandLoop(cfg, tr.train_images(cfg, max_images=64))
    before = [p.detach().clone() for p in hand.model.parameters()]
    assert hand.rate(2, warmup=1) > 0
    changed = [not torch.equal(a, b) for a, b in zip(before, hand.model.parameters())]
    assert all(changed)  # every parameter (both GAN nets) took optimizer steps
    assert tr.step_flops(hand) > 0


@pytest.mark.slow
def test_framework_rate_times_exactly_the_requested_batches(make_cfg):
    cfg = make_cfg("model=vae", "data.batch_size=16", fast=False)
    rate = tr.framework_rate(cfg, batches=4)
    assert rate["img_s"] > 0 and rate["cpu_img_s"] > 0 and tr.StepTimer.last["batches"] == 4


def _trainer(writes_logs: bool):
    return SimpleNamespace(_logger_connector=SimpleNamespace(should_update_logs=writes_logs))


def test_elapsed_time_is_logged_only_on_steps_lightning_writes():
    logged = []
    module = SimpleNamespace(log=lambda name, value, **kw: logged.append(name))
    callback = ElapsedTimeCallback()
    callback.on_fit_start(None, module)
    callback.on_train_batch_end(_trainer(False), module)  # between log_every_n_steps
    assert logged == []
    callback.on_train_batch_end(_trainer(True), module)
    assert logged == ["time/elapsed"]


def test_divergence_guard_total_norm_passes_finite_and_stops_infinite_gradients():
    """The guard's total gradient norm (torch.nn.utils.get_total_norm, one call per step)."""
    model = GAN(image_size=28, channels=1, num_classes=10, generator={"arch": "mlp"},
                discriminator={"arch": "mlp", "norm": "none"})  # fmt: skip
    opt = torch.optim.Adam(model.discriminator.parameters())
    model.discriminator(torch.rand(4, 1, 28, 28), None).mean().backward()
    trainer = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=None), optimizers=[opt],
                              current_epoch=0, global_step=3, loggers=[])  # fmt: skip
    guard = DivergenceGuard()
    guard.on_before_optimizer_step(trainer, model, opt)  # finite: nothing happens
    first = next(model.discriminator.parameters())
    first.grad[0] = float("inf")
    with pytest.raises(Exception, match="gradient norm"):
        guard.on_before_optimizer_step(trainer, model, opt)
    assert first.grad is None  # the bad update is dropped


@pytest.mark.slow  # ~50 s: keeps the default suite under its 10-minute budget
def test_five_cpu_minutes_runs_both_readme_commands_and_reports_their_fids(tmp_path):
    """benchmarks/five_cpu_minutes.py (the README's "Five CPU minutes" figures): both commands
    train for the budget, and each row carries the last val/fid, G steps and their ratio."""
    import five_cpu_minutes as five

    assert five.commands(300, "fashion_mnist") == {
        "gan": ["model=gan", "data=fashion_mnist", "+trainer.max_time=00:00:05:00",
                "trainer.max_epochs=1000"],
        "cpu_gan": ["experiment=cpu_gan_fashion_mnist", "trainer.max_time=00:00:05:00"],
    }  # fmt: skip
    small = ["logger=csv", "metrics.num_samples=64", "metrics.num_real=256",
             f"paths.cache_dir={tmp_path / 'cache'}",
             "trainer.precision=32-true"]  # fmt: skip  # bf16 is emulated (slow) without AVX512-BF16
    argv = ["--seconds", "2", "--seeds", "3", "--data", "fashion_mnist_mini"]
    argv += ["--out", str(tmp_path), "--json", str(tmp_path / "five.json"), "--", *small]
    (row,) = five.main(argv)
    for name in ("gan", "cpu_gan"):
        assert row[name]["val_fid"] > 0 and row[name]["g_steps"] >= 1
    assert row["ratio"] == pytest.approx(row["cpu_gan"]["val_fid"] / row["gan"]["val_fid"])
    assert json.loads((tmp_path / "five.json").read_text()) == [row]

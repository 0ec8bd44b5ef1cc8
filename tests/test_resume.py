"""Exact resume after kill -9 mid-epoch, and ``ckpt_path=last`` / ``ckpt_path=<run dir>``."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from conftest import compose_config
from genlab.checks.errors import ConfigError
from genlab.runs.checkpoints import experiment_overrides, load_checkpoint, resolve_ckpt_path
from genlab.train import train

# A tiny GAN with EMA, deterministic on one CPU thread, last.ckpt after every batch.
RUN = [
    "trainer=cpu", "logger=csv", "trainer.max_epochs=2", "+trainer.limit_train_batches=20",
    "+trainer.limit_val_batches=1", "trainer.deterministic=true", "num_threads=1", "seed=3",
    "trainer.enable_model_summary=false", "~callbacks.rich_progress_bar",
    "~callbacks.sample_grid", "~callbacks.sample_quality", "data.batch_size=16", "model.latent_dim=8",
    "model.generator.base_channels=8", "model.discriminator.base_channels=8",
    "model.ema_decay=0.9", "callbacks.preemption.every_n_train_batches=1",
]  # fmt: skip


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def test_kill9_mid_run_then_ckpt_path_last_matches_uninterrupted_run(tmp_path):
    victim = subprocess.Popen(
        [sys.executable, "-m", "genlab.train", *RUN],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # meanwhile: the same run, uninterrupted
        reference = tmp_path / "reference"
        train(compose_config(reference, *RUN))
        expected = weights(reference / "checkpoints" / "last.ckpt")

        runs = tmp_path / "outputs" / "train" / "runs"
        deadline = time.monotonic() + 300
        while not list(runs.glob("*/checkpoints/last.ckpt")) and time.monotonic() < deadline:
            assert victim.poll() is None, victim.stderr.read()[-3000:]
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 1.5))  # anywhere in the first ~third of the run
        assert victim.poll() is None, "the run ended before it could be killed"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
    finally:
        victim.kill()
    (killed_ckpt,) = runs.glob("*/checkpoints/last.ckpt")
    stored = load_checkpoint(killed_ckpt)  # never corrupt
    print(f"killed at global step {stored['global_step']}")
    assert (
        0
        < stored["global_step"]
        < load_checkpoint(reference / "checkpoints/last.ckpt")["global_step"]
    )

    # resume "the latest run of the same config" without naming the file
    resumed = tmp_path / "resumed"
    cfg = compose_config(resumed, *RUN, "ckpt_path=last")
    with open_dict(cfg):
        cfg.paths.log_dir = str(tmp_path / "outputs")
    train(cfg)
    got = weights(resumed / "checkpoints" / "last.ckpt")
    assert got.keys() == expected.keys()
    different = [k for k in expected if not torch.equal(got[k], expected[k])]
    assert not different, f"killed at step {stored['global_step']}: {different[:5]}"


def test_checkpoint_written_during_validation_resumes_exactly(tmp_path):
    """ModelCheckpoint saving in ``on_validation_end`` (``save_on_train_epoch_end=false``)
    stores the RNG streams training continues from, not the ones validation consumed."""
    run = [o for o in RUN if "limit_train_batches" not in o and "preemption" not in o]
    run += [
        "+trainer.limit_train_batches=3", "callbacks.preemption.every_n_minutes=null",
        "callbacks.model_checkpoint.every_n_epochs=1",
        "+callbacks.model_checkpoint.save_on_train_epoch_end=false",
    ]  # fmt: skip
    reference = tmp_path / "reference"
    train(compose_config(reference, *run))
    first_epoch = reference / "checkpoints" / "epoch_000.ckpt"
    assert load_checkpoint(first_epoch)["global_step"] == 3
    resumed = tmp_path / "resumed"
    train(compose_config(resumed, *run, f"ckpt_path={first_epoch}"))
    expected = weights(reference / "checkpoints" / "last.ckpt")
    got = weights(resumed / "checkpoints" / "last.ckpt")
    assert [k for k in expected if not torch.equal(got[k], expected[k])] == []


def _fake_run(root: Path, name: str, overrides: list[str], mtime: float) -> Path:
    run = root / "train" / "runs" / name
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"x")
    import os

    os.utime(ckpt, (mtime, mtime))
    return ckpt


def test_ckpt_path_last_picks_latest_run_of_same_config(tmp_path):
    old = _fake_run(tmp_path, "a", ["model=vae", "seed=1"], 1000)
    new = _fake_run(tmp_path, "b", ["seed=1", "model=vae", "trainer.max_epochs=5"], 2000)
    _fake_run(tmp_path, "c", ["model=vae", "seed=2"], 3000)  # other seed: other experiment
    ours = ["model=vae", "seed=1", "ckpt_path=last", "trainer.max_epochs=20", "hydra.run.dir=x"]
    assert experiment_overrides(ours) == ["model=vae", "seed=1"]
    assert resolve_ckpt_path("last", tmp_path, "train", ours) == str(new)
    assert resolve_ckpt_path(str(old.parents[1]), tmp_path, "train", []) == str(old)
    assert resolve_ckpt_path(str(old), tmp_path, "train", []) == str(old)
    with pytest.raises(ConfigError, match="no run of this config"):
        resolve_ckpt_path("last", tmp_path, "train", ["model=gan"])
    with pytest.raises(ConfigError, match="checkpoints/last.ckpt"):
        resolve_ckpt_path(str(tmp_path), tmp_path, "train", [])


@pytest.mark.slow
def test_repeated_kill9_and_resume_chain_still_matches(tmp_path):
    """Kill -9 four times at random moments, resuming with ckpt_path=last each time: every
    last.ckpt loads, and the finished run equals an uninterrupted one."""
    rng = random.Random(7)
    runs = tmp_path / "outputs" / "train" / "runs"
    for attempt in range(5):
        extra = ["ckpt_path=last"] if list(runs.glob("*/checkpoints/last.ckpt")) else []
        before = {p: p.stat().st_mtime for p in runs.glob("*/checkpoints/last.ckpt")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "genlab.train", *RUN, *extra],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if attempt == 4:  # the last one runs to the end
            assert proc.wait(timeout=600) == 0
            break
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            now = {p: p.stat().st_mtime for p in runs.glob("*/checkpoints/last.ckpt")}
            if any(before.get(p) != t for p, t in now.items()):
                break  # this attempt saved at least once
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.kill()
        proc.wait(timeout=60)
        for ckpt in runs.glob("*/checkpoints/last.ckpt"):
            load_checkpoint(ckpt)  # never corrupt
    reference = tmp_path / "reference"
    train(compose_config(reference, *RUN))
    newest = max(runs.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    expected, got = weights(reference / "checkpoints" / "last.ckpt"), weights(newest)
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_resumable_sampler_order_depends_on_seed_and_epoch_and_can_start_mid_epoch():
    from genlab.data.samplers import ResumableRandomSampler

    a = ResumableRandomSampler(10, seed=1)
    first, second = list(a), list(a)
    assert sorted(first) == list(range(10)) and first == second  # same epoch, same order
    a.set_epoch(1)
    assert list(a) != first  # a new order every epoch
    assert list(ResumableRandomSampler(10, seed=2)) != first  # and every seed
    resumed = ResumableRandomSampler(10, seed=1, epoch=1, start=4)
    assert len(resumed) == 10  # Lightning's batch count is unchanged
    assert list(resumed) == list(a)[4:]  # continues where the crashed run was
    assert list(resumed) == list(a)  # only the first iteration skips

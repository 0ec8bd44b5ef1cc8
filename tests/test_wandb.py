"""wandb without an account: offline by itself, flat config, uint8 sample grids, one run per
train() even when it fails, and resume into the same run id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import FAST, compose_config
from genlab.checks.errors import ConfigError
from genlab.tracking.wandb import has_wandb_credentials, resolve_mode
from genlab.train import train
from wandb_offline import _parse_offline_run, read_offline_run


@pytest.fixture
def no_account(tmp_path, monkeypatch):
    """No API key, no .netrc, no WANDB_* settings: like a fresh machine without network."""
    import os

    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "wandb"))
    return home


def test_mode_is_online_only_with_credentials(no_account):
    assert not has_wandb_credentials()
    assert resolve_mode(None) == "offline"
    assert resolve_mode(False) == "online"  # forced
    assert resolve_mode(None, {"WANDB_API_KEY": "x" * 40}) == "online"
    assert resolve_mode(None, {"WANDB_MODE": "disabled"}) == "disabled"
    (no_account / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    (no_account / ".netrc").chmod(0o600)
    assert has_wandb_credentials() and resolve_mode(None) == "online"
    other_host = {"HOME": str(no_account), "WANDB_BASE_URL": "https://wandb.example.com"}
    assert not has_wandb_credentials(other_host)


def half_written(data: bytes) -> bool:
    """The file's bytes end inside a record (parsing them fails)."""
    from google.protobuf.message import DecodeError

    try:
        _parse_offline_run(data)
    except DecodeError:
        return True
    return False


def offline_run(run_dir):
    files = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert files, f"no offline wandb run under {run_dir}"
    return [read_offline_run(f) for f in files]


def test_offline_run_logs_flat_config_and_uint8_grids_then_resumes_same_id(
    make_cfg, tmp_path, no_account
):
    import wandb

    metrics = train(make_cfg("logger=wandb", "logger.wandb.tags=[unit]", "model.latent_dim=12"))
    assert wandb.run is None  # finished: the next train() gets its own run
    (first,) = offline_run(tmp_path)
    assert first["tags"] == ["unit"] and first["exit_code"] == 0
    assert first["config"]["model.latent_dim"] == "12"
    assert first["config"]["trainer.max_epochs"] == "1"
    logged = {key: value for step in first["history"] for key, value in step.items()}
    assert float(logged["train/loss_d"]) == pytest.approx(metrics["train/loss_d"], rel=1e-5)
    grid_file = next(tmp_path.glob("wandb/offline-run-*/files/media/images/samples/*.png"))
    grid = np.asarray(Image.open(grid_file))
    ours = np.asarray(Image.open(tmp_path / "samples" / "last.png"))
    assert grid.dtype == np.uint8 and grid.std() > 5  # not the black image of float input
    assert grid.shape[:2] == ours.shape[:2]

    # wandb's service may still be writing when the file is read: a half-written record
    data = next(tmp_path.glob("wandb/offline-run-*/run-*.wandb")).read_bytes()
    cut = next(n for n in range(len(data) - 1, 7, -1) if half_written(data[:n]))
    partial = tmp_path / "partial.wandb"
    partial.write_bytes(data[:cut])
    threading.Timer(0.5, partial.write_bytes, [data]).start()
    assert read_offline_run(partial)["exit_code"] == 0

    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    resume = ["logger=wandb", "logger.wandb.resume=true", "model.latent_dim=12"]
    train(make_cfg("trainer.max_epochs=2", f"ckpt_path={ckpt}", *resume))
    runs = offline_run(tmp_path)
    assert len(runs) == 2 and runs[0]["id"] == runs[1]["id"] == first["id"]


def test_failed_train_finishes_its_wandb_run(make_cfg, tmp_path, no_account):
    import wandb

    cfg = make_cfg(
        "logger=wandb",
        "callbacks.model_checkpoint.monitor=val/nope",
        "callbacks.model_checkpoint.every_n_epochs=1",
    )
    with pytest.raises(Exception, match="val/nope"):
        train(cfg)
    assert wandb.run is None
    (run,) = offline_run(tmp_path)
    assert run["exit_code"] == 1


@pytest.mark.parametrize("value", ["", "bogus", "OFFLINE"])
def test_invalid_wandb_mode_is_a_config_error(no_account, monkeypatch, make_cfg, tmp_path, value):
    """wandb reads WANDB_MODE itself and fails with a pydantic traceback on ``WANDB_MODE=``."""
    assert resolve_mode(None, {"WANDB_MODE": "offline"}) == "offline"
    with pytest.raises(ConfigError, match="WANDB_MODE=.* is invalid: allowed one of .*'offline'"):
        resolve_mode(True, {"WANDB_MODE": value})  # wandb reads it even when offline is forced
    monkeypatch.setenv("WANDB_MODE", value)
    with pytest.raises(ConfigError, match="WANDB_MODE"):
        train(make_cfg("logger=wandb"))
    assert not (tmp_path / "wandb").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_cli_empty_wandb_mode_is_one_line_exit_2(no_account, tmp_path):
    env = {**os.environ, "WANDB_MODE": "", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "genlab.train", *FAST, "logger=wandb", "hydra.run.dir=run"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("genlab: error: WANDB_MODE='' is invalid"), lines
    assert "'offline'" in lines[0] and "'disabled'" in lines[0]


def test_ckpt_path_last_with_wandb_resume_continues_that_checkpoints_run(tmp_path, no_account):
    """``ckpt_path=last logger.wandb.resume=true``: the resume flag is not a config change, so
    ``last`` finds the run; its wandb run continues; env.json of both runs holds the id."""
    log_dir = tmp_path / "logs"
    base = [*FAST, "logger=wandb", "model.latent_dim=12", "~callbacks.sample_grid"]

    def run(name: str, *extra: str):
        run_dir = log_dir / "train" / "runs" / name
        cfg = compose_config(run_dir, *base, *extra)
        cfg.paths.log_dir = str(log_dir)  # where ckpt_path=last looks
        (run_dir / ".hydra").mkdir(parents=True)  # as Hydra writes it for every run
        OmegaConf.save([*base, *extra], run_dir / ".hydra" / "overrides.yaml")
        train(cfg)
        return run_dir, json.loads((run_dir / "env.json").read_text())

    first_dir, first_env = run("first")
    (first,) = offline_run(first_dir)
    assert first_env["wandb_run_id"] == first["id"]
    assert first_env["config"]["logger"]["wandb"]["id"] == first["id"]
    second_dir, second_env = run(
        "second", "trainer.max_epochs=2", "ckpt_path=last", "logger.wandb.resume=true"
    )
    (second,) = offline_run(second_dir)
    assert second["id"] == second_env["wandb_run_id"] == first["id"]
    assert second_env["config"]["ckpt_path"] == str(first_dir / "checkpoints" / "last.ckpt")

"""Shared fixtures: compose the real configs with hydra.compose, outputs in a temp dir."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import genlab

CONF_DIR = Path(genlab.__file__).parent / "conf"
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST_RAW = REPO_ROOT.parent / "shared" / "data" / "MNIST" / "raw"
# Debian's dataset-fashion-mnist: the README's offline source of the full Fashion-MNIST
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_IDX_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def debian_fashion_mnist_available() -> bool:
    """All four gzipped IDX files of Debian's package are there."""
    return all((DEBIAN_FASHION / f"{name}.gz").is_file() for name in FASHION_IDX_NAMES)


def unpack_debian_fashion_mnist(data_dir: Path) -> Path:
    """The README's offline step: gunzip Debian's four IDX files into
    ``data_dir/FashionMNIST/raw/`` (where torchvision looks); returns that folder."""
    raw = data_dir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FASHION_IDX_NAMES:
        with gzip.open(DEBIAN_FASHION / f"{name}.gz") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return raw


# Small, fast settings for a few CPU batches; tests add their own overrides on top.
FAST = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=1",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
    "~callbacks.sample_quality",
    "callbacks.sample_grid.num_samples=16",
    "data.batch_size=16",
    "trainer.log_every_n_steps=1",
    "logger=csv",  # the default loggers add wandb (offline); tests/test_wandb.py covers it
]


def bare_trainer(max_steps: int, **kwargs):
    """A ``pl.Trainer`` on the CPU for ``max_steps`` steps that writes nothing: no logger,
    checkpoints, validation, progress bar or summary (``kwargs`` add to or replace these)."""
    options = dict(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return pl.Trainer(**{**options, **kwargs})


def compose_config(output_dir: Path, *overrides: str, config_name: str = "train") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` the way ``python -m genlab.train``
    does, with every path pointed into ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.runtime.cwd = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        if "paths" in cfg:
            cfg.paths.output_dir = str(output_dir)
            cfg.paths.log_dir = str(output_dir / "logs")
            cfg.paths.data_dir = str(output_dir / "data")
            cfg.paths.cache_dir = str(output_dir / "cache")
        del cfg.hydra
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    """``make_cfg(*overrides)`` -> a composed training config writing into ``tmp_path``."""

    def _make(*overrides: str, fast: bool = True) -> DictConfig:
        return compose_config(tmp_path, *(FAST if fast else []), *overrides)

    yield _make
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def _few_threads():
    """Two cores: keep torch from oversubscribing them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)

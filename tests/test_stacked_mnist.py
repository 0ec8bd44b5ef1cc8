"""Stacked MNIST (data=stacked_mnist): deterministic stacks of 3 MNIST digits, 1,000 modes.

The default tests build the dataset from small generated IDX files; the one on the real MNIST
files (../shared/data/MNIST/raw or data/MNIST/raw) skips when they are absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.checks.errors import ConfigError
from genlab.data.registry import datamodule_from_config
from genlab.data.stacked_mnist import NUM_MODES, StackedMNISTDataModule, read_idx

REPO = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_mnist(root: Path, n_train: int = 50, n_test: int = 20) -> Path:
    """IDX files whose digit image k is filled with the value 10 * label + 1 (label = k % 10)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = np.broadcast_to((10 * labels + 1)[:, None, None], (n, 28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def test_idx_round_trip_and_bad_header(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", a)
    assert np.array_equal(read_idx(tmp_path / "a"), a)
    (tmp_path / "b").write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="unsigned-byte IDX"):
        read_idx(tmp_path / "b")


def test_stacks_are_deterministic_and_labelled_by_mode(tmp_path):
    root = fake_mnist(tmp_path)
    dm = StackedMNISTDataModule(data_dir=str(root), num_train=300, num_test=40, stack_seed=3)
    x = dm.images("train")
    assert x.shape == (300, 3, 28, 28) and x.dtype == torch.uint8
    labels = dm.dataset("train").labels
    # each channel is one digit image: its constant value encodes the digit
    digits = (x[:, :, 0, 0].long() - 1) // 10
    assert torch.equal(labels, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])
    assert int(labels.max()) < NUM_MODES and len(labels.unique()) > 100
    same = StackedMNISTDataModule(data_dir=str(root), num_train=300, num_test=40, stack_seed=3)
    assert torch.equal(same.images("train"), x) and torch.equal(
        same.images("test"), dm.images("test")
    )
    assert same.fingerprint("train") == dm.fingerprint("train")
    other = StackedMNISTDataModule(data_dir=str(root), num_train=300, num_test=40, stack_seed=4)
    assert not torch.equal(other.images("train"), x)
    assert other.fingerprint("train") != dm.fingerprint("train")
    # val = test, made of the MNIST test digits only (values of the 20 test images)
    assert dm.images("val").shape == (40, 3, 28, 28)


def test_config_checks_and_registry(tmp_path):
    root = fake_mnist(tmp_path)
    with pytest.raises(ConfigError, match="data.num_classes"):
        StackedMNISTDataModule(data_dir=str(root), num_classes=10)
    with pytest.raises(ConfigError, match="data.channels"):
        StackedMNISTDataModule(data_dir=str(root), channels=1)
    with pytest.raises(ConfigError, match="data.num_train"):
        StackedMNISTDataModule(data_dir=str(root), num_train=0)
    with pytest.raises(ConfigError, match="data.data_dir"):
        StackedMNISTDataModule(data_dir=str(tmp_path / "nowhere")).setup()
    dm = datamodule_from_config(
        {"_target_": "genlab.data.stacked_mnist.StackedMNISTDataModule", "num_train": 64,
         "num_test": 16, "image_size": 32},
        {"data_dir": str(root)},
    )  # fmt: skip
    assert isinstance(dm, StackedMNISTDataModule)
    assert dm.images("train").shape == (64, 3, 32, 32)


def _mnist_dir() -> Path | None:
    for root in (REPO.parent / "shared" / "data", REPO / "data"):
        if (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file():
            return root
    return None


@pytest.mark.skipif(_mnist_dir() is None, reason="MNIST IDX files not present")
def test_real_mnist_modes_are_near_uniform():
    dm = StackedMNISTDataModule(data_dir=str(_mnist_dir()), num_train=1000, num_test=5000)
    counts = torch.bincount(dm.dataset("test").labels, minlength=NUM_MODES)
    assert (counts > 0).sum() > 990  # 5,000 draws over 1,000 near-uniform modes


def test_config_is_commented_and_instantiates(tmp_path):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    path = REPO / "src" / "genlab" / "conf" / "data" / "stacked_mnist.yaml"
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line or line.startswith("_target_"), f"uncommented key: {line}"
    root = fake_mnist(tmp_path)
    cfg = OmegaConf.create({"paths": {"data_dir": str(root)}, "data": OmegaConf.load(path)})
    cfg.data.num_train, cfg.data.num_test = 32, 8
    dm = instantiate(cfg.data)
    assert isinstance(dm, StackedMNISTDataModule) and dm.num_classes == 1000
    assert dm.images("train").shape == (32, 3, 28, 28)

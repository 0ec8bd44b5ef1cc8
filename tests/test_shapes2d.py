"""data=shapes2d: the procedural dSprites-like dataset with known factors (genlab.data.shapes2d)."""

from __future__ import annotations

import hashlib

import pytest
import torch

from conftest import CONF_DIR
from genlab.checks.errors import ConfigError
from genlab.data.shapes2d import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    NUM_IMAGES,
    RENDERER_VERSION,
    Shapes2DDataModule,
    factors_from_index,
    index_from_factors,
    render,
)


def test_the_factor_grid_is_dsprites():
    """Same factors, sizes and image count as dSprites (without its constant colour)."""
    assert FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert NUM_IMAGES == 737_280
    assert render([[0, 0, 0, 0, 0]]).shape == (1, 1, 64, 64)


def test_index_factor_round_trip_over_the_whole_grid():
    index = torch.arange(NUM_IMAGES)
    factors = factors_from_index(index)
    assert factors.shape == (NUM_IMAGES, 5)
    assert torch.equal(index_from_factors(factors), index)
    for column, size in enumerate(FACTOR_SIZES):  # every class of every factor, equally often
        counts = torch.bincount(factors[:, column], minlength=size)
        assert counts.numel() == size and (counts == NUM_IMAGES // size).all()
    # dSprites' order: pos_y fastest, shape slowest
    assert factors_from_index([1]).tolist() == [[0, 0, 0, 0, 1]]
    assert factors_from_index([32]).tolist() == [[0, 0, 0, 1, 0]]
    assert factors_from_index([NUM_IMAGES - 1]).tolist() == [[2, 5, 39, 31, 31]]
    with pytest.raises(IndexError):
        factors_from_index([NUM_IMAGES])
    with pytest.raises(IndexError):
        index_from_factors([[3, 0, 0, 0, 0]])


# sha256 of the bytes of render(every 4097th image): a change of any pixel must bump
# RENDERER_VERSION (part of every fingerprint) and this digest together
PINNED = (1, "16f2fc813ce4b09c82b5f15ed03f055c19e6df7194264162f6b5efb1091ce33f")


def test_rendering_is_deterministic_and_pinned_to_the_version():
    factors = factors_from_index(torch.arange(0, NUM_IMAGES, 4097))
    images = render(factors)
    assert images.dtype == torch.uint8 and set(images.unique().tolist()) == {0, 255}
    assert torch.equal(images, render(factors))
    digest = hashlib.sha256(images.numpy().tobytes()).hexdigest()
    assert (RENDERER_VERSION, digest) == PINNED


def test_every_factor_changes_the_image():
    """From a heart (no rotational symmetry), every value of every factor gives its own image;
    the one exception is dSprites' own: orientation 0 and 2 pi (the first and the last)."""
    base = [2, 3, 5, 16, 16]
    for column, size in enumerate(FACTOR_SIZES):
        factors = torch.tensor(base).repeat(size, 1)
        factors[:, column] = torch.arange(size)
        images = render(factors).flatten(1)
        distinct = {hashlib.sha1(row.numpy().tobytes()).digest() for row in images}
        expected = size - 1 if FACTOR_NAMES[column] == "orientation" else size
        assert len(distinct) == expected, FACTOR_NAMES[column]
        assert (images > 0).any(1).all()  # the sprite is always on the canvas
    orientation = torch.tensor(base).repeat(2, 1)
    orientation[:, 2] = torch.tensor([0, 39])
    first, last = render(orientation)
    assert torch.equal(first, last)


def test_datamodule_splits_factors_and_fingerprint():
    dm = Shapes2DDataModule(num_train=300, num_test=40, batch_size=16)
    train, test = dm.dataset("train"), dm.dataset("test")
    assert (len(train), len(test)) == (300, 40)
    assert not set(train.indices.tolist()) & set(test.indices.tolist())
    assert dm.num_classes == 3 and dm.factor_sizes == FACTOR_SIZES
    images, factors = dm.images("test", max_images=10), dm.factors("test", max_images=10)
    assert images.shape == (10, 1, 64, 64) and factors.shape == (10, 5)
    assert torch.equal(images, render(factors))
    assert torch.equal(dm.factors("train"), train.factors)
    image, label = train[7]
    assert torch.equal(image, render(train.factors[7:8])[0]) and label == train.factors[7, 0]
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (16, 1, 64, 64) and batch[1].shape == (16,)
    # same seed, same data; another seed, another split and fingerprint
    again = Shapes2DDataModule(num_train=300, num_test=40)
    assert again.fingerprint("train") == dm.fingerprint("train")
    assert Shapes2DDataModule(num_train=300, num_test=40, seed=1).fingerprint("train") != (
        dm.fingerprint("train")
    )
    assert dm.protocol()["renderer_version"] == RENDERER_VERSION


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match=r"data\.num_train"):
        Shapes2DDataModule(num_train=NUM_IMAGES)
    with pytest.raises(ConfigError, match=r"data\.num_test"):
        Shapes2DDataModule(num_test=0)
    with pytest.raises(ConfigError, match=r"data\.image_size"):
        Shapes2DDataModule(image_size=32)


def test_config_is_commented_and_rebuilds_from_a_checkpoint_config(tmp_path):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from genlab.data.registry import datamodule_from_config

    path = CONF_DIR / "data" / "shapes2d.yaml"
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith("_target_"):
            assert "#" in line, f"uncommented key in {path}: {line}"
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": OmegaConf.load(path)})
    cfg.data.num_train = 100
    dm = instantiate(cfg.data)
    assert isinstance(dm, Shapes2DDataModule) and len(dm.dataset("train")) == 100
    stored = OmegaConf.to_container(cfg.data, resolve=True)
    rebuilt = datamodule_from_config(stored)  # what genlab.sample / eval do with a checkpoint
    assert rebuilt.fingerprint("test") == dm.fingerprint("test")

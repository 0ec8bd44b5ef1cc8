"""data.subset: a seeded, class-balanced subset of the training split (genlab.data.base)."""

from __future__ import annotations

import pytest
import torch

from genlab.checks.errors import ConfigError
from genlab.data import FashionMNISTMiniDataModule
from genlab.data.base import ImageDataModule, subset_indices
from genlab.data.registry import datamodule_from_config
from genlab.data.tensor_dataset import TensorImageDataset


def _labels(dm: ImageDataModule, split: str = "train") -> torch.Tensor:
    return dm.dataset(split).labels


def test_fraction_is_class_balanced_and_val_test_untouched():
    full = FashionMNISTMiniDataModule()
    dm = FashionMNISTMiniDataModule(subset=0.01, subset_seed=3)
    counts = torch.bincount(_labels(dm), minlength=10)
    assert counts.tolist() == [6] * 10  # 1% of 6000, 600 per class -> 6 each
    for split in ("val", "test"):
        assert torch.equal(dm.dataset(split).images, full.dataset(split).images)
        assert dm.fingerprint(split) == full.fingerprint(split)
    assert torch.equal(dm.images("test"), full.images("test"))
    # the kept images are training images, with their own labels
    index = dm._subset_index
    assert torch.equal(dm.dataset("train").images, full.dataset("train").images[index])
    assert torch.equal(_labels(dm), _labels(full)[index])


def test_count_with_remainder_is_balanced_within_one():
    dm = FashionMNISTMiniDataModule(subset=25, subset_seed=0)
    counts = torch.bincount(_labels(dm), minlength=10)
    assert counts.sum() == 25 and counts.max() - counts.min() == 1
    assert len(torch.unique(_labels(dm))) == 10


def test_deterministic_by_seed_and_seeds_differ():
    a = FashionMNISTMiniDataModule(subset=100, subset_seed=1)
    b = FashionMNISTMiniDataModule(subset=100, subset_seed=1)
    c = FashionMNISTMiniDataModule(subset=100, subset_seed=2)
    assert torch.equal(a.dataset("train").images, b.dataset("train").images)
    assert a.fingerprint("train") == b.fingerprint("train")
    c.setup()
    assert not torch.equal(a._subset_index, c._subset_index)
    assert a.fingerprint("train") != c.fingerprint("train")


def test_recorded_in_fingerprint_and_protocol():
    full = FashionMNISTMiniDataModule()
    dm = FashionMNISTMiniDataModule(subset=0.1, subset_seed=0)
    assert full.subset_protocol() is None
    assert dm.fingerprint("train") != full.fingerprint("train")
    # the whole split as a "subset" is still told apart (the key records the request)
    assert FashionMNISTMiniDataModule(subset=1.0).fingerprint("train") != full.fingerprint("train")
    proto = dm.subset_protocol()
    assert proto["subset"] == 0.1 and proto["subset_seed"] == 0 and proto["num_train"] == 600
    assert proto["per_class"] == {str(c): 60 for c in range(10)}


def test_rebuilt_from_a_stored_config_keeps_the_subset():
    cfg = {"_target_": "genlab.data.FashionMNISTMiniDataModule", "subset": 50, "subset_seed": 4}
    dm = datamodule_from_config(cfg)
    ref = FashionMNISTMiniDataModule(subset=50, subset_seed=4)
    assert dm.fingerprint("train") == ref.fingerprint("train")


@pytest.mark.parametrize("bad", [0, -3, 0.0, 1.5, float("nan"), True, "10%"])
def test_bad_values_name_the_key(bad):
    with pytest.raises(ConfigError, match=r"data\.subset"):
        FashionMNISTMiniDataModule(subset=bad)


def test_more_images_than_the_split_is_refused():
    dm = FashionMNISTMiniDataModule(subset=6001)
    with pytest.raises(ConfigError, match=r"data\.subset.*at most 6000"):
        dm.setup()


def test_unlabelled_is_plain_seeded_sampling_and_short_classes_are_filled():
    idx = subset_indices(None, 5, seed=0, total=20)
    assert len(idx) == 5 and len(set(idx.tolist())) == 5 and int(idx.max()) < 20
    assert torch.equal(idx, subset_indices(None, 5, seed=0, total=20))
    # class 0 has 2 items, class 1 has 10: 8 asked -> all of class 0, 6 of class 1
    labels = torch.tensor([0, 0] + [1] * 10)
    idx = subset_indices(labels, 8, seed=0)
    assert torch.bincount(labels[idx]).tolist() == [2, 6]


class _Unlabelled(ImageDataModule):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.channels = 4, 1

    def _load(self):
        images = torch.arange(30, dtype=torch.uint8).view(30, 1, 1, 1).expand(30, 1, 4, 4)
        return {
            "train": TensorImageDataset(images.contiguous()),
            "test": TensorImageDataset(images[:5].contiguous()),
        }


def test_every_subclass_gets_the_keys():
    dm = _Unlabelled(subset=7, subset_seed=1)
    assert len(dm.dataset("train")) == 7 and len(dm.dataset("test")) == 5
    assert dm.subset_protocol()["per_class"] is None


def test_the_sample_quality_protocol_records_the_training_subset():
    """A run's FID protocol (sample_quality.json, eval.json) says what data.subset kept."""
    from genlab.metrics import SampleQuality

    sq = SampleQuality(dataset="fashion_mnist_mini", metrics=["fid"], num_real=50)
    proto = sq.protocol(FashionMNISTMiniDataModule(subset=0.01, subset_seed=2))
    assert proto["train_subset"]["num_train"] == 60
    assert proto["train_subset"]["subset_seed"] == 2
    assert sq.protocol(FashionMNISTMiniDataModule())["train_subset"] is None

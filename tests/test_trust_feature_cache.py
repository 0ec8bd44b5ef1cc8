"""The real-feature cache verifies what it loads (issue "trust, round 2"): key, shape, dtype,
N and the sha256 of the features recorded beside them; any mismatch warns and recomputes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.metrics import SampleQuality

BUNDLED = (
    Path(__file__).resolve().parent.parent / "src" / "genlab" / "assets" / "fashion_mnist_mini.npz"
)


class CountedDataModule:
    """The metrics' datamodule contract plus ``num_images``."""

    def __init__(self, images: torch.Tensor):
        self._images, self.name = images, "fashion_mnist_mini"
        self.image_size, self.channels = images.shape[-1], images.shape[1]
        self.images_calls = 0

    def images(self, split: str = "train", max_images: int | None = None) -> torch.Tensor:
        self.images_calls += 1
        return self._images if max_images is None else self._images[:max_images]

    def num_images(self, split: str = "train") -> int:
        return len(self._images)

    def fingerprint(self, split: str) -> str:
        return f"{self.name}-{split}-v1"


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    with np.load(BUNDLED) as z:
        return torch.from_numpy(np.array(z["train_images"][:120])).unsqueeze(1)


def sq(tmp_path, **kw) -> SampleQuality:
    args = dict(features="classifier", dataset="fashion_mnist_mini", num_samples=64,
                batch_size=64, kid_subsets=5, kid_subset_size=50, is_splits=2,
                cache_dir=tmp_path)  # fmt: skip
    args.update(kw)
    return SampleQuality(**args)


def first_file(tmp_path, images, **kw):
    dm = CountedDataModule(images)
    s = sq(tmp_path, **kw)
    fs = s.real_features(dm)
    path = tmp_path / f"{s.cache_key(dm)}.pt"
    assert path.is_file()
    return dm, fs, path


def reload(tmp_path, dm, **kw):
    s = sq(tmp_path, **kw)
    with pytest.warns(UserWarning, match="does not verify"):
        fs = s.real_features(dm)
    assert s.stats["real_extractions"] == 1 and s.stats["cache_hits"] == 0
    return s, fs


def test_a_verified_file_is_a_hit(tmp_path, images):
    dm, fs, _ = first_file(tmp_path, images)
    s = sq(tmp_path)
    again = s.real_features(dm)
    assert s.stats["cache_hits"] == 1 and torch.equal(again.features, fs.features)


def test_scaled_features_are_recomputed(tmp_path, images):
    dm, fs, path = first_file(tmp_path, images)
    blob = torch.load(path, weights_only=True)
    blob["features"] = blob["features"] * 0.5  # same key, shape, dtype and N
    torch.save(blob, path)
    _, again = reload(tmp_path, dm)
    assert torch.equal(again.features, fs.features)
    # the file was overwritten with the right features
    assert torch.equal(torch.load(path, weights_only=True)["features"], fs.features)


def test_a_short_consistent_file_is_recomputed(tmp_path, images):
    from genlab.metrics.feature_cache import _blob
    from genlab.metrics.features import FeatureSet

    dm, fs, path = first_file(tmp_path, images)
    key = torch.load(path, weights_only=True)["key"]
    short = FeatureSet(fs.features[:5].clone(), fs.logits[:5].clone())
    torch.save(_blob(key, short), path)  # self-consistent digest, 5 rows
    _, again = reload(tmp_path, dm)
    assert len(again) == len(images)


def test_a_short_file_under_num_real_is_recomputed(tmp_path, images):
    dm, fs, path = first_file(tmp_path, images, num_real=100)
    blob = torch.load(path, weights_only=True)
    blob["features"], blob["logits"] = blob["features"][:5], blob["logits"][:5]
    torch.save(blob, path)
    _, again = reload(tmp_path, dm, num_real=100)
    assert len(again) == 100


@pytest.mark.parametrize("edit", ["key", "dtype", "dim", "old_format", "not_a_dict"])
def test_any_mismatch_is_recomputed(tmp_path, images, edit):
    dm, fs, path = first_file(tmp_path, images)
    blob = torch.load(path, weights_only=True)
    if edit == "key":
        blob["key"] = "realfeats-something-else"
    elif edit == "dtype":
        blob["features"] = blob["features"].double()
    elif edit == "dim":
        blob["features"] = blob["features"][:, :64].contiguous()
    elif edit == "old_format":  # what genlab wrote before: no record beside the features
        blob = {"features": blob["features"], "logits": blob["logits"], "key": blob["key"]}
    else:
        blob = [blob["features"]]
    torch.save(blob, path)
    _, again = reload(tmp_path, dm)
    assert torch.equal(again.features, fs.features)


def test_imagedatamodule_counts_its_images():
    from genlab.data.bundled import FashionMNISTMiniDataModule

    dm = FashionMNISTMiniDataModule()
    assert dm.num_images("train") == len(dm.images("train"))
    assert dm.num_images("test") == len(dm.images("test"))

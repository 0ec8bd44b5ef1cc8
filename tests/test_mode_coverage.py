"""Mode-coverage metrics (genlab.metrics.coverage) against cases whose answer is known.

* a generator that outputs one class covers one class, and its KL is -log q(class);
* the real test split against the train reference covers every class with KL ~ 0;
* per-class FID of a set against itself is 0;
* Stacked MNIST: the per-channel classifier's joint argmax is the mode 100 R + 10 G + B.
"""

from __future__ import annotations

import math

import pytest
import torch

from genlab.checks.errors import ConfigError
from genlab.data.bundled import FashionMNISTMiniDataModule
from genlab.metrics import SampleQuality
from genlab.metrics.coverage import (
    StackedClassifier,
    class_fids,
    coverage_scores,
    frechet_distance,
    kl_divergence,
)
from genlab.metrics.features import FeatureSet


def one_hot_logits(classes: list[int], k: int = 10) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(classes), k).float() * 10


def test_one_class_covers_one_and_kl_is_minus_log_q():
    real = one_hot_logits(list(range(10)) * 100)  # balanced reference
    fake = one_hot_logits([3] * 500)
    out = coverage_scores(fake, real, threshold=0.1)
    q3 = (100 + 1) / (1000 + 10)  # the one-count smoothing of the reference
    assert out["classes_covered"] == 1 and out["modes_covered"] == 1
    assert out["coverage_kl"] == pytest.approx(-math.log(q3))
    assert out["coverage_kl_uniform"] == pytest.approx(math.log(10))


def test_threshold_is_a_share_of_the_real_share():
    real = one_hot_logits(list(range(10)) * 100)
    # 10 samples per class but class 9 holds 2 of 1000: 2% of its real share (10%)
    fake = one_hot_logits([c for c in range(9) for _ in range(111)] + [9, 9])
    assert coverage_scores(fake, real, threshold=0.1)["classes_covered"] == 9
    assert coverage_scores(fake, real, threshold=0.01)["classes_covered"] == 10
    assert coverage_scores(fake, real, threshold=0.0)["modes_covered"] == 10


def test_kl_direction_and_edge_cases():
    p, q = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5])
    assert kl_divergence(p, q) == pytest.approx(math.log(2))  # KL(p || q): finite
    assert kl_divergence(q, p) == math.inf  # the other direction is not
    assert kl_divergence(q, q) == 0.0


def test_frechet_distance_known_answers():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 4, generator=g, dtype=torch.float64)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # a shift by d in every coordinate adds |d|^2 * D
    assert frechet_distance(x + 2.0, x) == pytest.approx(16.0, rel=1e-9)


def test_class_fids_of_a_set_against_itself_are_zero():
    g = torch.Generator().manual_seed(1)
    fs = FeatureSet(
        torch.randn(300, 5, generator=g), one_hot_logits([i % 3 for i in range(300)], 3)
    )
    per_class = class_fids(fs, fs)
    assert sorted(per_class) == [0, 1, 2]
    assert max(per_class.values()) < 1e-6


@pytest.fixture(scope="module")
def mini():
    return FashionMNISTMiniDataModule()


def test_one_class_generator_and_real_test_split(mini):
    """End to end through SampleQuality with the shipped fashion_mnist_mini classifier."""
    sq = SampleQuality(
        metrics=["coverage", "class_fid"], num_samples=200, num_real=1000, batch_size=200
    )
    assert sq.metrics == ("coverage", "class_fid")
    test = mini.images("test")
    labels = mini.dataset("test").labels
    one_class = test[labels == 1][:1]  # one trouser image, repeated: one mode

    out = sq.evaluate(lambda n: one_class.expand(n, -1, -1, -1).float() / 255, mini)
    assert out["classes_covered"] == 1 and out["modes_covered"] == 1
    assert out["coverage_kl"] > 1.9  # ~ log 10 = 2.30 for a balanced reference

    real = sq.compute(test, mini)  # the held-out test split vs the train reference
    assert real["classes_covered"] == 10 and real["modes_covered"] == 10
    assert real["coverage_kl"] < 0.02
    # one image repeated has no within-class spread: its class FID is far above the reals'
    assert 2 * real["class_fid"] < out["class_fid"]
    protocol = sq.protocol(mini)
    assert protocol["coverage_threshold"] == 0.1 and protocol["metrics"][-1] == "class_fid"


def test_bad_settings_name_the_key():
    with pytest.raises(ConfigError, match="metrics.metrics"):
        SampleQuality(metrics=["fid", "coverag"])
    with pytest.raises(ConfigError, match="metrics.coverage_threshold"):
        SampleQuality(metrics=["coverage"], coverage_threshold=2)
    with pytest.raises(ConfigError, match="metrics.features=classifier"):
        SampleQuality(features="inception", inception_net="fid_helper", metrics=["coverage"])


class _Digits(torch.nn.Module):
    """A fake 1-channel classifier: the digit is the image's mean value * 10."""

    num_classes, num_features = 10, 2

    def features_and_logits(self, x):
        d = (x.float().mean((1, 2, 3)) / 255 * 10).long().clamp(0, 9)
        return torch.stack([d.float(), -d.float()], 1), one_hot_logits(d.tolist())


def test_stacked_classifier_joint_mode():
    digits = torch.tensor([[7, 0, 3], [1, 2, 9]])
    x = (digits.float() * 25.5 + 1).to(torch.uint8)[:, :, None, None].expand(-1, -1, 28, 28)
    net = StackedClassifier(_Digits(), 3)
    feats, logits = net.features_and_logits(x)
    assert feats.shape == (2, 6) and logits.shape == (2, 1000)
    assert logits.argmax(1).tolist() == [703, 129]
    # the joint is a normalised log-probability (softmax of it sums to 1 without renormalising)
    assert torch.allclose(logits.exp().sum(1), torch.ones(2), atol=1e-5)


def test_training_callback_logs_the_coverage_names():
    from genlab.callbacks.sample_quality import SampleQualityCallback

    cb = SampleQualityCallback(
        metrics=["fid", "coverage", "class_fid"], dataset="fashion_mnist_mini"
    )
    assert cb.logged_names() == [
        "val/fid", "val/coverage_kl", "val/coverage_kl_uniform", "val/classes_covered",
        "val/modes_covered", "val/class_fid", "val/class_fid_max",
    ]  # fmt: skip


# ---------------------------------------------------------------------------- collapse guard
class _Logger:
    def __init__(self):
        self.logged = []

    def log_metrics(self, metrics, step):
        self.logged.append((dict(metrics), step))


def _fake_trainer(tmp_path, sq, num_classes=10):
    from types import SimpleNamespace

    return SimpleNamespace(
        callbacks=[sq], loggers=[_Logger()], default_root_dir=str(tmp_path), is_global_zero=True,
        current_epoch=0, global_step=0, datamodule=SimpleNamespace(num_classes=num_classes),
        sanity_checking=False,
    )  # fmt: skip


def _evaluation(trainer, sq, guard, covered):
    sq.num_evaluations += 1
    sq.last_results = {"classes_covered": covered}
    trainer.current_epoch += 1
    trainer.global_step += 10
    guard.on_train_epoch_end(trainer, None)


def test_collapse_guard_records_status_after_patience(tmp_path, caplog):
    import json

    from genlab.callbacks.collapse import CollapseGuard
    from genlab.callbacks.sample_quality import SampleQualityCallback
    from genlab.runs.records import read_status, write_status

    write_status(tmp_path, "running", num=3)  # what genlab.train / a sweep job wrote
    sq = SampleQualityCallback(metrics=["coverage"])
    trainer = _fake_trainer(tmp_path, sq)
    guard = CollapseGuard(threshold=0.9, patience=2)
    guard.on_fit_start(trainer, None)
    _evaluation(trainer, sq, guard, 10.0)
    _evaluation(trainer, sq, guard, 3.0)  # 1 evaluation below 9 classes: not yet
    guard.on_train_end(trainer, None)  # the same evaluation is not counted twice
    assert not guard.collapsed and read_status(tmp_path)["status"] == "running"
    _evaluation(trainer, sq, guard, 2.0)
    assert guard.collapsed and guard.count == 2
    status = read_status(tmp_path)
    assert status["status"] == "collapsed" and status["num"] == 3  # the sweep's keys are kept
    assert status["collapse"]["value"] == 2.0 and status["collapse"]["threshold"] == 9.0
    assert json.loads((tmp_path / "collapse.json").read_text())["epoch"] == 3
    assert [m["train/collapsed"] for m, _ in trainer.loggers[0].logged] == [0.0, 0.0, 1.0]
    assert "mode collapse: val/classes_covered = 2 < 9" in caplog.text
    _evaluation(trainer, sq, guard, 10.0)  # recovered: the count restarts
    assert guard.count == 0 and guard.collapsed


def test_collapse_guard_stop_and_bad_settings(tmp_path):
    from genlab.callbacks.collapse import CollapseError, CollapseGuard
    from genlab.callbacks.sample_quality import SampleQualityCallback

    sq = SampleQualityCallback(metrics=["coverage"])
    trainer = _fake_trainer(tmp_path, sq)
    guard = CollapseGuard(
        monitor="val/coverage_kl", threshold=1.0, relative=False, collapsed_when="above",
        patience=1, stop=True,
    )  # fmt: skip
    guard.on_fit_start(trainer, None)
    sq.num_evaluations, sq.last_results = 1, {"coverage_kl": 2.3}
    with pytest.raises(CollapseError, match="val/coverage_kl = 2.3 > 1"):
        guard.on_train_epoch_end(trainer, None)
    with pytest.raises(ConfigError, match="callbacks.collapse.collapsed_when"):
        CollapseGuard(collapsed_when="under")
    with pytest.raises(ConfigError, match="callbacks.collapse.patience"):
        CollapseGuard(patience=0)


@pytest.mark.slow
def test_collapse_in_a_lightning_run_one_class_generator(tmp_path, mini):
    """A real Trainer: a 'generator' that outputs one image covers one class; after 2
    evaluations the guard writes status: collapsed and the callback logged val/classes_covered."""
    import lightning.pytorch as pl

    from genlab.callbacks.collapse import CollapseGuard
    from genlab.callbacks.sample_quality import SampleQualityCallback
    from genlab.runs.records import read_status

    image = mini.images("test")[:1].float() / 255

    class OneImage(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            return (self.w**2).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def generate(self, n):
            return image.expand(n, -1, -1, -1).to(self.device)

    sq = SampleQualityCallback(metrics=["coverage"], num_samples=50, num_real=200, batch_size=50)
    guard = CollapseGuard(patience=2)
    trainer = pl.Trainer(
        max_epochs=3, limit_train_batches=1, limit_val_batches=0, callbacks=[sq, guard],
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(tmp_path),
    )  # fmt: skip
    trainer.fit(OneImage(), datamodule=mini)
    assert sq.last_results["classes_covered"] == 1
    assert guard.collapsed and read_status(tmp_path)["status"] == "collapsed"


def test_collapse_guard_is_idle_without_coverage(tmp_path):
    from genlab.callbacks.collapse import CollapseGuard
    from genlab.callbacks.sample_quality import SampleQualityCallback

    sq = SampleQualityCallback(metrics=["fid"])
    trainer = _fake_trainer(tmp_path, sq, num_classes=None)  # e.g. data=folder: no classes
    guard = CollapseGuard()
    guard.on_fit_start(trainer, None)  # no ConfigError: nothing to watch
    _evaluation(trainer, sq, guard, 0.0)
    assert not guard.watching(trainer) and guard.count == 0 and not trainer.loggers[0].logged

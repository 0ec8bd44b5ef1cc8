"""Metrics say what they measured (issue 11): every FID/KID comes with its reference split,
N real, N fake and feature network (SampleQuality.protocol, the callback's sample_quality.json),
and metrics.real_split chooses the reference."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from genlab.checks.errors import ConfigError
from genlab.metrics import SampleQuality, classifier_weights_path
from test_metrics import ContractDataModule, TinyGAN, TinyGenerator, bundled  # noqa: F401

SHIPPED = hashlib.sha256(classifier_weights_path("fashion_mnist_mini").read_bytes()).hexdigest()
NETWORK = f"classifier-fashion_mnist_mini-{SHIPPED[:12]}"


class SplitDataModule:
    """Different images per split; records which split the metrics asked for."""

    name, image_size, channels = "fashion_mnist_mini", 28, 1

    def __init__(self, train: torch.Tensor, test: torch.Tensor):
        self.splits = {"train": train, "val": test, "test": test}
        self.asked: list[str] = []

    def images(self, split="train", max_images=None):
        self.asked.append(split)
        images = self.splits[split]
        return images if max_images is None else images[:max_images]

    def fingerprint(self, split):
        return f"fp-{'train' if split == 'train' else 'test'}"


def evaluator(**kw) -> SampleQuality:
    defaults = dict(
        dataset="fashion_mnist_mini", num_samples=64, batch_size=64, num_real=None,
        kid_subsets=5, is_splits=2,
    )  # fmt: skip
    return SampleQuality(**{**defaults, **kw})


def test_protocol_names_split_counts_and_network(bundled):  # noqa: F811
    dm = SplitDataModule(bundled["train"][:300], bundled["test"][:120])
    generator = TinyGenerator(bundled["test"][120:220])
    on_test = evaluator(real_split="test")
    scores = on_test.evaluate(generator, dm)
    assert dm.asked == ["test"]  # metrics.real_split chose the reference images
    assert on_test.protocol(dm) == {
        "metrics": ["fid", "kid", "is", "precision", "recall"],
        "features": "classifier",
        "network": NETWORK,
        "reference_data": "fashion_mnist_mini",
        "reference_split": "test",
        "reference_fingerprint": "fp-test",
        "num_real": 120,
        "num_fake": 64,
        "seed": 0,
        "kid_subsets": 5,
        "kid_subset_size": 32,  # at most half of the 64 fakes
        "is_splits": 2,
    }
    assert dm.asked == ["test"]  # the protocol reuses the reference features in memory
    on_train = evaluator(real_split="train", num_real=200)
    other = on_train.evaluate(generator, dm, num_samples=80)
    assert other["fid"] != scores["fid"]
    protocol = on_train.protocol(dm)
    assert (protocol["reference_split"], protocol["num_real"], protocol["num_fake"]) == (
        "train",
        200,
        80,
    )
    json.dumps(protocol)  # JSON-ready (eval.json, sample_quality.json)


def test_real_split_is_validated():
    with pytest.raises(ConfigError, match="metrics.real_split='validation'.*'train', 'val'"):
        SampleQuality(real_split="validation")


def test_callback_records_the_protocol_in_the_run_dir(bundled, tmp_path):  # noqa: F811
    from genlab.callbacks.sample_quality import SampleQualityCallback

    cb = SampleQualityCallback(
        num_samples=32, batch_size=32, kid_subsets=2, is_splits=2, num_real=100,
        real_split="test", metrics=("fid", "kid"),
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", devices=1, logger=False, callbacks=[cb],
        limit_train_batches=1, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(TinyGAN(), datamodule=ContractDataModule(bundled["train"][:200]))
    record = json.loads((tmp_path / "sample_quality.json").read_text())
    assert record["logged_as"] == ["val/fid", "val/kid", "val/kid_std"]
    (entry,) = record["protocols"]  # same protocol both epochs: one entry
    assert (entry["first_epoch"], entry["last_epoch"]) == (0, 1)
    assert entry["reference_split"] == "test" and entry["num_fake"] == 32
    assert entry["num_real"] == 100 and entry["network"] == NETWORK
    assert entry["kid_subset_size"] == 16
    assert cb.last_protocol["network"] == NETWORK


def test_configs_pass_real_split_and_record_the_protocol(tmp_path):
    import hydra.utils
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parent.parent / "src" / "genlab" / "conf"
    cfg = OmegaConf.create(
        {
            "paths": {"cache_dir": str(tmp_path)},
            "metrics": OmegaConf.load(conf / "metrics" / "default.yaml"),
            "callbacks": OmegaConf.load(conf / "callbacks" / "sample_quality.yaml"),
        }
    )
    assert cfg.metrics.kid_subset_size is None  # min(1000, N/2): no warning at the defaults
    cfg.metrics.real_split = "val"
    cb = hydra.utils.instantiate(cfg.callbacks.sample_quality)
    assert cb.sample_quality.real_split == "val"
    assert cb.protocol_file == Path("sample_quality.json")
    assert cb.sample_quality.kid_subset_size_for(10000, cfg.metrics.num_samples) == 500


def test_at_start_scores_the_untrained_model_at_step_0(bundled, tmp_path):  # noqa: F811
    """callbacks.sample_quality.at_start=true: the baseline a short run is measured against."""
    import csv

    from lightning.pytorch.loggers import CSVLogger

    from genlab.callbacks.sample_quality import SampleQualityCallback

    cb = SampleQualityCallback(
        num_samples=32, batch_size=32, num_real=100, real_split="test", metrics=("fid",),
        at_start=True,
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, callbacks=[cb], limit_train_batches=1,
        logger=CSVLogger(tmp_path, name="csv", version=""), enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(TinyGAN(), datamodule=ContractDataModule(bundled["train"][:200]))
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    untrained = [r for r in rows if r.get("untrained/fid")]
    assert [int(r["step"]) for r in untrained] == [0]
    assert float(untrained[0]["untrained/fid"]) > 0
    assert any(r.get("val/fid") for r in rows)  # the regular evaluation still runs

"""The class labels a conditional GAN's fakes are drawn with (``model.fake_labels``)."""

from __future__ import annotations

import torch

from genlab.checks.errors import ConfigError


def training_label_counts(datamodule, num_classes: int) -> torch.Tensor:
    """Images per class (num_classes,) int64 in the datamodule's training split
    (``model.fake_labels: dataset``): its ``labels`` tensor when in memory, else each item's
    label. A ConfigError when there is no such split or a label is not a class."""
    dataset = getattr(datamodule, "dataset", None)
    if not callable(dataset):
        raise ConfigError(
            "model.fake_labels",
            "dataset",
            "real or uniform here (fitting without a genlab datamodule: no training labels to "
            "count; pass one with trainer.fit(model, datamodule=dm))",
        )
    ds = dataset("train")
    labels = getattr(ds, "labels", None)
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor([int(ds[i][1]) for i in range(len(ds))], dtype=torch.int64)
    labels = labels.long().reshape(-1)
    if labels.numel() == 0 or labels.min() < 0 or labels.max() >= num_classes:
        raise ConfigError(
            "model.fake_labels",
            "dataset",
            f"real or uniform, or training data labelled 0..{num_classes - 1} (found labels "
            f"outside it, or none: -1 = unlabelled)",
        )
    return torch.bincount(labels, minlength=num_classes)

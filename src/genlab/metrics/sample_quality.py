"""FID, KID, Inception Score and k-NN precision/recall in one offline, cached evaluator.

:class:`SampleQuality` runs every image through the feature network exactly once whatever the
number of metrics: generated images in batches, real images once per dataset version. Its
parts: feature spaces (``features=``, ``inception_net=``), their verified networks and
extraction in :mod:`genlab.metrics.features`; the real-feature cache in
:mod:`genlab.metrics.feature_cache`; FID/KID/IS (torchmetrics) and precision/recall of two
feature sets, KID subset sizes included, in :mod:`genlab.metrics.scores`.

Asking for a metric the feature space cannot give (``"is"`` with the fid_helper Inception) is a
:class:`ConfigError`. :meth:`SampleQuality.protocol` says what a number measured: reference
data, split and fingerprint, N real, N fake, feature network (with its weights' sha256), KID
subsets. Everything random (KID subsets, IS split order, P/R subsample, the generator's latents
in :meth:`SampleQuality.evaluate`) runs under ``torch.random.fork_rng`` seeded with ``seed``:
the scores of a fixed model are reproducible and the training's random stream is untouched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from genlab.checks.errors import ConfigError
from genlab.checks.values import check_int
from genlab.metrics.coverage import (
    COVERAGE_METRICS,
    COVERAGE_OUTPUT_KEYS,
    DEFAULT_THRESHOLD,
    CoverageFeatureExtractor,
    coverage_metrics,
)
from genlab.metrics.feature_cache import RealFeatureCache
from genlab.metrics.features import (
    FEATURE_SPACES,
    FeatureExtractor,
    FeatureSet,
    available_metrics,
    requested_metrics,
)
from genlab.metrics.features import METRICS as FEATURE_METRICS
from genlab.metrics.scores import KID_SUBSET_SIZE, FeatureScores
from genlab.metrics.scores import OUTPUT_KEYS as FEATURE_OUTPUT_KEYS

__all__ = [
    "FEATURE_SPACES",
    "KID_SUBSET_SIZE",
    "METRICS",
    "OUTPUT_KEYS",
    "FeatureSet",
    "SampleQuality",
    "eval_mode",
]

REAL_SPLITS = ("train", "val", "test")
#: Every metric name: the feature-distance ones (FID, KID, IS, precision, recall; the default
#: set) and the coverage ones of :mod:`genlab.metrics.coverage` (requested by name).
METRICS = FEATURE_METRICS + COVERAGE_METRICS
#: Keys of the dict returned by :meth:`SampleQuality.compute` for each metric.
OUTPUT_KEYS = {**FEATURE_OUTPUT_KEYS, **COVERAGE_OUTPUT_KEYS}


def split_metrics(metrics: Iterable[str] | str | None) -> tuple[Any, tuple[str, ...]]:
    """``metrics`` -> (the feature-distance names for :func:`requested_metrics`, ``None`` when
    ``metrics`` is ``None``; the coverage names). ConfigError (``metrics.metrics``) for an
    unknown name, listing all of :data:`METRICS`."""
    if metrics is None:
        return None, ()
    names = (metrics,) if isinstance(metrics, str) else tuple(str(m) for m in metrics)
    for m in names:
        if m not in METRICS:
            raise ConfigError("metrics.metrics", m, METRICS)
    coverage = tuple(dict.fromkeys(m for m in names if m in COVERAGE_METRICS))
    return tuple(m for m in names if m not in COVERAGE_METRICS), coverage


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Put ``module`` (and all children) in eval mode, then restore each one's previous mode."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


def _setting(part: str, name: str) -> property:
    """A read-only attribute of the evaluator kept by one of its parts."""
    return property(lambda self: getattr(getattr(self, part), name), doc=f"``{part}.{name}``.")


def _forward(part: str, method: Callable) -> Callable:
    """A method of the evaluator that calls ``method`` of its part ``part`` (same docstring)."""

    @functools.wraps(method)
    def forwarded(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, part), method.__name__)(*args, **kwargs)

    return forwarded


class SampleQuality:
    """Offline sample-quality evaluator (FID, KID, IS, precision, recall).

    Args:
        features: ``"classifier"`` or ``"inception"`` (see :mod:`genlab.metrics.features`).
        dataset: which shipped classifier to use (``classifier`` features only); ``None`` = the
            ``name`` of the real datamodule passed to :meth:`compute` / :meth:`evaluate`.
        metrics: subset of ``("fid", "kid", "is", "precision", "recall", "coverage",
            "class_fid")``; ``None`` = the first five that the feature space offers. The coverage
            metrics (:mod:`genlab.metrics.coverage`) need ``features="classifier"``.
        inception_net: ``"auto"``, ``"fid_helper"`` or ``"torch_fidelity"`` (``inception``
            features only, see :mod:`genlab.metrics.features`).
        inception_weights: torch-fidelity's weights file; ``None`` = the torch hub cache.
        num_samples: generated images per evaluation in :meth:`evaluate`.
        batch_size: images per generator / feature-network call.
        num_real: real images used for the reference statistics (``max_images`` of
            ``dm.images``); ``None`` = the whole split.
        real_split: split of the datamodule used as reference (``"train"``).
        cache_dir: directory of the on-disk real-feature cache; ``None`` = memory only.
        kid_subsets, kid_subset_size: KID subsets and their size; ``None`` = ``min(1000, N/2)``,
            a larger size is capped to half of the smaller set (see :meth:`kid_subset_size_for`).
        is_splits: Inception Score splits.
        pr_k: k of the k-NN manifolds of precision/recall.
        seed: seed of every random choice of an evaluation (see module docstring).
        coverage_threshold: a class counts in ``classes_covered`` when it holds at least this
            share of its real share of the generated samples (and one sample); ``0`` = one
            sample.
        device: feature-network device; ``None`` = CPU unless a device is passed per call.
    """

    features = _setting("extractor", "features")
    dataset = _setting("extractor", "dataset")
    inception_net = _setting("extractor", "inception_net")
    inception_weights = _setting("extractor", "inception_weights")
    batch_size = _setting("extractor", "batch_size")
    device = _setting("extractor", "device")
    cache_dir = _setting("cache", "directory")
    real_split = _setting("cache", "split")
    num_real = _setting("cache", "num_real")
    kid_subsets = _setting("scores", "kid_subsets")
    kid_subset_size = _setting("scores", "kid_subset_size")
    is_splits = _setting("scores", "is_splits")
    pr_k = _setting("scores", "pr_k")
    seed = _setting("scores", "seed")

    def __init__(
        self,
        features: str = "classifier",
        dataset: str | None = None,
        metrics: Iterable[str] | str | None = None,
        num_samples: int = 1000,
        batch_size: int = 250,
        num_real: int | None = 10000,
        real_split: str = "train",
        cache_dir: str | os.PathLike | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int | None = None,
        is_splits: int = 10,
        pr_k: int = 3,
        seed: int = 0,
        device: str | torch.device | None = None,
        inception_net: str = "auto",
        inception_weights: str | os.PathLike | None = None,
        coverage_threshold: float = DEFAULT_THRESHOLD,
    ):
        if features not in FEATURE_SPACES:
            raise ConfigError("metrics.features", features, FEATURE_SPACES)
        net: str | None = None
        if features == "inception":
            from genlab.metrics.inception import resolve_inception_net

            net = resolve_inception_net(inception_net, inception_weights)
        metrics, coverage = split_metrics(metrics)
        if coverage and features != "classifier":
            raise ConfigError(
                "metrics.metrics",
                list(coverage),
                "no coverage metric with metrics.features='inception' (coverage and per-class "
                "FID count the classes of the dataset's classifier): metrics.features=classifier",
            )
        metrics = (
            ()
            if coverage and metrics == ()
            else requested_metrics(metrics, features, net, inception_weights)
        )
        if (
            isinstance(coverage_threshold, bool)
            or not isinstance(coverage_threshold, (int, float))
            or not 0 <= coverage_threshold <= 1
        ):
            raise ConfigError(
                "metrics.coverage_threshold", coverage_threshold, "a number in [0, 1]"
            )
        self.coverage_threshold = float(coverage_threshold)
        #: The requested coverage metrics (:mod:`genlab.metrics.coverage`).
        self.coverage_metrics = coverage
        self.num_samples = check_int("metrics.num_samples", num_samples, 2)
        batch_size = check_int("metrics.batch_size", batch_size)
        num_real = None if num_real is None else check_int("metrics.num_real", num_real, 2)
        if real_split not in REAL_SPLITS:
            raise ConfigError("metrics.real_split", real_split, REAL_SPLITS)
        #: Counters, handy for tests and benchmarks.
        self.stats = {"real_extractions": 0, "cache_hits": 0, "feature_batches": 0}
        #: The real-feature cache (:mod:`genlab.metrics.feature_cache`).
        self.cache = RealFeatureCache(cache_dir, real_split, num_real, self.stats)
        #: The metrics of two feature sets (:mod:`genlab.metrics.scores`).
        self.scores = FeatureScores(
            metrics, kid_subsets, kid_subset_size, is_splits, pr_k, seed, self.num_samples
        )
        #: The feature network and its extraction (:mod:`genlab.metrics.features`); the weights
        #: are verified now.
        self.extractor = CoverageFeatureExtractor(
            features, net, inception_weights, dataset, batch_size, device, self.stats
        )
        self.last_timing: dict[str, float] = {}
        #: (N real, N fake) of the last :meth:`compute_from_features`.
        self.last_counts: tuple[int, int] | None = None

    available_metrics = staticmethod(available_metrics)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The requested metric names: feature-distance ones, then coverage ones."""
        return tuple(self.scores.metrics) + self.coverage_metrics

    kid_subset_size_for = _forward("scores", FeatureScores.kid_subset_size_for)
    resolve_dataset = _forward("extractor", FeatureExtractor.resolve_dataset)
    feature_space_id = _forward("extractor", FeatureExtractor.feature_space_id)
    feature_net = _forward("extractor", FeatureExtractor.feature_net)
    extract = _forward("extractor", FeatureExtractor.extract)

    def generate_features(
        self,
        generate: Callable[[int], Tensor],
        num_samples: int | None = None,
        dataset: str | None = None,
        device: str | torch.device | None = None,
    ) -> FeatureSet:
        """Features of ``num_samples`` (``None`` = ``self.num_samples``) generated images, with
        the RNG seeded by ``seed`` (see :meth:`FeatureExtractor.generate`)."""
        n = self.num_samples if num_samples is None else num_samples
        return self.extractor.generate(generate, n, self.seed, dataset, device)

    # ------------------------------------------------------------------ real statistics
    def cache_key(self, dm: Any) -> str:
        """The real-feature cache key of ``dm`` (:func:`.feature_cache.real_feature_key`)."""
        return self.cache.key(dm, self.feature_space_id(self.resolve_dataset(dm)))

    def real_features(self, real: Any, device: str | torch.device | None = None) -> FeatureSet:
        """Reference features of ``real``: a :class:`FeatureSet`, an image tensor, or a datamodule.

        For a datamodule (``images(split, max_images)``, ``fingerprint(split)``, ``name``,
        ``image_size``, ``channels``) they are computed once per :meth:`cache_key`, kept in memory
        (one entry) and, with ``cache_dir``, stored in ``<cache_dir>/<key>.pt``.
        """
        if isinstance(real, FeatureSet):
            return real
        dataset = self.resolve_dataset(real)
        if isinstance(real, Tensor):
            return self.extract(real, dataset, device)
        if not (hasattr(real, "images") and hasattr(real, "fingerprint")):
            raise TypeError(
                "real must be a FeatureSet, an image tensor or a datamodule with "
                f"images(split, max_images) and fingerprint(split); got {type(real).__name__}"
            )
        space = self.feature_space_id(dataset)
        return self.cache.features(real, space, lambda x: self.extract(x, dataset, device))

    # ------------------------------------------------------------------ metrics
    def protocol(self, real: Any, num_fake: int | None = None) -> dict[str, Any]:
        """What the metrics of an evaluation against ``real`` measured (JSON-ready values).

        Keys: ``metrics`` (names), ``features``, ``network`` (:meth:`feature_space_id`, with the
        weights' sha256), ``reference_data`` (datamodule ``name``), ``reference_split``
        (``real_split``; ``None`` when ``real`` is a tensor or FeatureSet),
        ``reference_fingerprint`` (content hash of that split), ``num_real`` (reference images
        actually used), ``num_fake`` (``num_fake``, else the last evaluation's, else
        ``num_samples``), ``kid_subsets`` and ``kid_subset_size`` (the size actually used),
        ``is_splits``, ``seed``; for a datamodule also ``train_subset`` (what ``data.subset`` kept of
        the training split: :meth:`~genlab.data.base.ImageDataModule.subset_protocol`, None
        when training used all of it). FIDs/KIDs are comparable only when ``network``,
        ``reference_*``, ``num_real`` and ``num_fake`` agree (FID is biased in N).

        For a datamodule the reference features come from :meth:`real_features` (in memory
        after an evaluation, else the cache, else computed).
        """
        dataset = self.resolve_dataset(real)
        is_dm = not isinstance(real, (Tensor, FeatureSet))
        n_real = int(real.shape[0]) if isinstance(real, Tensor) else len(self.real_features(real))
        if num_fake is None:
            num_fake = self.last_counts[1] if self.last_counts is not None else self.num_samples
        out: dict[str, Any] = {
            "metrics": list(self.metrics),
            "features": self.features,
            "network": self.feature_space_id(dataset),
            "reference_data": dataset if not is_dm else str(getattr(real, "name", "data")),
            "reference_split": self.real_split if is_dm else None,
            "reference_fingerprint": str(real.fingerprint(self.real_split)) if is_dm else None,
            "num_real": int(n_real),
            "num_fake": int(num_fake),
            "seed": self.seed,
        }
        subset_protocol = getattr(real, "subset_protocol", None) if is_dm else None
        if callable(subset_protocol):  # what the run trained on (data.subset; None: all of it)
            out["train_subset"] = subset_protocol()
        if "kid" in self.metrics:
            out["kid_subsets"] = self.kid_subsets
            out["kid_subset_size"] = self.kid_subset_size_for(n_real, int(num_fake))
        if "is" in self.metrics:
            out["is_splits"] = self.is_splits
        if self.coverage_metrics:
            out["coverage_threshold"] = self.coverage_threshold
            out["coverage_kl_direction"] = "KL(generated || real), nats"
            out["coverage_classes"] = "argmax of the classifier's logits"
        return out

    def compute_from_features(self, fake: FeatureSet, real: FeatureSet) -> dict[str, float]:
        """The metrics from two :class:`FeatureSet` (see :meth:`compute`)."""
        n_fake, n_real = len(fake), len(real)
        if n_fake < 2 or n_real < 2:
            raise ValueError(f"need at least 2 real and 2 fake samples, got {n_real} and {n_fake}")
        if fake.features.shape[1] != real.features.shape[1]:
            raise ValueError("real and fake features come from different feature spaces")
        self.last_counts = (n_real, n_fake)
        # Real state is reused across calls only for the cached datamodule features; any other
        # FeatureSet gets a fresh token (never equal to the previous one), i.e. a full reset.
        key = self.cache.key_of(real)
        out = {}
        if self.scores.metrics:
            out = self.scores.compute(fake, real, object() if key is None else key)
        out.update(coverage_metrics(fake, real, self.coverage_metrics, self.coverage_threshold))
        return out

    def compute(
        self,
        fake: Tensor | FeatureSet,
        real: Any,
        device: str | torch.device | None = None,
    ) -> dict[str, float]:
        """Metrics of ``fake`` (images uint8 / float [0,1] (N,C,H,W), or a FeatureSet) vs ``real``.

        ``real`` is a datamodule (cached reference features), an image tensor or a FeatureSet.
        Returns floats keyed ``fid``, ``kid``, ``kid_std``, ``is``, ``is_std``, ``precision``,
        ``recall`` (those of the requested metrics).
        """
        if isinstance(fake, FeatureSet):
            return self._timed(real, device, lambda dataset: fake)
        return self._timed(real, device, lambda dataset: self.extract(fake, dataset, device))

    def evaluate(
        self,
        generate: Callable[[int], Tensor],
        real: Any,
        num_samples: int | None = None,
        device: str | torch.device | None = None,
    ) -> dict[str, float]:
        """Generate ``num_samples`` images with ``generate`` and :meth:`compute` their metrics."""
        return self._timed(
            real,
            device,
            lambda dataset: self.generate_features(generate, num_samples, dataset, device),
        )

    def _timed(
        self, real: Any, device: Any, fake_features: Callable[[str | None], FeatureSet]
    ) -> dict[str, float]:
        """Real features, then ``fake_features(dataset)``, then the metrics; ``last_timing``."""
        t0 = time.perf_counter()
        real_fs = self.real_features(real, device)
        t1 = time.perf_counter()
        fake_fs = fake_features(self.resolve_dataset(real))
        t2 = time.perf_counter()
        out = self.compute_from_features(fake_fs, real_fs)
        t3 = time.perf_counter()
        self.last_timing = {"real": t1 - t0, "fake_features": t2 - t1, "metrics": t3 - t2}
        return out

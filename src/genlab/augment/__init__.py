"""Differentiable augmentations for GAN training on small data.

* :mod:`genlab.augment.diffaugment`: DiffAugment (Zhao et al. 2020), a fixed policy of
  color / translation / cutout applied to every real and fake image D sees.
* :mod:`genlab.augment.ada`: ADA (Karras et al. 2020), an augmentation pipeline applied with an
  adaptive probability p, steered by the overfitting heuristic r_t = E[sign(D(real))].
* :mod:`genlab.augment.policy`: their operation names and parsers, without torch.

The names below load their module (and torch) on first use, so importing
``genlab.augment.policy`` stays torch-free.
"""

from __future__ import annotations

from genlab.lazy_exports import lazy_exports

_LAZY = {
    "AdaptiveAugment": "genlab.augment.ada",
    "AugmentPipe": "genlab.augment.ada",
    "DiffAugment": "genlab.augment.diffaugment",
    "diff_augment": "genlab.augment.diffaugment",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)

"""Differentiable augmentations for GAN training on small data.

* :mod:`genlab.augment.diffaugment`: DiffAugment (Zhao et al. 2020), a fixed policy of
  color / translation / cutout applied to every real and fake image D sees.
* :mod:`genlab.augment.ada`: ADA (Karras et al. 2020), an augmentation pipeline applied with an
  adaptive probability p, steered by the overfitting heuristic r_t = E[sign(D(real))].
"""

from genlab.augment.ada import AdaptiveAugment, AugmentPipe
from genlab.augment.diffaugment import DiffAugment, diff_augment

__all__ = ["AdaptiveAugment", "AugmentPipe", "DiffAugment", "diff_augment"]

"""The names ``model.loss`` (GAN) and ``model.likelihood`` (VAE) take, as plain data: the
model configs check them without importing torch. The objects are
:data:`genlab.losses.gan.GAN_LOSSES` and :data:`genlab.losses.likelihoods.LIKELIHOODS` (a test
pins these names against their keys, in order)."""

from __future__ import annotations

GAN_LOSS_NAMES = (
    "saturating",
    "non_saturating",
    "hinge",
    "wasserstein",
    "least_squares",
    "relativistic_average",
    "relativistic_pairing",
)
LIKELIHOOD_NAMES = (
    "bernoulli",
    "gaussian",
    "discretized_logistic",
    "discretized_logistic_mixture",
)

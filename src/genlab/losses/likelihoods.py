"""Decoder likelihoods p(x|z) for VAEs, picked by ``model.likelihood``.

Images ``x`` are (B, C, H, W) in [0, 1]; decoder outputs ``params`` are
(B, C * params_per_channel, H, W). ``log_prob`` sums over pixels and returns (B,) nats per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.utils.errors import ConfigError


class Likelihood(nn.Module):
    """Base class. ``dequantization_nats_per_dim`` turns a density on [0, 1] into the
    probability of an 8-bit pixel value, for honest bits/dim (0 for discrete likelihoods).

    genlab feeds pixel ``i`` as ``x = i / 255``, so the values are 1/255 apart and the bin of
    ``i`` has width 1/255: ``-log P(i) ~= -log p(x) + log 255`` per dim (midpoint rule; the
    often-quoted ``log 256`` belongs to data scaled as ``(i + u) / 256``)."""

    params_per_channel = 1
    dequantization_nats_per_dim = 0.0

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """The image (B, C, H, W) in [0, 1] that the decoder output stands for."""
        raise NotImplementedError


class Bernoulli(Likelihood):
    """Bernoulli on each pixel; ``params`` are logits. Exact for binarised data."""

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)


class Gaussian(Likelihood):
    """Gaussian N(x; mu, std^2) per pixel; ``params`` are the means. ``std`` is fixed, or a
    single learned scalar when ``learn_std`` is true (initialised at ``std``)."""

    dequantization_nats_per_dim = math.log(255.0)  # see Likelihood

    def __init__(self, std: float = 0.1, learn_std: bool = False):
        super().__init__()
        log_std = torch.tensor(math.log(std))
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        log_std = self.log_std.float()
        z = (x - params.float()) * torch.exp(-log_std)
        per_pixel = -0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)
        return per_pixel.flatten(1).sum(1)

    def mean(self, params: Tensor) -> Tensor:
        return params.clamp(0.0, 1.0)


class DiscretizedLogistic(Likelihood):
    """Discretised logistic over 256 bins (Salimans et al. 2017, one component) for 8-bit images.

    ``params`` hold per-pixel means (first C channels, on [-1, 1]) and log-scales (last C).
    """

    params_per_channel = 2

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        mean, log_scale = params.float().chunk(2, dim=1)
        log_scale = log_scale.clamp(min=-7.0)
        x = torch.round(x * 255.0) / 127.5 - 1.0  # to bin centres on [-1, 1]
        centered, inv_scale = x - mean, torch.exp(-log_scale)
        plus_in = inv_scale * (centered + 1.0 / 255.0)
        min_in = inv_scale * (centered - 1.0 / 255.0)
        log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid, for the 0 bin
        log_one_minus_cdf_min = -F.softplus(min_in)  # for the 255 bin
        cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
        mid_in = inv_scale * centered
        log_pdf_mid = mid_in - log_scale - 2.0 * F.softplus(mid_in) - math.log(127.5)
        inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
        log_probs = torch.where(
            x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, inner)
        )
        return log_probs.flatten(1).sum(1)

    def mean(self, params: Tensor) -> Tensor:
        mean, _ = params.chunk(2, dim=1)
        return ((mean + 1.0) / 2.0).clamp(0.0, 1.0)


LIKELIHOODS = {
    "bernoulli": Bernoulli,
    "gaussian": Gaussian,
    "discretized_logistic": DiscretizedLogistic,
}


def build_likelihood(name: str, gaussian_std: float = 0.1, learn_std: bool = False) -> Likelihood:
    """Build the likelihood named by ``model.likelihood``."""
    if name not in LIKELIHOODS:
        raise ConfigError("model.likelihood", name, list(LIKELIHOODS))
    if name == "gaussian":
        return Gaussian(gaussian_std, learn_std)
    return LIKELIHOODS[name]()


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per latent dimension, (B, latent_dim)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var)


def gaussian_log_density(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """log N(z; mean, diag(exp(log_var))) summed over the last dim: (..., D) -> (...)."""
    return -0.5 * ((z - mean).pow(2) * torch.exp(-log_var) + log_var + math.log(2 * math.pi)).sum(
        -1
    )

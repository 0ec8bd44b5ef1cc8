"""Decoder likelihoods p(x|z) for VAEs, picked by ``model.likelihood``.

Images ``x`` are (B, C, H, W) in [0, 1] (8-bit pixel ``i`` as ``i / 255``); decoder outputs
``params`` are (B, C * params_per_channel, H, W). ``log_prob`` sums over pixels and returns (B,)
nats per image: the log of a probability (pmf) of the pixel values, never a density.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.checks.errors import ConfigError

PIXEL_LEVELS = 256  # 8-bit images: pixel i in {0, ..., 255} is fed as x = i / 255


class Likelihood(nn.Module):
    """Base class: ``log_prob`` is the log of a normalised probability of the data.

    Every genlab likelihood is a pmf: over the 256 values of an 8-bit pixel (discretised
    Gaussian, discretised logistic) or, for ``binary_data_only`` ones (Bernoulli), over
    {0, 1}. So nats are ``-log P(x)`` and bits/dim ``nats / (D ln 2)`` need no dequantisation
    term, and ``-log P(x) >= 0``. :meth:`nll_unavailable_reason` says when ``log_prob`` is not
    such a probability of the data at hand (a Bernoulli on grey-level pixels)."""

    params_per_channel = 1
    binary_data_only = False  # a probability only of pixels in {0, 1}
    # Kept at 0 for callers that add it to bits/dim: every likelihood here is discrete.
    dequantization_nats_per_dim = 0.0

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """The image (B, C, H, W) in [0, 1] that the decoder output stands for."""
        raise NotImplementedError

    def nll_unavailable_reason(
        self, data_binarized: bool | None, data: str | None = None
    ) -> str | None:
        """``None`` when ``log_prob`` is a log-likelihood of the data, else why it is not.

        ``data_binarized``: whether the pixels are in {0, 1} (``data.binarize``; ``None`` =
        unknown). Only a binary-only likelihood depends on it. ``data`` replaces the clause
        that says what the data are (e.g. what a check of the pixels found)."""
        name = type(self).__name__.lower()
        if not self.binary_data_only or data_binarized is True:
            return None
        if data is None and data_binarized is None:
            data = "it is unknown whether the data are binary (model.data_binarized=null)"
        elif data is None:
            data = "the data are grey-level (data.binarize=false)"
        return (
            f"model.likelihood={name} is a probability of binary pixels only and {data}, so its "
            "nats and bits/dim are not a log-likelihood of the data and no NLL or bits/dim is "
            "reported; use data.binarize=true, or model.likelihood=discretized_logistic|gaussian "
            "(pmfs over the 256 pixel values)"
        )


class Bernoulli(Likelihood):
    """Bernoulli on each pixel; ``params`` are logits. A likelihood only of binarised data
    (``data.binarize=true``): on grey levels it is a reconstruction loss, not a probability."""

    binary_data_only = True

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)


def log_normal_interval(lo: Tensor, hi: Tensor) -> Tensor:
    """log(Phi(hi) - Phi(lo)) elementwise for finite lo < hi (Phi: standard normal cdf).

    Stable in both tails: an interval right of 0 is mirrored to the left one of equal mass,
    where ``log_ndtr`` keeps its precision; then ``log Phi(hi) + log(1 - Phi(lo) / Phi(hi))``.
    """
    flip = (lo + hi) > 0
    lo, hi = torch.where(flip, -hi, lo), torch.where(flip, -lo, hi)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log(-torch.expm1((log_lo - log_hi).clamp(max=-1e-30)))


class Gaussian(Likelihood):
    """Discretised Gaussian over the 256 8-bit pixel values; ``params`` are the means on [0, 1].

    Pixel ``i`` (fed as ``x = i / 255``) gets the mass of N(mu, std^2) on its bin
    ``[(i - 0.5) / 255, (i + 0.5) / 255]``; the bins of 0 and 255 extend to -inf / +inf, so
    the 256 probabilities sum to 1 for any mu and std and ``-log P(x) >= 0`` (bits/dim are a
    real bound; a density evaluated at bin centres is not: with a small learned std it exceeds
    1 / bin width and bits/dim go negative). Inputs off the 8-bit grid are rounded to it.
    ``std`` is fixed, or one learned scalar when ``learn_std`` (initialised at ``std``).
    """

    min_log_std = -14.0  # std >= 8e-7, far below the bin width 1/255; keeps exp(-log_std) finite

    def __init__(self, std: float = 0.1, learn_std: bool = False):
        super().__init__()
        log_std = torch.tensor(math.log(std))
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        inv_std = torch.exp(-self.log_std.float().clamp(min=self.min_log_std))
        top = PIXEL_LEVELS - 1
        level = torch.round(x.float() * top).clamp(0, top)
        mean = params.float()
        lo = ((level - 0.5) / top - mean) * inv_std
        hi = ((level + 0.5) / top - mean) * inv_std
        # every branch is finite (no inf * 0 in the gradients of the unused ones)
        inner = log_normal_interval(lo, hi)
        log_probs = torch.where(
            level == 0,
            torch.special.log_ndtr(hi),
            torch.where(level == top, torch.special.log_ndtr(-lo), inner),
        )
        return log_probs.flatten(1).sum(1)

    def mean(self, params: Tensor) -> Tensor:
        return params.clamp(0.0, 1.0)


class DiscretizedLogistic(Likelihood):
    """Discretised logistic over 256 bins (Salimans et al. 2017, one component) for 8-bit images.

    ``params`` hold per-pixel means (first C channels, on [-1, 1]) and log-scales (last C).
    """

    params_per_channel = 2

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        mean, log_scale = params.float().chunk(2, dim=1)
        x = torch.round(x * 255.0) / 127.5 - 1.0  # to bin centres on [-1, 1]
        return logistic_bin_log_prob(x, mean, log_scale).flatten(1).sum(1)

    def mean(self, params: Tensor) -> Tensor:
        mean, _ = params.chunk(2, dim=1)
        return ((mean + 1.0) / 2.0).clamp(0.0, 1.0)


def logistic_bin_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """log P(pixel) of a logistic(mean, exp(log_scale)) discretised to the 256 bins of width
    2/255 on [-1, 1]; ``x`` are bin centres on [-1, 1]; the edge bins extend to -inf / +inf.
    Elementwise (broadcasting), fp32; the PixelCNN++ computation (Salimans et al. 2017)."""
    log_scale = log_scale.clamp(min=-7.0)
    centered, inv_scale = x - mean, torch.exp(-log_scale)
    plus_in = inv_scale * (centered + 1.0 / 255.0)
    min_in = inv_scale * (centered - 1.0 / 255.0)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid, for the 0 bin
    log_one_minus_cdf_min = -F.softplus(min_in)  # for the 255 bin
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_scale * centered
    log_pdf_mid = mid_in - log_scale - 2.0 * F.softplus(mid_in) - math.log(127.5)
    inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
    return torch.where(
        x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, inner)
    )


class DiscretizedLogisticMixture(Likelihood):
    """Mixture of discretised logistics over the 256 values of each 8-bit channel (PixelCNN++,
    Salimans, Karpathy, Chen & Kingma 2017, eq. 2 and section 2.2).

    Per pixel, with M components, mixture weights pi = softmax(logits) and, for RGB, the
    channels coupled linearly inside each component::

        P(x) = sum_m pi_m  L(r | mu_r,m, s_r,m)  L(g | mu_g,m + a_m r, s_g,m)
                            L(b | mu_b,m + b_m r + c_m g, s_b,m)

    where L(v | mu, s) = sigma((v + 1/255 - mu)/s) - sigma((v - 1/255 - mu)/s) on [-1, 1]
    (edge bins to +-inf) and a, b, c = tanh(.) of decoder outputs. Grey images: one channel,
    no coupling. ``params`` (B, num_params(C), H, W): M logits, then C*M means, C*M
    log-scales, then (RGB only) 3*M coupling coefficients. A pmf over the 256^C values of a
    pixel, so bits/dim are a real number (e.g. CIFAR-10's).
    """

    def __init__(self, num_mixtures: int = 10):
        super().__init__()
        self.num_mixtures = num_mixtures

    def num_params(self, channels: int) -> int:
        m = self.num_mixtures
        return m * (1 + 2 * channels + (3 if channels == 3 else 0))

    def _split(self, params: Tensor, channels: int):
        m = self.num_mixtures
        b, _, h, w = params.shape
        params = params.float()
        logits = params[:, :m]  # (B, M, H, W)
        rest = params[:, m:]
        means = rest[:, : channels * m].reshape(b, channels, m, h, w)
        log_scales = rest[:, channels * m : 2 * channels * m].reshape(b, channels, m, h, w)
        coeffs = None
        if channels == 3:
            coeffs = torch.tanh(rest[:, 2 * channels * m :].reshape(b, 3, m, h, w))
        return logits, means, log_scales, coeffs

    def _coupled_means(self, means: Tensor, coeffs: Tensor | None, x: Tensor) -> Tensor:
        """Component means (B, C, M, H, W) given the earlier channels of x (B, C, 1, H, W)."""
        if coeffs is None:
            return means
        red = means[:, 0:1]
        green = means[:, 1:2] + coeffs[:, 0:1] * x[:, 0:1]
        blue = means[:, 2:3] + coeffs[:, 1:2] * x[:, 0:1] + coeffs[:, 2:3] * x[:, 1:2]
        return torch.cat([red, green, blue], dim=1)

    def channels_of(self, params: Tensor) -> int:
        m = self.num_mixtures
        for channels in (1, 3):
            if params.shape[1] == self.num_params(channels):
                return channels
        raise ValueError(f"{params.shape[1]} parameters per pixel fit no 1- or 3-channel {m}-mix")

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        channels = self.channels_of(params)
        logits, means, log_scales, coeffs = self._split(params, channels)
        x = (torch.round(x.float() * 255.0) / 127.5 - 1.0).unsqueeze(2)  # (B, C, 1, H, W)
        means = self._coupled_means(means, coeffs, x)
        log_bins = logistic_bin_log_prob(x, means, log_scales).sum(1)  # (B, M, H, W)
        log_probs = torch.logsumexp(log_bins + torch.log_softmax(logits, dim=1), dim=1)
        return log_probs.flatten(1).sum(1)

    def mean(self, params: Tensor) -> Tensor:
        """The mixture's mean image (B, C, H, W) in [0, 1] (component means coupled through
        the component's own channel means; edge-bin clipping ignored)."""
        channels = self.channels_of(params)
        logits, means, _, coeffs = self._split(params, channels)
        if coeffs is not None:
            red = means[:, 0]
            green = means[:, 1] + coeffs[:, 0] * red
            blue = means[:, 2] + coeffs[:, 1] * red + coeffs[:, 2] * green
            means = torch.stack([red, green, blue], dim=1)
        weights = torch.softmax(logits, dim=1).unsqueeze(1)  # (B, 1, M, H, W)
        mixed = (weights * means.clamp(-1.0, 1.0)).sum(2)
        return ((mixed + 1.0) / 2.0).clamp(0.0, 1.0)


LIKELIHOODS = {
    "bernoulli": Bernoulli,
    "gaussian": Gaussian,
    "discretized_logistic": DiscretizedLogistic,
    "discretized_logistic_mixture": DiscretizedLogisticMixture,
}


def build_likelihood(
    name: str, gaussian_std: float = 0.1, learn_std: bool = False, num_mixtures: int = 10
) -> Likelihood:
    """Build the likelihood named by ``model.likelihood``."""
    if name not in LIKELIHOODS:
        raise ConfigError("model.likelihood", name, list(LIKELIHOODS))
    if name == "gaussian":
        return Gaussian(gaussian_std, learn_std)
    if name == "discretized_logistic_mixture":
        return DiscretizedLogisticMixture(num_mixtures)
    return LIKELIHOODS[name]()


def num_decoder_params(likelihood: Likelihood, channels: int) -> int:
    """Decoder output channels per pixel for ``likelihood`` on ``channels``-channel images."""
    if hasattr(likelihood, "num_params"):
        return likelihood.num_params(channels)
    return channels * likelihood.params_per_channel


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per latent dimension, (B, latent_dim)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var)


def gaussian_log_density(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """log N(z; mean, diag(exp(log_var))) summed over the last dim: (..., D) -> (...)."""
    return -0.5 * ((z - mean).pow(2) * torch.exp(-log_var) + log_var + math.log(2 * math.pi)).sum(
        -1
    )

"""Likelihood report of a VAE: ELBO, importance-sampled NLL and bits/dim, only when they exist.

An NLL (``-log p(x)`` in nats) and bits/dim are reported only when the decoder likelihood is a
normalised probability of the evaluated pixels: always for the discretised logistic and the
discretised Gaussian (pmfs over the 256 8-bit values), and for the Bernoulli only when every
evaluated pixel is 0 or 1. Otherwise the report holds the objective's terms and
``nll_unavailable_reason`` instead, and a warning says why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import torch
from torch import Tensor

from genlab.checks.errors import ConfigError

log = logging.getLogger(__name__)


def bits_per_dim(nats_per_image: float, data_dims: int) -> float:
    """``nats / (D ln 2)``: nats per image of a pmf over the pixel values -> bits per dimension.

    No dequantisation term: every genlab likelihood is already a probability of the discrete
    pixel values (see :mod:`genlab.losses.likelihoods`)."""
    return nats_per_image / (data_dims * math.log(2.0))


def is_binary(x: Tensor) -> bool:
    """Whether every pixel of ``x`` (B, C, H, W) is exactly 0 or 1."""
    return bool(((x == 0) | (x == 1)).all())


@torch.no_grad()
def vae_likelihood(
    model,
    batches: Iterable[Tensor],
    k: int,
    k_batch: int,
    device: torch.device,
    prefix: str = "test/",
    data_binarized: bool | None = None,
) -> dict[str, float | int | str]:
    """Per-image means over ``batches`` (images (B, C, H, W) in [0, 1]) of a
    :class:`genlab.models.VAE`; sums in fp64.

    ``data_binarized`` (e.g. the datamodule's ``binarize``) overrides ``model.data_binarized``;
    for a binary-only likelihood the pixels are checked as well. ``k`` importance samples per
    image, ``k_batch`` of them per decoder pass.

    Returns, when ``p(x|z)`` is a probability of the data: ``<prefix>{elbo, nll, nll_stderr,
    kl, recon_log_prob, recon_mse, elbo_bpd, nll_bpd}``; otherwise ``<prefix>{loss, kl,
    recon_mse}`` (``loss`` = the training objective at beta = 1, the value ``val/loss`` logs,
    not a bound on ``-log p(x)``) and ``nll_unavailable_reason``. Both: ``num_images``, ``k``,
    ``data_dims``, ``likelihood``.
    """
    reason = model.nll_unavailable_reason(data_binarized)
    binary_only = model.likelihood.binary_data_only
    sums = {"elbo": 0.0, "nll": 0.0, "nll_sq": 0.0, "kl": 0.0, "recon": 0.0, "mse": 0.0}
    count = 0
    for x in batches:
        x = x.to(device)
        if reason is None and binary_only and not is_binary(x):
            found = "the evaluated images hold pixels other than 0 and 1"
            reason = model.likelihood.nll_unavailable_reason(False, found)
        terms = model.elbo_terms(x)
        recon_mean = model.reconstruct(x).float()
        if reason is None:  # the costly estimate only while it means something
            log_px = model.iwae_bound(x, k, chunk_size=k_batch).double()
            sums["nll"] += (-log_px).sum().item()
            sums["nll_sq"] += log_px.pow(2).sum().item()
        sums["elbo"] += (terms["recon"] - terms["kl"]).double().sum().item()
        sums["kl"] += terms["kl"].double().sum().item()
        sums["recon"] += terms["recon"].double().sum().item()
        sums["mse"] += (recon_mean - x).pow(2).flatten(1).mean(1).double().sum().item()
        count += x.shape[0]
    if count == 0:
        raise ConfigError("num_test_images", 0, "an integer >= 1 (the split is empty)")
    mean = {name: value / count for name, value in sums.items()}
    dims = model.data_dims
    common = {"num_images": count, "k": k, "data_dims": dims, "likelihood": model.config.likelihood}
    if reason is not None:
        log.warning(f"no {prefix}nll or bits/dim: {reason}")
        return {
            f"{prefix}loss": -mean["elbo"],
            f"{prefix}kl": mean["kl"],
            f"{prefix}recon_mse": mean["mse"],
            **common,
            "nll_unavailable_reason": reason,
        }
    nll_var = max(mean["nll_sq"] - mean["nll"] ** 2, 0.0)
    return {
        f"{prefix}elbo": mean["elbo"],
        f"{prefix}nll": mean["nll"],
        f"{prefix}nll_stderr": math.sqrt(nll_var / max(count - 1, 1)),
        f"{prefix}kl": mean["kl"],
        f"{prefix}recon_log_prob": mean["recon"],
        f"{prefix}recon_mse": mean["mse"],
        f"{prefix}elbo_bpd": bits_per_dim(-mean["elbo"], dims),
        f"{prefix}nll_bpd": bits_per_dim(mean["nll"], dims),
        **common,
    }

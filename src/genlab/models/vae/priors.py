"""Priors p(z) of the single-latent VAE: the standard normal and the VampPrior.

VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior", eq. 9): the prior is the mixture of
the variational posteriors at K learned pseudo-inputs u_1..u_K (images),

    p_lambda(z) = (1/K) sum_k q_phi(z | u_k),

so ``log p(z) = logsumexp_k log N(z; mu_phi(u_k), diag sigma^2_phi(u_k)) - log K``. Its KL to
q(z|x) has no closed form; the ELBO uses the one-sample estimate
``KL ~ log q(z|x) - log p(z)`` at the z drawn for the reconstruction term (eq. 4), and the
importance-sampled NLL uses ``log p(z)`` above exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

Encode = Callable[[Tensor], tuple[Tensor, Tensor]]  # images -> (mean, log_var), (B, D) each


def diagonal_gaussian_mixture_log_density(z: Tensor, means: Tensor, log_vars: Tensor) -> Tensor:
    """log (1/K) sum_k N(z; means_k, diag exp(log_vars_k)) for z (..., D), means/log_vars (K, D).

    Returns (...). The squared distance is expanded into matmuls ((N, K) memory, never
    (N, K, D)), in fp64 so the expansion loses no precision.
    """
    shape = z.shape[:-1]
    z64 = z.reshape(-1, z.shape[-1]).double()
    means, log_vars = means.double(), log_vars.double()
    inv_var = torch.exp(-log_vars)  # (K, D)
    sq = z64.pow(2) @ inv_var.T - 2.0 * z64 @ (means * inv_var).T  # (N, K)
    const = (means.pow(2) * inv_var).sum(1) + log_vars.sum(1) + z.shape[-1] * math.log(2 * math.pi)
    log_components = -0.5 * (sq + const)  # (N, K)
    out = torch.logsumexp(log_components, dim=1) - math.log(means.shape[0])
    return out.to(z.dtype).view(shape)


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I); no parameters."""

    def log_prob(self, z: Tensor, encode: Encode) -> Tensor:
        """log N(z; 0, I) summed over the last dim: (..., D) -> (...)."""
        return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)

    def sample(self, eps: Tensor, encode: Encode, generator=None) -> Tensor:
        """z = eps (N, D): standard-normal noise is already a prior draw."""
        return eps


class VampPrior(nn.Module):
    """p(z) = (1/K) sum_k q(z | u_k) with K learned pseudo-inputs u (K, C, H, W) in [0, 1].

    As in Tomczak & Welling's code the pseudo-inputs are ``hardtanh(0, 1)`` of a free parameter
    initialised at N(``init_mean``, ``init_std``^2); the posterior network ``encode`` is the
    VAE's own encoder (passed at each call, so it is not a second copy of its weights).
    """

    def __init__(
        self,
        num_pseudo_inputs: int,
        image_shape: tuple[int, int, int],
        init_mean: float = 0.05,
        init_std: float = 0.01,
    ):
        super().__init__()
        self.pseudo_inputs_raw = nn.Parameter(
            init_mean + init_std * torch.randn(num_pseudo_inputs, *image_shape)
        )

    def pseudo_inputs(self) -> Tensor:
        """u (K, C, H, W) in [0, 1]."""
        return torch.nn.functional.hardtanh(self.pseudo_inputs_raw, 0.0, 1.0)

    def components(self, encode: Encode) -> tuple[Tensor, Tensor]:
        """(means, log_vars) of q(z | u_k), each (K, D)."""
        return encode(self.pseudo_inputs())

    def log_prob(self, z: Tensor, encode: Encode) -> Tensor:
        """log p(z) for z (..., D) -> (...)."""
        means, log_vars = self.components(encode)
        return diagonal_gaussian_mixture_log_density(z, means, log_vars)

    def sample(self, eps: Tensor, encode: Encode, generator=None) -> Tensor:
        """z = mu(u_k) + sigma(u_k) * eps with k uniform per row; eps (N, D) standard normal
        (possibly truncated/tempered). ``generator`` (CPU) picks the components."""
        means, log_vars = self.components(encode)
        index = torch.randint(means.shape[0], (eps.shape[0],), generator=generator)
        index = index.to(means.device)
        eps = eps.to(means.device)
        return means[index] + torch.exp(0.5 * log_vars[index]) * eps


def build_prior(name: str, num_pseudo_inputs: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """The prior named by ``model.prior`` (checked by the config)."""
    if name == "vamp":
        return VampPrior(num_pseudo_inputs, image_shape)
    return StandardNormalPrior()

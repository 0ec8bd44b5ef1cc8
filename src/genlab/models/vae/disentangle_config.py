"""Typed configuration of the VAEs for disentanglement: β-TCVAE (:class:`BetaTCVAEConfig`,
Chen et al. 2018) and FactorVAE (:class:`FactorVAEConfig`, Kim & Mnih 2018), both the
single-latent VAE of :class:`genlab.models.vae.config.VAEConfig` with another KL penalty.

Plain data only: this module imports no torch, so a bad value is refused before any heavy
import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genlab.checks.values import (
    check_int,
    check_non_negative,
    check_optimizer,
    positive_int,
    require,
)
from genlab.models.vae.config import VAEConfig

TC_ESTIMATORS = ("mws", "mss")  # minibatch-weighted | minibatch-stratified sampling


def _check_plain_elbo(cfg: VAEConfig, family: str) -> None:
    """The penalties replace the ELBO's KL term: no IWAE bound, free bits or VampPrior."""
    require(cfg.k == 1, "model.k", cfg.k, f"1 ({family} trains on its penalised ELBO)")
    require(cfg.free_bits == 0, "model.free_bits", cfg.free_bits, f"0 ({family})")
    require(cfg.prior == "standard", "model.prior", cfg.prior, f"standard ({family})")


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """The fields of :class:`VAEConfig` (``k`` 1, ``free_bits`` 0, ``prior`` standard) with
    the ELBO's KL term E_x KL(q(z|x) || p(z)) split into index-code mutual information,
    total correlation and dimension-wise KL (Chen et al. 2018), each weighted:
    ``loss = -recon + alpha * mi + beta * tc + gamma * dwkl``. Plus:

    Attributes:
        beta: weight of the total correlation KL(q(z) || prod_j q(z_j)) (Chen et al.:
            beta-TCVAE's beta; 1 with alpha = gamma = 1 is the ELBO). ``kl_warmup_steps``
            ramps all three weights from 0 linearly.
        alpha: weight of the index-code mutual information I(x; z).
        gamma: weight of the dimension-wise KL sum_j KL(q(z_j) || p(z_j)).
        estimator: how q(z) and q(z_j) are estimated from the minibatch: ``mws``
            (minibatch-weighted sampling: q(z_i) ~ mean over the batch of q(z_i | x_j); the
            paper writes it with 1/(N M), a constant shift of the logged terms that leaves the
            gradients unchanged) | ``mss`` (minibatch-stratified sampling: weight 1/N on the
            sample's own posterior, (N - 1) / (N (M - 1)) on each other one; unbiased for
            q(z_i), needs ``dataset_size``).
        dataset_size: N, the number of training images (``mss``); null = the training
            split's size, read when training starts.
        latent_dim: size of z (10, as in the disentanglement literature).
    """

    beta: float = 6.0
    alpha: float = 1.0
    gamma: float = 1.0
    estimator: str = "mws"
    dataset_size: int | None = None
    latent_dim: int = 10

    def __post_init__(self):
        super().__post_init__()
        _check_plain_elbo(self, "beta_tcvae")
        for key in ("alpha", "gamma"):
            check_non_negative(f"model.{key}", getattr(self, key))
        ok = self.estimator in TC_ESTIMATORS
        require(ok, "model.estimator", self.estimator, f"one of {list(TC_ESTIMATORS)}")
        n = self.dataset_size
        require(n is None or positive_int(n), "model.dataset_size", n, "null or an integer >= 1")


@dataclass
class FactorVAEConfig(VAEConfig):
    """The fields of :class:`VAEConfig` (``k`` 1, ``free_bits`` 0, ``prior`` standard;
    ``beta`` stays the KL weight, 1 in Kim & Mnih) plus a total-correlation penalty estimated by
    a discriminator that tells q(z) from prod_j q(z_j) (Kim & Mnih 2018):
    ``loss = -recon + beta * kl + gamma * E[D_0(z) - D_1(z)]``, the discriminator trained by
    its own optimizer on z and on z with each dimension permuted across the batch. Plus:

    Attributes:
        gamma: weight of the TC estimate (Kim & Mnih's gamma; Locatello et al. 2019 sweep
            10 to 100 on dSprites).
        discriminator_hidden_dims: hidden layers of the discriminator MLP (Kim & Mnih: six
            layers of 1000 units, LeakyReLU 0.2), two output logits (z from q(z), z permuted).
        optimizer_d: ``{_target_: torch.optim.X, lr: .., ...}`` of the
            discriminator (Kim & Mnih: Adam, lr 1e-4, betas (0.5, 0.9)).
        latent_dim: size of z (10, as in the disentanglement literature).
    """

    gamma: float = 40.0
    discriminator_hidden_dims: list[int] = field(default_factory=lambda: [1000] * 6)
    optimizer_d: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "torch.optim.Adam", "lr": 1e-4, "betas": [0.5, 0.9]}
    )
    latent_dim: int = 10

    def __post_init__(self):
        super().__post_init__()
        _check_plain_elbo(self, "factor_vae")
        check_non_negative("model.gamma", self.gamma)
        dims = self.discriminator_hidden_dims
        ok = (
            isinstance(dims, list | tuple) and len(dims) >= 1 and all(positive_int(d) for d in dims)
        )
        require(ok, "model.discriminator_hidden_dims", dims, "a list of integers >= 1")
        check_optimizer("model.optimizer_d", self.optimizer_d)
        check_int("model.latent_dim", self.latent_dim, 2)

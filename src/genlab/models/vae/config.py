"""Typed configuration of the VAE family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genlab.losses.likelihoods import LIKELIHOODS
from genlab.utils.config import check_optimizer, number, positive_int, require

VAE_ARCHS = ("conv", "mlp")


@dataclass
class VAEConfig:
    """Every field of ``conf/model/vae.yaml``.

    Attributes:
        image_size: side of the square images (from ``${data.image_size}``).
        channels: image channels, 1 or 3 (from ``${data.channels}``).
        num_classes: classes in the data (unused by the VAE; kept so data configs compose).
        latent_dim: size of z; prior N(0, I), posterior N(mean, diag(exp(log_var))).
        arch: ``conv`` (28/32/64 px) or ``mlp`` (any size).
        base_channels: width of the first conv layer (conv arch).
        hidden_dims: hidden layer sizes (mlp arch), e.g. ``[400]``.
        likelihood: ``bernoulli`` | ``gaussian`` | ``discretized_logistic``.
        gaussian_std: std of the Gaussian likelihood (initial value when ``learn_std``).
        learn_std: learn one scalar std for the Gaussian likelihood.
        beta: weight on the KL term (beta-VAE; 1 = ELBO).
        kl_warmup_steps: linear KL warm-up from 0 to ``beta`` over this many steps (0 = off).
        free_bits: minimum nats per latent dim in the KL term (0 = off; Kingma et al. 2016).
        k: importance samples in the training bound (1 = ELBO, >1 = IWAE).
        optimizer: ``{_target_: torch.optim.X, lr: .., ...}``.
        nll_k: importance samples for ``val/nll`` during training.
        nll_every_n_epochs: log ``val/nll`` every this many epochs (0 = never).
    """

    image_size: int
    channels: int
    num_classes: int | None = None
    latent_dim: int = 16
    arch: str = "conv"
    base_channels: int = 32
    hidden_dims: list[int] = field(default_factory=lambda: [400])
    likelihood: str = "bernoulli"
    gaussian_std: float = 0.1
    learn_std: bool = False
    beta: float = 1.0
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    k: int = 1
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "torch.optim.Adam", "lr": 1e-3}
    )
    nll_k: int = 100
    nll_every_n_epochs: int = 0

    def __post_init__(self):
        require(
            positive_int(self.latent_dim), "model.latent_dim", self.latent_dim, "an integer >= 1"
        )
        require(self.channels in (1, 3), "model.channels", self.channels, "1 or 3")
        require(self.arch in VAE_ARCHS, "model.arch", self.arch, f"one of {list(VAE_ARCHS)}")
        ok = self.likelihood in LIKELIHOODS
        require(ok, "model.likelihood", self.likelihood, f"one of {list(LIKELIHOODS)}")
        for key in ("beta", "free_bits"):
            value = getattr(self, key)
            require(number(value) and value >= 0, f"model.{key}", value, "a number >= 0")
        require(
            number(self.gaussian_std) and self.gaussian_std > 0,
            "model.gaussian_std",
            self.gaussian_std,
            "a number > 0",
        )
        ok = isinstance(self.kl_warmup_steps, int) and self.kl_warmup_steps >= 0
        require(ok, "model.kl_warmup_steps", self.kl_warmup_steps, "an integer >= 0")
        require(positive_int(self.k), "model.k", self.k, "an integer >= 1")
        require(positive_int(self.nll_k), "model.nll_k", self.nll_k, "an integer >= 1")
        check_optimizer("model.optimizer", self.optimizer)

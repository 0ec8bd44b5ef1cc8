"""VAEs for disentanglement: β-TCVAE (Chen et al. 2018) and FactorVAE (Kim & Mnih 2018).

Both are the single-latent :class:`genlab.models.vae.module.VAE` (its encoder, decoder,
likelihoods, sampling, validation and ``genlab.eval`` terms) with another training loss; their
configs are :mod:`genlab.models.vae.disentangle_config`."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genlab.checks.errors import ConfigError
from genlab.compat import optimizer_step_uncounted
from genlab.losses.likelihoods import gaussian_kl
from genlab.models.base import build_optimizer
from genlab.models.vae.disentangle_config import BetaTCVAEConfig, FactorVAEConfig
from genlab.models.vae.module import VAE

LOG_2PI = math.log(2 * math.pi)


def pairwise_log_density(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """log N(z_i[d]; mean_j[d], exp(log_var_j[d])) for every pair: (B, D) x3 -> (B, B, D)."""
    z, mean, log_var = z.unsqueeze(1), mean.unsqueeze(0), log_var.unsqueeze(0)
    return -0.5 * ((z - mean).pow(2) * torch.exp(-log_var) + log_var + LOG_2PI)


def tc_decomposition(
    z: Tensor,
    mean: Tensor,
    log_var: Tensor,
    estimator: str = "mws",
    dataset_size: int | None = None,
) -> dict[str, Tensor]:
    """Per sample (B,): ``mi`` = log q(z|x) - log q(z), ``tc`` = log q(z) - sum_j log q(z_j),
    ``dwkl`` = sum_j log q(z_j) - log p(z) (p = N(0, I)), with q(z) and q(z_j) estimated from
    the batch (z_i ~ q(z | x_i)); the three sum to log q(z|x) - log p(z), the one-sample KL.

    ``mws``: q(z_i) ~ (1/M) sum_j q(z_i | x_j). ``mss``: weight 1/N on j = i and
    (N - 1) / (N (M - 1)) on every j != i (``dataset_size`` = N)."""
    z, mean, log_var = z.float(), mean.float(), log_var.float()
    batch = z.shape[0]
    mat = pairwise_log_density(z, mean, log_var)  # (B, B, D)
    log_qz_x = mat.diagonal(dim1=0, dim2=1).sum(0)  # (B,): log q(z_i | x_i)
    if estimator == "mws":
        log_w = torch.full((batch, batch), -math.log(batch), device=z.device)
    elif estimator == "mss":
        if dataset_size is None or batch < 2:
            raise ValueError("the mss estimator needs dataset_size and a batch of >= 2")
        n = float(max(dataset_size, batch))
        other = math.log((n - 1) / (n * (batch - 1)))
        log_w = torch.full((batch, batch), other, device=z.device)
        log_w.fill_diagonal_(-math.log(n))
    else:
        raise ValueError(f"estimator {estimator!r}: one of mws, mss")
    log_qz = torch.logsumexp(log_w + mat.sum(2), dim=1)
    log_prod_qzj = torch.logsumexp(log_w.unsqueeze(2) + mat, dim=1).sum(1)
    log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(1)
    return {"mi": log_qz_x - log_qz, "tc": log_qz - log_prod_qzj, "dwkl": log_prod_qzj - log_pz}


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each column of z (B, D) permuted across the batch independently (Kim & Mnih's
    Algorithm 1): every marginal q(z_j) kept, the dependence between dimensions broken, so the
    rows are samples of prod_j q(z_j)."""
    batch = z.shape[0]
    idx = torch.stack(
        [torch.randperm(batch, generator=generator).to(z.device) for _ in range(z.shape[1])], dim=1
    )
    return torch.gather(z, 0, idx)


class BetaTCVAE(VAE):
    """β-TCVAE: ``loss = -recon + alpha * mi + beta * tc + gamma * dwkl`` (batch means,
    :func:`tc_decomposition`); logs ``train/mi``, ``train/tc``, ``train/dwkl`` beside the VAE's
    ``train/recon``, ``train/kl`` (analytic) and ``train/elbo``."""

    config_class = BetaTCVAEConfig
    family = "beta_tcvae"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._train_size: int | None = self.config.dataset_size

    def on_train_start(self) -> None:
        """N of the ``mss`` estimator, when not set: the datamodule's training images, or
        the length of the training dataloader's dataset."""
        if self._train_size is not None or self.config.estimator != "mss":
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if datamodule is not None and hasattr(datamodule, "num_images"):
            self._train_size = int(datamodule.num_images("train"))
        elif dataset is not None and hasattr(dataset, "__len__"):
            self._train_size = len(dataset)
        else:
            raise ConfigError("model.dataset_size", None, "the number of training images")

    def kl_weight(self) -> float:
        """The warm-up ramp (0 -> 1 over ``kl_warmup_steps``) multiplying alpha, beta, gamma."""
        steps = self.config.kl_warmup_steps
        return 1.0 if steps <= 0 else min(1.0, self.global_step / steps)

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        cfg = self.config
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        recon = self.likelihood.log_prob(x, self.decode(z))
        kl = gaussian_kl(mean, log_var).sum(1)
        if cfg.estimator == "mss" and self._train_size is None:
            raise ConfigError(
                "model.dataset_size", None, "the number of training images (estimator=mss)"
            )
        parts = {k: v.mean() for k, v in tc_decomposition(
            z, mean, log_var, cfg.estimator, self._train_size).items()}  # fmt: skip
        penalty = cfg.alpha * parts["mi"] + cfg.beta * parts["tc"] + cfg.gamma * parts["dwkl"]
        loss = -recon.mean() + self.kl_weight() * penalty
        return {"loss": loss, "recon": recon.mean(), "kl": kl.mean(),
                "elbo": (recon - kl).mean(), **parts}  # fmt: skip


class TCDiscriminator(nn.Module):
    """MLP z (B, D) -> 2 logits (column 0: z drawn from q(z); 1: from prod_j q(z_j))."""

    def __init__(self, latent_dim: int, hidden_dims: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden_dims:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class FactorVAE(VAE):
    """FactorVAE: the VAE loss plus ``gamma * E[D_0(z) - D_1(z)]`` (the density-ratio estimate
    of TC); the discriminator learns to tell z from :func:`permute_dims` (z) with its own
    optimizer (manual optimisation, as genlab's GANs: one counted VAE step and one uncounted
    discriminator step per batch). z of the same batch (detached) feeds the discriminator.
    Logs ``train/tc`` (the estimate), ``train/loss_d`` and ``train/d_accuracy``."""

    config_class = FactorVAEConfig
    family = "factor_vae"
    loss_parts = {"encoder": "train/loss", "tc_discriminator": "train/loss_d"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.automatic_optimization = False
        cfg = self.config
        self.tc_discriminator = TCDiscriminator(cfg.latent_dim, list(cfg.discriminator_hidden_dims))

    def vae_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the discriminator's, the encoder's first."""
        skip = {id(p) for p in self.tc_discriminator.parameters()}
        first = list(self.encoder.parameters())
        seen = {id(p) for p in first} | skip
        return first + [p for p in self.parameters() if id(p) not in seen]

    def configure_optimizers(self):
        if self.config.lr_scheduler is not None:
            raise ValueError("model.lr_scheduler: null for factor_vae (two optimizers)")
        vae = build_optimizer(self.config.optimizer, self.vae_parameters())
        disc = build_optimizer(self.config.optimizer_d, self.tc_discriminator.parameters())
        return [vae, disc]

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """The VAE loss with the TC penalty; ``z`` (detached) for the discriminator step."""
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        recon = self.likelihood.log_prob(x, self.decode(z))
        kl = gaussian_kl(mean, log_var).sum(1)
        logits = self.tc_discriminator(z)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        loss = -recon.mean() + self.kl_weight() * kl.mean() + self.config.gamma * tc
        return {"loss": loss, "recon": recon.mean(), "kl": kl.mean(),
                "elbo": (recon - kl).mean(), "tc": tc, "z": z.detach()}  # fmt: skip

    def discriminator_loss(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-entropy of the discriminator on z (class 0) and permuted z (class 1), and its
        accuracy."""
        logits = self.tc_discriminator(torch.cat([z, permute_dims(z)]))
        target = torch.cat([torch.zeros(len(z)), torch.ones(len(z))]).long().to(z.device)
        accuracy = (logits.argmax(1) == target).float().mean()
        return F.cross_entropy(logits, target), accuracy

    def training_step(self, batch, batch_idx):
        opt_vae, opt_d = self.optimizers()
        out = self.loss_terms(batch["image"])
        z = out.pop("z")
        opt_vae.zero_grad(set_to_none=True)
        self.manual_backward(out["loss"])
        opt_vae.step()  # counted: global_step is the number of VAE steps
        loss_d, accuracy = self.discriminator_loss(z)
        opt_d.zero_grad(set_to_none=True)  # drops the grads the VAE loss left on D
        self.manual_backward(loss_d)
        optimizer_step_uncounted(self.trainer, opt_d)
        skip = {"loss"} if self.nll_unavailable_reason() is None else {"loss", "elbo"}
        logs = {f"train/{k}": v.detach() for k, v in out.items() if k not in skip}
        logs["train/loss"] = out["loss"].detach()
        logs["train/loss_d"] = loss_d.detach()
        logs["train/d_accuracy"] = accuracy
        logs["train/kl_weight"] = self.kl_weight()
        self.log_train_scalars(logs, prog_bar=("train/loss",))

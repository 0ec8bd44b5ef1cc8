"""VAE LightningModule: Gaussian latent, reparameterisation, ELBO / IWAE bound."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlab.losses.likelihoods import build_likelihood, gaussian_kl, gaussian_log_density
from genlab.models.base import GenerativeModule, build_optimizer
from genlab.models.vae.config import VAEConfig
from genlab.nets.vae import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder


class VAE(GenerativeModule):
    """q(z|x) = N(mean, diag(exp(log_var))), p(z) = N(0, I), p(x|z) named by ``likelihood``.

    Loss = -bound per image in nats, logged as ``train/recon`` (E log p(x|z)), ``train/kl`` and
    ``train/loss``. ``sample(n)`` / ``generate(n)`` draw from the prior.
    """

    config_class = VAEConfig
    family = "vae"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        cfg = self.config
        self.likelihood = build_likelihood(cfg.likelihood, cfg.gaussian_std, cfg.learn_std)
        out_channels = cfg.channels * self.likelihood.params_per_channel
        if cfg.arch == "conv":
            self.encoder = ConvEncoder(
                cfg.latent_dim, cfg.channels, cfg.image_size, cfg.base_channels
            )
            self.decoder = ConvDecoder(
                cfg.latent_dim, out_channels, cfg.image_size, cfg.base_channels
            )
        else:
            hidden = tuple(cfg.hidden_dims)
            self.encoder = MLPEncoder(cfg.latent_dim, cfg.channels, cfg.image_size, hidden)
            self.decoder = MLPDecoder(cfg.latent_dim, out_channels, cfg.image_size, hidden[::-1])

    # -- model ------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, C, H, W) in [0, 1] -> (mean, log_var), each (B, latent_dim)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """z (..., latent_dim) -> likelihood parameters (..., C * params_per_channel, H, W)."""
        return self.decoder(z)

    def kl_weight(self) -> float:
        """beta, linearly warmed up over ``kl_warmup_steps`` optimizer steps (resumes with them)."""
        cfg = self.config
        if cfg.kl_warmup_steps <= 0:
            return cfg.beta
        return cfg.beta * min(1.0, self.global_step / cfg.kl_warmup_steps)

    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Per-image ``recon`` = log p(x|z) (one z), ``kl`` (analytic), ``kl_per_dim`` (B, D)."""
        mean, log_var = self.encode(x)
        mean, log_var = mean.float(), log_var.float()
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        recon = self.likelihood.log_prob(x, self.decode(z))
        kl_per_dim = gaussian_kl(mean, log_var)
        return {"recon": recon, "kl": kl_per_dim.sum(1), "kl_per_dim": kl_per_dim}

    def log_importance_weights(self, x: Tensor, k: int) -> Tensor:
        """log w_i = log p(x, z_i) - log q(z_i|x), z_i ~ q(z|x): (k, B), in fp32."""
        mean, log_var = self.encode(x)
        mean, log_var = mean.float(), log_var.float()
        z = mean + torch.randn(k, *mean.shape, device=mean.device) * torch.exp(0.5 * log_var)
        params = self.decode(z.flatten(0, 1))
        x_rep = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
        log_px_z = self.likelihood.log_prob(x_rep, params).view(k, -1)
        log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz_x = gaussian_log_density(z, mean, log_var)
        return log_px_z + log_pz - log_qz_x

    def iwae_bound(self, x: Tensor, k: int) -> Tensor:
        """log (1/k) sum_i w_i per image (B,) (Burda et al. 2015); k=1 is a one-sample ELBO."""
        return torch.logsumexp(self.log_importance_weights(x, k), dim=0) - math.log(k)

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        cfg = self.config
        terms = self.elbo_terms(x)
        kl_per_dim = terms["kl_per_dim"]
        if cfg.free_bits > 0:
            kl_for_loss = kl_per_dim.mean(0).clamp(min=cfg.free_bits).sum()
        else:
            kl_for_loss = terms["kl"].mean()
        if cfg.k > 1:
            loss = -self.iwae_bound(x, cfg.k).mean()
        else:
            loss = -terms["recon"].mean() + self.kl_weight() * kl_for_loss
        elbo = terms["recon"] - terms["kl"]
        return {
            "loss": loss,
            "recon": terms["recon"].mean(),
            "kl": terms["kl"].mean(),
            "elbo": elbo.mean(),
        }

    # -- sampling ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, num_samples: int, z: Tensor | None = None, **kwargs) -> Tensor:
        """Prior samples, shown as the likelihood's mean image (N, C, H, W) in [0, 1]."""
        z = self.sample_latent(num_samples) if z is None else z.to(self.device)
        return self.likelihood.mean(self.decode(z)).float()

    sample = generate

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean reconstruction (B, C, H, W) in [0, 1] of x through the posterior mean."""
        mean, _ = self.encode(x.to(self.device))
        return self.likelihood.mean(self.decode(mean)).float()

    # -- training ---------------------------------------------------------------------------
    def configure_optimizers(self):
        return build_optimizer(self.config.optimizer, self.parameters())

    def training_step(self, batch, batch_idx):
        out = self.loss_terms(batch["image"])
        self.log_dict({f"train/{k}": v for k, v in out.items() if k != "loss"})
        self.log("train/loss", out["loss"], prog_bar=True)
        self.log("train/kl_weight", self.kl_weight())
        return out["loss"]

    def validation_step(self, batch, batch_idx):
        x = batch["image"]
        terms = self.elbo_terms(x)
        elbo = terms["recon"] - terms["kl"]
        logs = {
            "val/elbo": elbo.mean(),
            "val/recon": terms["recon"].mean(),
            "val/kl": terms["kl"].mean(),
        }
        every = self.config.nll_every_n_epochs
        if every and (self.current_epoch + 1) % every == 0:
            logs["val/nll"] = -self.iwae_bound(x, self.config.nll_k).mean()
        self.log_dict(logs, sync_dist=True)
        self.log("val/loss", -elbo.mean(), prog_bar=True, sync_dist=True)

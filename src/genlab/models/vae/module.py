"""VAE LightningModule: Gaussian latent, reparameterisation, ELBO / IWAE bound, IS likelihood."""

from __future__ import annotations

import logging
import math

import hydra.utils
import torch
from torch import Tensor

from genlab.data.iteration import iterate_images
from genlab.losses.likelihoods import (
    build_likelihood,
    gaussian_kl,
    gaussian_log_density,
    num_decoder_params,
)
from genlab.models.base import GenerativeModule, build_optimizer
from genlab.models.latents import normal_latents
from genlab.models.vae.config import VAEConfig
from genlab.models.vae.evaluation import vae_likelihood
from genlab.models.vae.priors import VampPrior, build_prior
from genlab.nets.vae import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

log = logging.getLogger(__name__)


class VAE(GenerativeModule):
    """q(z|x) = N(mean, diag(exp(log_var))), p(z) = N(0, I) or the VampPrior
    ``(1/K) sum_k q(z|u_k)`` (``prior``), p(x|z) named by ``likelihood``.

    All terms are per image, summed over pixels, in nats. Training minimises ``train/loss``:

    * ``k = 1``: ``-E_q log p(x|z) + w * KL`` with ``w = kl_weight()`` (beta, linearly warmed
      up over ``kl_warmup_steps`` optimizer steps) and, if ``free_bits > 0``, the KL of each
      latent dim (batch mean) clamped below at ``free_bits`` nats;
    * ``k > 1``: ``-log (1/k) sum_i p(x|z_i) [p(z_i)/q(z_i|x)]^w`` (the IWAE bound of Burda
      et al. 2015; ``w = 1`` once warm-up is over).

    With ``prior=vamp`` the KL is the one-sample estimate ``log q(z|x) - log p(z)`` (Tomczak &
    Welling 2018, eq. 4) and every ``log p(z)`` (IWAE bound, NLL) is the exact mixture density.

    The warm-up counter is Lightning's ``global_step``, which a resumed run restores from the
    checkpoint, so schedules continue where they stopped. Logged: ``train/{loss,recon,kl,elbo,
    kl_weight}``, ``val/{elbo,recon,kl,loss}`` and every ``nll_every_n_epochs`` epochs
    ``val/nll`` (importance-sampled with ``nll_k`` samples on ``nll_num_images`` images).

    ``train/elbo``, ``val/elbo`` and ``val/nll`` are bounds / estimates of ``log p(x)`` only
    when ``p(x|z)`` is a probability of the data (:meth:`nll_unavailable_reason` is ``None``);
    otherwise (a Bernoulli on grey-level pixels) they are not logged and a warning says why at
    the start of fitting; ``*/loss``, ``*/recon`` and ``*/kl`` (the objective's terms) still are.
    """

    config_class = VAEConfig
    family = "vae"
    # generate: the base class's, prior draws of latents() decoded by generate_from_latents()
    sample_options = frozenset({"truncation", "temperature"})
    supports_reconstruction = True
    networks = ("encoder", "decoder")  # what model.compile / channels_last act on

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        cfg = self.config
        self.likelihood = build_likelihood(
            cfg.likelihood, cfg.gaussian_std, cfg.learn_std, cfg.num_mixtures
        )
        out_channels = num_decoder_params(self.likelihood, cfg.channels)
        if cfg.arch == "conv":
            self.encoder = ConvEncoder(
                cfg.latent_dim, cfg.channels, cfg.image_size, cfg.base_channels
            )
            self.decoder = ConvDecoder(
                cfg.latent_dim, out_channels, cfg.image_size, cfg.base_channels
            )
        else:
            hidden = tuple(cfg.hidden_dims)
            self.encoder = MLPEncoder(
                cfg.latent_dim, cfg.channels, cfg.image_size, hidden, cfg.activation
            )
            self.decoder = MLPDecoder(
                cfg.latent_dim, out_channels, cfg.image_size, hidden[::-1], cfg.activation
            )
        image_shape = (cfg.channels, cfg.image_size, cfg.image_size)
        self.prior = build_prior(cfg.prior, cfg.num_pseudo_inputs, image_shape)
        self._nll_images_seen = 0  # validation images scored for val/nll this epoch

    def nll_unavailable_reason(self, data_binarized: bool | None = None) -> str | None:
        """``None`` when ``p(x|z)`` is a probability of the data, else why not (one sentence).

        ``data_binarized`` overrides ``model.data_binarized`` (e.g. the evaluated datamodule's
        ``binarize``)."""
        binarized = self.config.data_binarized if data_binarized is None else data_binarized
        return self.likelihood.nll_unavailable_reason(binarized)

    @property
    def data_dims(self) -> int:
        """Number of scalar dimensions of one image, C * H * W (the ``dim`` of bits/dim)."""
        return self.config.channels * self.config.image_size**2

    # -- model ------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, C, H, W) in [0, 1] -> (mean, log_var), each (B, latent_dim), fp32."""
        mean, log_var = self.encoder(x)
        return mean.float(), log_var.float()

    def decode(self, z: Tensor) -> Tensor:
        """z (..., latent_dim) -> likelihood parameters (..., C * params_per_channel, H, W)."""
        return self.decoder(z)

    def kl_weight(self) -> float:
        """beta, linearly warmed up over ``kl_warmup_steps`` optimizer steps (resumes with them)."""
        cfg = self.config
        if cfg.kl_warmup_steps <= 0:
            return cfg.beta
        return cfg.beta * min(1.0, self.global_step / cfg.kl_warmup_steps)

    def prior_log_prob(self, z: Tensor) -> Tensor:
        """log p(z) for z (..., latent_dim) -> (...): N(0, I) or the exact VampPrior mixture."""
        return self.prior.log_prob(z, self.encode)

    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Per image (B,): ``recon`` = log p(x|z) with one z ~ q(z|x), ``kl`` (analytic for
        N(0, I), else the one-sample ``log q(z|x) - log p(z)``); ``kl_per_dim``
        (B, latent_dim), N(0, I) prior only (else None)."""
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        recon = self.likelihood.log_prob(x, self.decode(z))
        if self.config.prior == "standard":
            kl_per_dim = gaussian_kl(mean, log_var)
            return {"recon": recon, "kl": kl_per_dim.sum(1), "kl_per_dim": kl_per_dim}
        kl = gaussian_log_density(z, mean, log_var) - self.prior_log_prob(z)
        return {"recon": recon, "kl": kl, "kl_per_dim": None}

    def log_importance_weights(
        self, x: Tensor, k: int, prior_weight: float = 1.0, chunk_size: int | None = None
    ) -> Tensor:
        """log w_i = log p(x|z_i) + prior_weight * (log p(z_i) - log q(z_i|x)), z_i ~ q(z|x).

        Returns (k, B) in fp32. The encoder runs once; the decoder sees at most
        ``chunk_size * B`` latents at a time (``None`` = all k at once).
        """
        mean, log_var = self.encode(x)
        std = torch.exp(0.5 * log_var)
        chunk_size = k if chunk_size is None else max(1, int(chunk_size))
        out = []
        for start in range(0, k, chunk_size):
            n = min(chunk_size, k - start)
            z = mean + torch.randn(n, *mean.shape, device=mean.device) * std  # (n, B, D)
            params = self.decode(z.flatten(0, 1))
            x_rep = x.unsqueeze(0).expand(n, *x.shape).flatten(0, 1)
            log_px_z = self.likelihood.log_prob(x_rep, params).view(n, -1).float()
            log_pz = self.prior_log_prob(z)
            log_qz_x = gaussian_log_density(z, mean, log_var)
            out.append(log_px_z + prior_weight * (log_pz - log_qz_x))
        return torch.cat(out, dim=0)

    def iwae_bound(self, x: Tensor, k: int, chunk_size: int | None = None) -> Tensor:
        """log (1/k) sum_i w_i per image (B,) (Burda et al. 2015); k=1 is a one-sample ELBO.

        With large k this is the importance-sampled estimate of log p(x) (a lower bound in
        expectation that tightens as k grows). The log-sum-exp runs in fp64.
        """
        log_w = self.log_importance_weights(x, k, chunk_size=chunk_size).double()
        return (torch.logsumexp(log_w, dim=0) - math.log(k)).float()

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Training loss (scalar, nats/image) and batch means of ``recon``, ``kl``, ``elbo``."""
        return self._loss_from_terms(x, self.elbo_terms(x))

    def _loss_from_terms(self, x: Tensor, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """:meth:`loss_terms` from the :meth:`elbo_terms` of ``x``: the IWAE bound with
        ``k > 1``, else the ELBO with the KL of :meth:`_kl_for_loss` weighted by
        :meth:`kl_weight`."""
        cfg = self.config
        weight = self.kl_weight()
        if cfg.k > 1:
            log_w = self.log_importance_weights(x, cfg.k, prior_weight=weight)
            loss = -(torch.logsumexp(log_w, dim=0) - math.log(cfg.k)).mean()
        else:
            loss = -terms["recon"].mean() + weight * self._kl_for_loss(terms)
        elbo = terms["recon"] - terms["kl"]
        return {
            "loss": loss,
            "recon": terms["recon"].mean(),
            "kl": terms["kl"].mean(),
            "elbo": elbo.mean(),
        }

    def _kl_for_loss(self, terms: dict[str, Tensor]) -> Tensor:
        """The batch-mean KL of the ELBO loss; with ``free_bits`` each latent dim's batch-mean
        KL is clamped below at ``free_bits`` nats."""
        if self.config.free_bits > 0:
            return terms["kl_per_dim"].mean(0).clamp(min=self.config.free_bits).sum()
        return terms["kl"].mean()

    # -- sampling (the GenerativeModule protocol) ---------------------------------------------
    def sample_latent(self, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """Prior draws z (num_samples, latent_dim) on the module's device."""
        return self.latents(num_samples, generator).to(self.device)

    @torch.no_grad()
    def latents(self, num_samples, generator=None, truncation=None, temperature=None, **_):
        """z (N, latent_dim) on the CPU from the prior; the standard-normal noise is truncated
        and tempered when asked (VampPrior: ``mu(u_k) + sigma(u_k) * noise``, k uniform)."""
        eps = normal_latents(
            num_samples, self.config.latent_dim, generator, truncation, temperature
        )
        return self.prior.sample(eps, self.encode, generator).cpu()

    @torch.no_grad()
    def generate_from_latents(self, z: Tensor, **_) -> Tensor:
        """The likelihood's mean image (N, C, H, W) in [0, 1] of z (N, latent_dim)."""
        return self.likelihood.mean(self.decode(z.to(self.device))).float()

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean reconstruction (B, C, H, W) in [0, 1] of x through the posterior mean."""
        mean, _ = self.encode(x.to(self.device))
        return self.likelihood.mean(self.decode(mean)).float()

    # -- traversals (genlab.sample mode=traverse) ---------------------------------------------
    def latent_traversal(
        self, num_directions, *, center="prior", num_centers=1, images=None, generator=None,
        num_samples=None, **options,
    ):  # fmt: skip
        """Each coordinate z_i of :meth:`latents`' space, unit step 1 (the prior's std), around
        :meth:`prior_latent_mean`, prior draws or :meth:`posterior_latents` of ``images``
        (:func:`genlab.models.traversal.coordinate_traversal`)."""
        from genlab.models.traversal import coordinate_traversal

        return coordinate_traversal(
            self, num_directions, center, num_centers, images, generator, options
        )

    @torch.no_grad()
    def prior_latent_mean(self) -> Tensor:
        """E[z] under the prior of :meth:`latents`' space (D,), CPU: 0 for N(0, I); for the
        VampPrior the mean of its components' means."""
        if isinstance(self.prior, VampPrior):
            return self.prior.components(self.encode)[0].float().mean(0).cpu()
        return torch.zeros(self.latents(1).flatten(1).shape[1])

    @torch.no_grad()
    def posterior_latents(self, x: Tensor) -> Tensor | None:
        """Posterior means (B, D) of images x in :meth:`latents`' space, CPU; None where a
        subclass draws :meth:`latents` in another space (the top layer of a hierarchy) without
        overriding this."""
        if type(self).latents is not VAE.latents:
            return None
        return self.encode(x.to(self.device))[0].cpu()

    def evaluation_terms(self, datamodule, settings: dict) -> dict:
        """ELBO, importance-sampled NLL and bits/dim on ``settings["split"]``
        (:func:`genlab.models.vae.evaluation.vae_likelihood`; NLL only for a likelihood of
        the data)."""
        batches = iterate_images(
            datamodule, settings["split"], settings["num_images"], settings["batch_size"]
        )
        return vae_likelihood(
            self,
            batches,
            settings["k"],
            settings["k_batch"],
            settings["device"],
            settings["prefix"],
            data_binarized=bool(getattr(datamodule, "binarize", False)),
        )

    # -- training ---------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = build_optimizer(self.config.optimizer, self.parameters())
        spec = self.config.lr_scheduler
        if spec is None:
            return optimizer
        scheduler = hydra.utils.instantiate({**spec, "_partial_": True})(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    def on_fit_start(self) -> None:
        reason = self.nll_unavailable_reason()
        if reason is not None and self.trainer.is_global_zero:
            log.warning(f"train/elbo, val/elbo and val/nll are not logged: {reason}")

    def training_step(self, batch, batch_idx):
        out = self.loss_terms(batch["image"])
        skip = {"loss"} if self.nll_unavailable_reason() is None else {"loss", "elbo"}
        logs = {f"train/{k}": v for k, v in out.items() if k not in skip}
        logs["train/loss"] = out["loss"]
        logs["train/kl_weight"] = self.kl_weight()
        self.log_train_scalars(logs, prog_bar=("train/loss",))  # on the steps Lightning writes
        return out["loss"]

    def nll_due(self) -> bool:
        """Whether this epoch's validation also estimates ``val/nll``."""
        every = self.config.nll_every_n_epochs
        return bool(every) and (self.current_epoch + 1) % every == 0

    def on_validation_epoch_start(self) -> None:
        self._nll_images_seen = 0

    def validation_step(self, batch, batch_idx):
        x = batch["image"]
        terms = self.elbo_terms(x)
        elbo = terms["recon"] - terms["kl"]
        is_likelihood = self.nll_unavailable_reason() is None
        logs = {"val/recon": terms["recon"].mean(), "val/kl": terms["kl"].mean()}
        if terms.get("kl_per_layer") is not None:  # hierarchical: the KL of each latent layer
            for i, kl in enumerate(terms["kl_per_layer"].mean(0).unbind()):
                logs[f"val/kl_{i + 1}"] = kl
        if is_likelihood:
            logs["val/elbo"] = elbo.mean()
        limit = self.config.nll_num_images
        due = is_likelihood and self.nll_due()
        if due and (limit is None or self._nll_images_seen < limit):
            if limit is not None:
                x = x[: limit - self._nll_images_seen]
            self._nll_images_seen += x.shape[0]
            nll = -self.iwae_bound(x, self.config.nll_k, chunk_size=100).mean()
            self.log("val/nll", nll, sync_dist=True, batch_size=x.shape[0])
        self.log_dict(logs, sync_dist=True)
        self.log("val/loss", -elbo.mean(), prog_bar=True, sync_dist=True)

"""VAE with L stochastic layers (Burda, Grosse & Salakhutdinov 2015, section 5 / appendix C).

Generative model (z_1 nearest the data, z_L the top)::

    p(x, z_1..z_L) = p(z_L) prod_{l<L} p(z_l | z_{l+1}) p(x | z_1),   p(z_L) = N(0, I),
    p(z_l | z_{l+1}) = N(mu_l(z_{l+1}), diag sigma_l^2(z_{l+1}))

Inference model: q(z_1..z_L | x) = q(z_1 | x) prod_{l>1} q(z_l | z_{l-1}), diagonal Gaussians.
Importance weights over all layers (Burda et al. eq. 8 with h = (z_1..z_L))::

    log w = log p(x | z_1) + sum_l log p(z_l | z_{l+1}) - sum_l log q(z_l | z_{l-1})

and the k-sample bound ``L_k = log (1/k) sum_i w_i``; the importance-sampled NLL is ``-L_k``
with large k. The KL of layer l in the ELBO is the one-sample ``log q(z_l|.) - log p(z_l|.)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab.losses.likelihoods import build_likelihood, gaussian_log_density, num_decoder_params
from genlab.models.base import GenerativeModule
from genlab.models.latents import normal_latents
from genlab.models.vae.config import HierarchicalVAEConfig
from genlab.models.vae.module import VAE
from genlab.models.vae.priors import StandardNormalPrior
from genlab.nets.vae import GaussianMLP, MLPDecoder


class HierarchicalVAE(VAE):
    """L-stochastic-layer VAE (module docstring for the equations); trains on the ELBO
    (``k = 1``, free bits per layer) or the IWAE bound (``k > 1``), logs the KL of each layer
    (``train/kl_<l>``, ``val/kl_<l>``), evaluates like :class:`VAE` (``val/nll``,
    ``genlab.eval``: NLL over all layers)."""

    config_class = HierarchicalVAEConfig
    family = "hvae"
    networks = ("encoders", "decoders", "decoder")  # what model.compile / channels_last act on

    def __init__(self, **kwargs):
        GenerativeModule.__init__(self, **kwargs)  # the nets are not VAE's single-layer ones
        cfg = self.config
        self.likelihood = build_likelihood(
            cfg.likelihood, cfg.gaussian_std, cfg.learn_std, cfg.num_mixtures
        )
        dims, hidden = list(cfg.latent_dims), [tuple(h) for h in cfg.layer_hidden_dims]
        data_dim = cfg.channels * cfg.image_size**2
        inputs = [data_dim, *dims[:-1]]
        self.encoders = nn.ModuleList(
            GaussianMLP(inputs[i], dims[i], hidden[i], cfg.activation) for i in range(len(dims))
        )
        # decoders[i] gives p(z_{i+1} | z_{i+2}) in 1-based layers: z_{i+2} -> z_{i+1}
        self.decoders = nn.ModuleList(
            GaussianMLP(dims[i + 1], dims[i], hidden[i + 1][::-1], cfg.activation)
            for i in range(len(dims) - 1)
        )
        out_channels = num_decoder_params(self.likelihood, cfg.channels)
        self.decoder = MLPDecoder(
            dims[0], out_channels, cfg.image_size, hidden[0][::-1], cfg.activation
        )
        self.prior = StandardNormalPrior()  # of the top layer
        self._nll_images_seen = 0

    def layer_dims(self) -> list[int]:
        """Scalar dimensions of each latent layer (free bits: ``free_bits`` nats per dim)."""
        return list(self.config.latent_dims)

    # -- the two models ---------------------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, C, H, W) -> (mean, log_var) of q(z_1 | x), each (B, latent_dims[0]), fp32."""
        mean, log_var = self.encoders[0](x)
        return mean.float(), log_var.float()

    def sample_posterior(self, x: Tensor, n: int) -> tuple[list[Tensor], list[Tensor]]:
        """n draws of (z_1..z_L) ~ q per image: z_l (n, B, d_l) and log q(z_l | z_{l-1})
        (n, B) per layer."""
        mean, log_var = self.encode(x)
        z = mean + torch.randn(n, *mean.shape, device=mean.device) * torch.exp(0.5 * log_var)
        zs, log_qs = [z], [gaussian_log_density(z, mean, log_var)]
        for encoder in self.encoders[1:]:
            mean, log_var = (t.float().view(n, -1, t.shape[-1]) for t in encoder(z.flatten(0, 1)))
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
            zs.append(z)
            log_qs.append(gaussian_log_density(z, mean, log_var))
        return zs, log_qs

    def prior_log_probs(self, zs: list[Tensor]) -> list[Tensor]:
        """[log p(z_1 | z_2), ..., log p(z_L)], each (...) for z_l (..., d_l)."""
        out = []
        for i, decoder in enumerate(self.decoders):
            above = zs[i + 1]
            mean, log_var = decoder(above.reshape(-1, above.shape[-1]))
            shape = zs[i].shape
            out.append(
                gaussian_log_density(zs[i], mean.float().view(shape), log_var.float().view(shape))
            )
        out.append(self.prior.log_prob(zs[-1], self.encode))
        return out

    def data_log_prob(self, x: Tensor, z1: Tensor) -> Tensor:
        """log p(x | z_1) (n, B) for x (B, C, H, W), z_1 (n, B, d_1)."""
        n = z1.shape[0]
        x_rep = x.unsqueeze(0).expand(n, *x.shape).flatten(0, 1)
        return self.likelihood.log_prob(x_rep, self.decode(z1.flatten(0, 1))).view(n, -1).float()

    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Per image (B,): ``recon`` = log p(x|z_1), ``kl`` = sum of ``kl_per_layer`` (B, L),
        each the one-sample log q(z_l|.) - log p(z_l|.); ``kl_per_dim`` None."""
        zs, log_qs = self.sample_posterior(x, 1)
        log_ps = self.prior_log_probs(zs)
        kl_per_layer = torch.stack([q[0] - p[0] for q, p in zip(log_qs, log_ps)], dim=1)
        recon = self.data_log_prob(x, zs[0])[0]
        return {"recon": recon, "kl": kl_per_layer.sum(1), "kl_per_layer": kl_per_layer,
                "kl_per_dim": None}  # fmt: skip

    def log_importance_weights(
        self, x: Tensor, k: int, prior_weight: float = 1.0, chunk_size: int | None = None
    ) -> Tensor:
        """log w_i = log p(x|z_1) + prior_weight * (sum_l log p(z_l|z_{l+1}) - sum_l log q),
        (k, B) fp32, at most ``chunk_size * B`` draws at a time."""
        chunk_size = k if chunk_size is None else max(1, int(chunk_size))
        out = []
        for start in range(0, k, chunk_size):
            zs, log_qs = self.sample_posterior(x, min(chunk_size, k - start))
            log_p, log_q = torch.stack(self.prior_log_probs(zs)).sum(0), torch.stack(log_qs).sum(0)
            out.append(self.data_log_prob(x, zs[0]) + prior_weight * (log_p - log_q))
        return torch.cat(out, dim=0)

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """As :meth:`VAE.loss_terms`, free bits per layer, plus ``kl_<l>`` (batch means)."""
        terms = self.elbo_terms(x)
        out = self._loss_from_terms(x, terms)
        for i, value in enumerate(terms["kl_per_layer"].mean(0).unbind()):
            out[f"kl_{i + 1}"] = value
        return out

    def _kl_for_loss(self, terms: dict[str, Tensor]) -> Tensor:
        """The sum of the layers' batch-mean KLs; with ``free_bits`` layer l's is clamped below
        at ``free_bits * layer_dims()[l]`` nats."""
        kl_layers = terms["kl_per_layer"].mean(0)
        if self.config.free_bits > 0:
            dims = torch.tensor(self.layer_dims(), device=kl_layers.device)
            kl_layers = torch.maximum(kl_layers, self.config.free_bits * dims)
        return kl_layers.sum()

    # -- sampling ---------------------------------------------------------------------------
    @torch.no_grad()
    def latents(self, num_samples, generator=None, truncation=None, temperature=None, **_):
        """Top-layer z_L (N, d_L) ~ N(0, I) on the CPU, truncated and tempered when asked."""
        return normal_latents(
            num_samples, self.config.latent_dims[-1], generator, truncation, temperature
        )

    @torch.no_grad()
    def _descend(self, z: Tensor, noise: list[Tensor] | None) -> Tensor:
        """From z_L (N, d_L) down to the likelihood's mean image; ``noise`` [eps_{L-1}..eps_1]
        for ancestral sampling (None: the conditional means)."""
        for i in reversed(range(len(self.decoders))):
            mean, log_var = self.decoders[i](z)
            eps = 0 if noise is None else noise[len(self.decoders) - 1 - i].to(z.device)
            z = mean + eps * torch.exp(0.5 * log_var)
        return self.likelihood.mean(self.decode(z)).float()

    @torch.no_grad()
    def generate(self, num_samples, *, generator=None, truncation=None, temperature=None):
        """Ancestral samples (N, C, H, W) in [0, 1]: z_L, then z_l ~ p(z_l | z_{l+1}) (noise
        scaled by ``temperature``), shown as the likelihood's mean image of z_1."""
        z = self.latents(num_samples, generator, truncation, temperature).to(self.device)
        scale = 1.0 if temperature is None else temperature
        noise = [
            scale * torch.randn(num_samples, d, generator=generator)
            for d in reversed(self.config.latent_dims[:-1])
        ]
        return self._descend(z, noise)

    @torch.no_grad()
    def generate_from_latents(self, z: Tensor, **_) -> Tensor:
        """Mean image (N, C, H, W) of top-layer codes z (N, d_L), through conditional means."""
        return self._descend(z.to(self.device), None)

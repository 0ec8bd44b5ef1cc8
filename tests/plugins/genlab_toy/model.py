"""ToyDiffusion: a genlab model family that is neither a GAN nor a VAE (a small DDPM).

Ho et al. 2020: images x in [0, 1] are mapped to x0 = 2x - 1; the forward process is
x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, and the network learns eps from (x_t, t) with the
"simple" loss E ||eps - eps_theta(x_t, t)||^2. Sampling runs the T steps back from
x_T ~ N(0, I): ``generate`` is DDPM's ancestral sampler (fresh noise every step);
``generate_from_latents`` is the deterministic DDIM (eta = 0, Song et al. 2021) map from x_T,
so a latent x_T names one image and paths between latents are smooth.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from genlab.checks.errors import ConfigError
from genlab.models.base import GenerativeModule, build_optimizer
from genlab_toy.config import ToyDiffusionConfig
from genlab_toy.net import TinyUNet


def beta_schedule(cfg: ToyDiffusionConfig) -> Tensor:
    """betas (T,) in float64: linear (scaled by 1000/T) or cosine (Nichol & Dhariwal 2021)."""
    steps = cfg.timesteps
    if cfg.beta_schedule == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * cfg.beta_start, scale * cfg.beta_end, steps).double()
    s = cfg.cosine_s
    grid = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
    abar = torch.cos((grid + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)


class ToyDiffusion(GenerativeModule):
    """DDPM with epsilon prediction (config: :class:`ToyDiffusionConfig`).

    Logged: ``train/loss`` (noise MSE per pixel), ``val/loss`` (the same on validation batches
    with noise and steps drawn from a generator seeded by the batch index, so epochs compare).
    Training noise comes from the global torch RNG (genlab checkpoints it: exact resume).
    """

    config_class = ToyDiffusionConfig
    family = "toy_diffusion"
    sample_options: ClassVar[frozenset[str]] = frozenset({"temperature"})

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        cfg = self.config
        self.net = TinyUNet(cfg.channels, cfg.base_channels, cfg.time_dim)
        betas = beta_schedule(cfg)
        abar = torch.cumprod(1 - betas, dim=0)
        abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
        schedule = {  # (T,) each; derived from the config, so not stored in checkpoints
            "betas": betas,
            "abar": abar,
            "abar_prev": abar_prev,
            # posterior q(x_{t-1} | x_t, x0) = N(c0 x0 + ct x_t, var)
            "post_c0": betas * abar_prev.sqrt() / (1 - abar),
            "post_ct": (1 - abar_prev) * (1 - betas).sqrt() / (1 - abar),
            "post_var": betas * (1 - abar_prev) / (1 - abar),
        }
        for name, value in schedule.items():
            self.register_buffer(name, value.float(), persistent=False)

    # -- model ------------------------------------------------------------------------------
    def _noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        """N(0, I) of ``shape`` on the module's device, from ``generator`` (drawn on its
        device, then moved) or the global RNG."""
        if generator is None:
            return torch.randn(shape, device=self.device)
        return torch.randn(shape, generator=generator, device=generator.device).to(self.device)

    def _steps(self, n: int, generator: torch.Generator | None) -> Tensor:
        """n steps t (n,) uniform in 0..T-1, on the module's device."""
        high = self.config.timesteps
        if generator is None:
            return torch.randint(0, high, (n,), device=self.device)
        return torch.randint(0, high, (n,), generator=generator, device=generator.device).to(
            self.device
        )

    def denoising_loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Per-image noise MSE (B,) of images x (B, C, H, W) in [0, 1] at random steps."""
        x0 = x * 2 - 1
        t = self._steps(x0.shape[0], generator)
        eps = self._noise(tuple(x0.shape), generator)
        abar = self.abar[t][:, None, None, None]
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
        return F.mse_loss(self.net(x_t, t), eps, reduction="none").flatten(1).mean(1)

    def _predict_x0(self, x_t: Tensor, t: int) -> tuple[Tensor, Tensor]:
        """(x0 estimate clipped to [-1, 1], eps estimate), each like x_t (N, C, H, W)."""
        steps = torch.full((x_t.shape[0],), t, device=self.device, dtype=torch.long)
        eps = self.net(x_t, steps)
        abar = self.abar[t]
        x0 = ((x_t - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-1, 1)
        return x0, eps

    # -- the sampling protocol ----------------------------------------------------------------
    @staticmethod
    def _temperature(options: dict[str, Any]) -> float:
        unknown = set(options) - {"temperature"}
        if unknown:
            raise TypeError(f"ToyDiffusion sampling takes no option(s) {sorted(unknown)}")
        value = options.get("temperature", 1.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError("temperature", value, "a number > 0")
        return float(value)

    def latents(
        self, num_samples: int, generator: torch.Generator | None = None, **options: Any
    ) -> Tensor:
        """x_T (N, C, H, W): N(0, temperature^2 I) noise, the start of every sampling chain."""
        c, s = self.config.channels, self.config.image_size
        return self._noise((num_samples, c, s, s), generator) * self._temperature(options)

    @torch.no_grad()
    def generate(
        self, num_samples: int, *, generator: torch.Generator | None = None, **options: Any
    ) -> Tensor:
        """Ancestral DDPM samples (N, C, H, W) in [0, 1]; ``temperature`` scales x_T and the
        noise of every step. Same seeded CPU ``generator`` -> same images."""
        temperature = self._temperature(options)
        x = self.latents(num_samples, generator, temperature=temperature)
        was_training = self.training
        self.eval()
        try:
            for t in reversed(range(self.config.timesteps)):
                x0, _ = self._predict_x0(x, t)
                x = self.post_c0[t] * x0 + self.post_ct[t] * x
                if t > 0:
                    noise = self._noise(tuple(x.shape), generator)
                    x = x + self.post_var[t].sqrt() * temperature * noise
        finally:
            self.train(was_training)
        return ((x + 1) / 2).clamp(0, 1).float()

    @torch.no_grad()
    def generate_from_latents(self, z: Tensor, **options: Any) -> Tensor:
        """Images (N, C, H, W) in [0, 1] from latents x_T ``z`` (N, C, H, W), by the
        deterministic DDIM sampler (eta = 0): the same z always gives the same image.
        ``temperature`` is accepted and already applied by :meth:`latents`."""
        self._temperature(options)
        x = z.to(self.device).float()
        was_training = self.training
        self.eval()
        try:
            for t in reversed(range(self.config.timesteps)):
                x0, eps = self._predict_x0(x, t)
                x = self.abar_prev[t].sqrt() * x0 + (1 - self.abar_prev[t]).sqrt() * eps
        finally:
            self.train(was_training)
        return ((x + 1) / 2).clamp(0, 1).float()

    @torch.no_grad()
    def evaluation_terms(self, datamodule, settings: dict[str, Any]) -> dict[str, float | int]:
        """Held-out noise MSE on ``settings["split"]``: ``<prefix>denoise_mse`` (per pixel,
        mean over images, steps and noise seeded by ``settings["seed"]``) and the image count."""
        split = settings.get("split", "test")
        prefix = settings.get("prefix", f"{split}/")
        batch_size = int(settings.get("batch_size") or 100)
        images = datamodule.images(split, max_images=settings.get("num_images"))
        generator = torch.Generator().manual_seed(int(settings.get("seed") or 0))
        was_training = self.training
        self.eval()
        total = 0.0
        try:
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size].to(self.device).float() / 255.0
                total += self.denoising_loss(x, generator).double().sum().item()
        finally:
            self.train(was_training)
        if len(images) == 0:
            raise ConfigError("num_test_images", 0, f"an integer >= 1 (the {split} split is empty)")
        return {f"{prefix}denoise_mse": total / len(images), f"{prefix}num_images": len(images)}

    def configure_optimizers(self):
        return build_optimizer(self.config.optimizer, self.parameters())

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.denoising_loss(batch["image"]).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        generator = torch.Generator().manual_seed(batch_idx)
        loss = self.denoising_loss(batch["image"], generator).mean()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)

"""GAN LightningModule: manual optimisation, n_critic discriminator steps per generator step."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genlab.losses.gan import GAN_LOSSES, gradient_penalty, r1_penalty
from genlab.models.base import GenerativeModule, build_optimizer
from genlab.models.gan.config import GANConfig
from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.mlp import MLPDiscriminator, MLPGenerator


def build_generator(cfg: GANConfig, num_classes: int | None) -> nn.Module:
    spec = {k: v for k, v in cfg.generator.items() if k != "arch"}
    net = DCGANGenerator if cfg.generator["arch"] == "dcgan" else MLPGenerator
    return net(cfg.latent_dim, cfg.channels, cfg.image_size, num_classes=num_classes, **spec)


def build_discriminator(cfg: GANConfig, num_classes: int | None) -> nn.Module:
    spec = {k: v for k, v in cfg.discriminator.items() if k != "arch"}
    net = DCGANDiscriminator if cfg.discriminator["arch"] == "dcgan" else MLPDiscriminator
    return net(cfg.channels, cfg.image_size, num_classes=num_classes, **spec)


class GAN(GenerativeModule):
    """Generator G and discriminator D trained adversarially with the loss named by ``loss``.

    Per batch: one discriminator step; every ``n_critic``-th batch also one generator step.
    ``forward(z)`` generates images in [-1, 1]. Counters ``d_steps``/``g_steps`` key every
    schedule (Lightning's ``global_step`` counts both optimizers' steps).
    """

    config_class = GANConfig
    family = "gan"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.automatic_optimization = False
        cfg = self.config
        num_classes = cfg.num_classes if cfg.conditional else None
        self.generator = build_generator(cfg, num_classes)
        self.discriminator = build_discriminator(cfg, num_classes)
        self.loss_fns = GAN_LOSSES[cfg.loss]
        self.generator_ema = None
        if cfg.ema_decay is not None:
            ema_fn = get_ema_multi_avg_fn(cfg.ema_decay)
            self.generator_ema = AveragedModel(
                self.generator, multi_avg_fn=ema_fn, use_buffers=True
            )
            self.generator_ema.requires_grad_(False)
        self.d_steps = 0
        self.g_steps = 0

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, labels)

    # -- sampling ----------------------------------------------------------------------------
    def random_labels(self, num_samples: int, generator: torch.Generator | None = None):
        if not self.config.conditional:
            return None
        labels = torch.randint(0, self.config.num_classes, (num_samples,), generator=generator)
        return labels.to(self.device)

    @torch.no_grad()
    def generate(
        self,
        num_samples: int,
        z: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_ema: bool = True,
    ) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1]; the EMA generator when enabled and ``use_ema``."""
        z = self.sample_latent(num_samples) if z is None else z.to(self.device)
        if labels is None:
            labels = self.random_labels(len(z))
        net = self.generator_ema.module if (use_ema and self.generator_ema) else self.generator
        was_training = net.training
        net.eval()
        images = net(z, labels)
        net.train(was_training)
        return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    # -- training ----------------------------------------------------------------------------
    def configure_optimizers(self):
        cfg = self.config
        opt_d = build_optimizer(cfg.optimizer_d, self.discriminator.parameters())
        opt_g = build_optimizer(cfg.optimizer_g, self.generator.parameters())
        configs = []
        for optimizer, spec in ((opt_d, cfg.scheduler_d), (opt_g, cfg.scheduler_g)):
            config = {"optimizer": optimizer}
            if spec:  # stepped by hand once per generator step, saved in checkpoints by Lightning
                config["lr_scheduler"] = {"scheduler": build_optimizer(spec, optimizer)}
            configs.append(config)
        return configs

    def _labels(self, batch) -> torch.Tensor | None:
        return batch["label"] if self.config.conditional else None

    def discriminator_step(self, real: torch.Tensor, labels) -> dict[str, torch.Tensor]:
        cfg = self.config
        with torch.no_grad():
            fake = self.generator(self.sample_latent(real.size(0)), labels)
        real_logits = self.discriminator(real, labels)
        fake_logits = self.discriminator(fake, labels)
        loss_d = self.loss_fns.d_loss(real_logits.float(), fake_logits.float())
        out = {"loss_d": loss_d.detach()}
        if cfg.gp_weight > 0:
            gp = gradient_penalty(self.discriminator, real, fake, labels)
            loss_d = loss_d + cfg.gp_weight * gp
            out["gp"] = gp.detach()
        if cfg.r1_gamma > 0 and self.d_steps % cfg.r1_every == 0:
            r1 = r1_penalty(self.discriminator, real, labels)
            loss_d = loss_d + 0.5 * cfg.r1_gamma * cfg.r1_every * r1
            out["r1"] = r1.detach()
        out["d_real"] = torch.sigmoid(real_logits.detach().float()).mean()
        out["d_fake"] = torch.sigmoid(fake_logits.detach().float()).mean()
        out["loss_d_total"] = loss_d
        return out

    def generator_step(self, batch_size: int, labels) -> torch.Tensor:
        fake = self.generator(self.sample_latent(batch_size), labels)
        return self.loss_fns.g_loss(self.discriminator(fake, labels).float())

    def _optimize(self, optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def training_step(self, batch, batch_idx):
        real = batch["image"] * 2.0 - 1.0
        labels = self._labels(batch)
        opt_d, opt_g = self.optimizers()

        self.toggle_optimizer(opt_d)
        out_d = self.discriminator_step(real, labels)
        self._optimize(opt_d, out_d.pop("loss_d_total"))
        self.untoggle_optimizer(opt_d)
        self.d_steps += 1

        loss_d = out_d.pop("loss_d")
        logs = {f"train/{k}": v for k, v in out_d.items()}
        if self.d_steps % self.config.n_critic == 0:
            self.toggle_optimizer(opt_g)
            loss_g = self.generator_step(real.size(0), labels)
            self._optimize(opt_g, loss_g)
            self.untoggle_optimizer(opt_g)
            self.g_steps += 1
            self._after_generator_step()
            logs["train/loss_g"] = loss_g.detach()
        logs["train/g_step"] = float(self.g_steps)
        self.log_dict(logs, prog_bar=False, on_step=True, on_epoch=False)
        self.log("train/loss_d", loss_d, prog_bar=True)

    def _after_generator_step(self) -> None:
        schedulers = self.lr_schedulers() or []
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
        if self.generator_ema is not None:
            if self.g_steps <= self.config.ema_start:
                self.generator_ema.n_averaged.zero_()  # warm-up: copy G
            self.generator_ema.update_parameters(self.generator)

    def validation_step(self, batch, batch_idx):
        """Discriminator scores on held-out reals and fresh fakes (cheap health signal)."""
        real = batch["image"] * 2.0 - 1.0
        labels = self._labels(batch)
        fake = self.generate(real.size(0), labels=labels) * 2.0 - 1.0
        d_real = torch.sigmoid(self.discriminator(real, labels).float()).mean()
        d_fake = torch.sigmoid(self.discriminator(fake, labels).float()).mean()
        self.log_dict({"val/d_real": d_real, "val/d_fake": d_fake}, sync_dist=True)

    def counters(self) -> dict[str, int]:
        return {"d_steps": self.d_steps, "g_steps": self.g_steps}

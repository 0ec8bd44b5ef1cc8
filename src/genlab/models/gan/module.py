"""GAN LightningModule: manual optimisation, n_critic discriminator steps per generator step.

Step counting (Lightning issue 17958): Lightning's ``trainer.global_step`` counts optimizer
steps. Here only *generator* steps reach Lightning's counter (discriminator steps go through
``strategy.optimizer_step`` directly), so ``trainer.global_step == g_steps`` and
``trainer.max_steps``, ``ModelCheckpoint(every_n_train_steps=...)`` and the logged
``train/g_step`` all count generator steps. ``d_steps`` counts discriminator steps (= batches).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genlab.losses.gan import GAN_LOSSES, gradient_penalty, r1_penalty
from genlab.models.base import GenerativeModule, build_optimizer
from genlab.models.gan.config import GANConfig
from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.mlp import MLPDiscriminator, MLPGenerator
from genlab.utils.errors import ConfigError


def build_generator(cfg: GANConfig, num_classes: int | None) -> nn.Module:
    spec = {k: v for k, v in cfg.generator.items() if k != "arch"}
    net = DCGANGenerator if cfg.generator["arch"] == "dcgan" else MLPGenerator
    return net(cfg.latent_dim, cfg.channels, cfg.image_size, num_classes=num_classes, **spec)


def build_discriminator(cfg: GANConfig, num_classes: int | None) -> nn.Module:
    spec = {k: v for k, v in cfg.discriminator.items() if k != "arch"}
    net = DCGANDiscriminator if cfg.discriminator["arch"] == "dcgan" else MLPDiscriminator
    return net(cfg.channels, cfg.image_size, num_classes=num_classes, **spec)


def _no_closure() -> None:
    return None


class GAN(GenerativeModule):
    """Generator G and discriminator D trained adversarially with the loss named by ``loss``.

    Per batch: one discriminator step; every ``n_critic``-th batch (so on distinct batches)
    also one generator step. ``forward(z)`` generates images in [-1, 1]. Counters
    ``d_steps``/``g_steps``/``skipped_g_steps`` key every schedule and survive resume.
    """

    config_class = GANConfig
    family = "gan"
    syncs_own_gradients = True  # under GANDDPStrategy: all-reduces G or D grads before a step

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
        self.d_steps = 0  # discriminator steps = training batches seen
        self.g_steps = 0  # generator steps = trainer.global_step
        self.skipped_g_steps = 0  # generator steps an fp16 GradScaler skipped (inf/NaN grads)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, labels)

    # -- sampling ----------------------------------------------------------------------------
    def random_labels(self, num_samples: int, generator: torch.Generator | None = None):
        """Uniform class labels (num_samples,) for a conditional GAN, else None."""
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
        if not self.config.conditional:
            return None
        labels = batch["label"]
        if labels.min() < 0:
            raise ConfigError("model.conditional", True, "false for unlabelled data (label -1)")
        return labels

    def discriminator_step(self, real: torch.Tensor, labels) -> dict[str, torch.Tensor]:
        """D losses on a real batch (B, C, H, W) in [-1, 1] and as many fresh fakes."""
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
        if cfg.r1_gamma > 0 and self.d_steps % cfg.r1_every == 0:  # lazy R1 (d_steps = batches)
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

    def _sync_gradients(self, module: nn.Module) -> None:
        """Average ``module``'s gradients over processes when the strategy does not wrap the model
        in DDP (``genlab.models.gan.ddp.GANDDPStrategy``): one all-reduce of only the parameters
        this optimizer updates."""
        trainer = self._trainer
        if trainer is None or trainer.world_size <= 1:
            return
        if isinstance(trainer.strategy.model, DistributedDataParallel):
            return  # DDP already averaged them during backward
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= trainer.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def _optimize(self, optimizer, loss: torch.Tensor, module: nn.Module, counted: bool) -> bool:
        """Backward + step; returns False when an fp16 GradScaler skipped the step.

        ``counted=False`` bypasses Lightning's step counter (discriminator steps).
        """
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self._sync_gradients(module)
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        scale_before = scaler.get_scale() if scaler is not None else None
        if counted:
            optimizer.step()
        else:
            self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=_no_closure)
        # GradScaler.update() lowers the scale exactly when the step was skipped.
        return scaler is None or scaler.get_scale() >= scale_before

    def training_step(self, batch, batch_idx):
        real = batch["image"] * 2.0 - 1.0
        labels = self._labels(batch)
        opt_d, opt_g = self.optimizers()

        self.toggle_optimizer(opt_d)
        out_d = self.discriminator_step(real, labels)
        self._optimize(opt_d, out_d.pop("loss_d_total"), self.discriminator, counted=False)
        self.untoggle_optimizer(opt_d)
        self.d_steps += 1

        loss_d = out_d.pop("loss_d")
        logs = {f"train/{k}": v for k, v in out_d.items()}
        if self.d_steps % self.config.n_critic == 0:
            self.toggle_optimizer(opt_g)
            loss_g = self.generator_step(real.size(0), labels)
            applied = self._optimize(opt_g, loss_g, self.generator, counted=True)
            self.untoggle_optimizer(opt_g)
            self.g_steps += 1
            self._after_generator_step(applied)
            logs["train/loss_g"] = loss_g.detach()
        logs["train/g_step"] = float(self.g_steps)
        logs["train/d_step"] = float(self.d_steps)
        if self.skipped_g_steps:
            logs["train/skipped_g_steps"] = float(self.skipped_g_steps)
        self.log_dict(logs, prog_bar=False, on_step=True, on_epoch=False)
        self.log("train/loss_d", loss_d, prog_bar=True)

    def _after_generator_step(self, applied: bool) -> None:
        """LR schedulers (both) and the EMA advance once per *applied* generator step."""
        if not applied:  # fp16 scaler skipped the step: weights unchanged, schedules wait
            self.skipped_g_steps += 1
            return
        schedulers = self.lr_schedulers() or []
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
        if self.generator_ema is not None:
            if self.g_steps <= self.config.ema_start:
                self.generator_ema.n_averaged.zero_()  # warm-up: the EMA copies G
            self.generator_ema.update_parameters(self.generator)

    def validation_step(self, batch, batch_idx):
        """Discriminator scores on held-out reals and fresh fakes (cheap health signal)."""
        real = batch["image"] * 2.0 - 1.0
        labels = self._labels(batch)
        fake = self.generate(real.size(0), labels=labels) * 2.0 - 1.0
        d_real = torch.sigmoid(self.discriminator(real, labels).float()).mean()
        d_fake = torch.sigmoid(self.discriminator(fake, labels).float()).mean()
        self.log_dict({"val/d_real": d_real, "val/d_fake": d_fake}, sync_dist=True)

    # -- resume ------------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        return {
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
            "skipped_g_steps": self.skipped_g_steps,
        }

"""Typed configuration of the GAN family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genlab.losses.gan import GAN_LOSSES
from genlab.nets.dcgan import D_NORMS
from genlab.utils.config import check_optimizer, number, positive_int, require

GAN_ARCHS = ("dcgan", "mlp")


def _adam(lr: float, betas: tuple[float, float]) -> dict[str, Any]:
    return {"_target_": "torch.optim.Adam", "lr": lr, "betas": list(betas)}


@dataclass
class GANConfig:
    """Every field of ``conf/model/gan.yaml``.

    Attributes:
        image_size: side of the square images (from ``${data.image_size}``).
        channels: image channels, 1 or 3 (from ``${data.channels}``).
        num_classes: classes in the data (``${data.num_classes}``), used when ``conditional``.
        latent_dim: size of z ~ N(0, I).
        loss: name in ``genlab.losses.gan.GAN_LOSSES``.
        conditional: class-conditional G (label embedding) and projection D.
        generator: ``{arch: dcgan|mlp, base_channels: int, hidden_dims: [..]}``.
        discriminator: ``{arch, base_channels, hidden_dims, norm: batch|instance|layer|none,
            spectral_norm: bool}``.
        optimizer_g, optimizer_d: ``{_target_: torch.optim.X, lr: .., ...}`` (separate: TTUR).
        scheduler_g, scheduler_d: optional ``{_target_: torch.optim.lr_scheduler.X, ...}``,
            stepped once per generator step (not when an fp16 GradScaler skipped it).
        n_critic: discriminator steps (each on its own batch) per generator step. Every batch
            is one D step (``d_steps``); every ``n_critic``-th batch also one G step
            (``g_steps``, which is ``trainer.global_step``, so ``trainer.max_steps`` and
            ``ModelCheckpoint(every_n_train_steps)`` count generator steps).
        gp_weight: WGAN-GP gradient penalty weight (0 = off).
        r1_gamma: R1 penalty gamma on reals (0 = off); the penalty is gamma/2 * ||grad||^2.
        r1_every: lazy R1: apply every k discriminator steps, scaled by k.
        ema_decay: EMA of the generator weights and buffers (null = off); ``generate`` (samples,
            metrics, ``genlab.sample``) uses it when on. Only G is averaged, once per applied
            generator step; it is part of the state dict (saved, restored on resume).
        ema_start: warm-up: for the first ``ema_start`` generator steps the EMA copies G.
    """

    image_size: int
    channels: int
    num_classes: int | None = None
    latent_dim: int = 100
    loss: str = "non_saturating"
    conditional: bool = False
    generator: dict[str, Any] = field(
        default_factory=lambda: {"arch": "dcgan", "base_channels": 64}
    )
    discriminator: dict[str, Any] = field(
        default_factory=lambda: {"arch": "dcgan", "base_channels": 64, "norm": "batch"}
    )
    optimizer_g: dict[str, Any] = field(default_factory=lambda: _adam(2e-4, (0.5, 0.999)))
    optimizer_d: dict[str, Any] = field(default_factory=lambda: _adam(2e-4, (0.5, 0.999)))
    scheduler_g: dict[str, Any] | None = None
    scheduler_d: dict[str, Any] | None = None
    n_critic: int = 1
    gp_weight: float = 0.0
    r1_gamma: float = 0.0
    r1_every: int = 1
    ema_decay: float | None = None
    ema_start: int = 0

    def __post_init__(self):
        require(
            positive_int(self.latent_dim), "model.latent_dim", self.latent_dim, "an integer >= 1"
        )
        require(self.channels in (1, 3), "model.channels", self.channels, "1 or 3")
        require(self.loss in GAN_LOSSES, "model.loss", self.loss, f"one of {list(GAN_LOSSES)}")
        for name in ("generator", "discriminator"):
            arch = self.__dict__[name].get("arch")
            require(arch in GAN_ARCHS, f"model.{name}.arch", arch, f"one of {list(GAN_ARCHS)}")
        norm = self.discriminator.get("norm", "none")
        require(norm in D_NORMS, "model.discriminator.norm", norm, f"one of {list(D_NORMS)}")
        check_optimizer("model.optimizer_g", self.optimizer_g)
        check_optimizer("model.optimizer_d", self.optimizer_d)
        require(positive_int(self.n_critic), "model.n_critic", self.n_critic, "an integer >= 1")
        require(positive_int(self.r1_every), "model.r1_every", self.r1_every, "an integer >= 1")
        for key in ("gp_weight", "r1_gamma"):
            value = getattr(self, key)
            require(number(value) and value >= 0, f"model.{key}", value, "a number >= 0")
        if self.ema_decay is not None:
            ok = number(self.ema_decay) and 0.0 < self.ema_decay < 1.0
            require(ok, "model.ema_decay", self.ema_decay, "null or a number in (0, 1)")
        if self.conditional:
            ok = positive_int(self.num_classes)
            require(ok, "model.num_classes", self.num_classes, "an integer >= 1 (labelled data)")

"""Typed configuration of the GAN family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genlab.augment.policy import parse_ops, parse_policy
from genlab.checks.errors import ConfigError
from genlab.checks.values import (
    check_bool,
    check_instance_shapes,
    check_int,
    check_non_negative,
    check_optimizer,
    check_speed_options,
    number,
    positive_int,
    require,
)
from genlab.losses.names import GAN_LOSS_NAMES
from genlab.nets.catalog import (
    ARCH_SIZES,
    D_NORMS,
    DISCRIMINATOR_OPTIONS,
    GAN_ARCHS,
    GENERATOR_OPTIONS,
)

# Everything below is plain data (genlab.nets.catalog, genlab.losses.names,
# genlab.augment.policy): this module imports no torch, so a bad value is refused before any
# heavy import. The arch -> class tables are genlab.nets.zoo.GENERATORS / DISCRIMINATORS.
AUGMENTS = ("none", "diffaugment", "ada")
LAZY_REG_MODES = ("separate", "fused")  # model.lazy_reg
EMA_BUFFERS = ("average", "copy")  # model.ema_buffers
FAKE_LABELS = ("real", "uniform", "dataset")  # model.fake_labels
LATENT_DISTRIBUTIONS = ("normal", "uniform")  # model.latent_distribution (genlab.models.latents)


def lazy_reg_ratio(interval: int) -> float:
    """stylegan2-ada-pytorch's ``mb_ratio = k / (k + 1)`` of a regulariser applied every k steps
    in its own optimizer step: that network's Adam runs with ``lr * ratio`` and
    ``betas ** ratio`` (training/training_loop.py, "Lazy regularization")."""
    return interval / (interval + 1)


def lazy_reg_optimizer(spec: dict[str, Any], interval: int) -> dict[str, Any]:
    """The optimizer spec with the lazy-regularisation correction of :func:`lazy_reg_ratio`:
    ``lr * ratio`` and every beta ``** ratio``."""
    ratio = lazy_reg_ratio(interval)
    return {**spec, "lr": spec["lr"] * ratio, "betas": [b**ratio for b in spec["betas"]]}


def check_net_spec(name: str, spec: dict[str, Any], image_size: int) -> str:
    """Check ``model.<name>`` (arch known, image size taken, every key an argument of the
    net) before anything is built; returns the arch."""
    arch = spec.get("arch")
    require(arch in GAN_ARCHS, f"model.{name}.arch", arch, f"one of {list(GAN_ARCHS)}")
    sizes = ARCH_SIZES[arch]
    if sizes is not None and image_size not in sizes:
        raise ConfigError(
            "data.image_size",
            image_size,
            f"one of {list(sizes)} for model.{name}.arch={arch} (resize the data with "
            "data.image_size where the datamodule can, or pick another arch)",
        )
    allowed = list((GENERATOR_OPTIONS if name == "generator" else DISCRIMINATOR_OPTIONS)[arch])
    for key in spec:
        if key != "arch" and key not in allowed:
            raise ConfigError(f"model.{name}.{key}", spec[key], f"a key of arch={arch}: {allowed}")
    return arch


def _adam(lr: float, betas: tuple[float, float]) -> dict[str, Any]:
    return {"_target_": "torch.optim.Adam", "lr": lr, "betas": list(betas)}


def check_penalty_norm(gp_weight: float, r1_gamma: float, norm: str) -> None:
    """Refuse a gradient penalty on a batch-normalised discriminator.

    WGAN-GP and R1 penalise ``||grad_x D(x_i)||`` per sample; with batch norm ``D(x_i)``
    depends on the other images of the batch, so that gradient is not the per-sample one the
    penalty is defined on (Gulrajani et al. 2017, sec. 4: "no critic batch normalization").
    """
    penalties = (("gp_weight", gp_weight), ("r1_gamma", r1_gamma))
    active = [f"model.{key}={value}" for key, value in penalties if value > 0]
    if active and norm == "batch":
        raise ConfigError(
            "model.discriminator.norm",
            norm,
            f"layer, instance or none with {' and '.join(active)} (batch norm couples the "
            "per-sample gradients the penalty is defined on); set "
            "model.discriminator.norm=layer|instance|none, or the penalty to 0",
        )


@dataclass
class GANConfig:
    """Every field of ``conf/model/gan.yaml``.

    Attributes:
        image_size: side of the square images (from ``${data.image_size}``).
        channels: image channels, 1 or 3 (from ``${data.channels}``).
        num_classes: classes in the data (``${data.num_classes}``), used when ``conditional``.
        latent_dim: size of z.
        latent_distribution: the prior of z, in training, sampling and interpolation:
            ``normal`` N(0, I) or ``uniform`` on [-1, 1] (Radford et al.'s DCGAN). The
            truncation trick redraws entries outside [-t, t] from the same distribution.
        loss: name in ``genlab.losses.gan.GAN_LOSSES`` (:data:`genlab.losses.names.GAN_LOSS_NAMES`).
        conditional: class-conditional G (label embedding) and projection D.
        pack: PacGAN packing (Lin et al. 2018): D judges ``pack`` = m samples at once, all real
            or all fake, concatenated along the channels as fjxmlzn/PacGAN does (its
            ``tf.concat(G_sep, 3)``), so D's input has ``m x channels`` channels and a batch of
            B images (after ``model.augment``, which acts on each image) is B/m packed inputs;
            the batch size must be divisible by m (``data.batch_size``). 1 = no packing. R1 is
            the R1 of the packed D (the squared gradient norm of each packed input: m x the
            per-image mean). Refused with ``conditional`` (projection D scores one label per
            input; m images carry m labels) and ``gp_weight > 0`` (WGAN-GP's unit-norm
            constraint and its interpolation lines are per D input; genlab's penalty draws
            them per image). Allowed with ADA (r_t = E[sign(D)] over packed inputs), DiffAugment,
            batch norm in D (the reference D uses it) and StyleGAN2's minibatch-stddev (its
            groups are of packed inputs: B/m must suit ``mbstd_group_size``).
        fake_labels: the labels G's fakes are conditioned on (``conditional`` only), in D and
            G steps and the path-length penalty: ``real`` (the real batch's labels, paired
            with its images), ``uniform`` (uniform random classes drawn afresh for each step,
            StudioGAN) or ``dataset`` (labels of random training images, i.e. i.i.d. draws from
            the training set's class frequencies, stylegan2-ada-pytorch's ``gen_c``; counted
            once from the datamodule's train split when fitting starts and kept in the
            checkpoint as the ``fake_label_counts`` buffer). Draws come from the global torch
            stream, which genlab seeds per rank and restores on resume. D scores the reals
            with their own labels and the fakes with theirs; the gradient penalty (on
            real/fake interpolates) and R1 use the real labels. ``generate`` without labels
            draws uniform classes, or with ``dataset`` the training frequencies.
        generator: ``{arch: dcgan|mlp|resnet|stylegan2, ...}``; every other key is an argument
            of that arch's net (:data:`genlab.nets.zoo.GENERATORS`: e.g. ``base_channels`` for dcgan/resnet,
            ``hidden_dims`` for mlp, ``class_embedding_dim``/``hierarchical_z``/
            ``attention_resolution``/``spectral_norm`` for resnet, ``channel_base``/
            ``mapping_layers``/``style_mixing_prob`` for stylegan2). An unknown key or an image
            size the arch does not take is a ConfigError before anything is built.
        discriminator: ``{arch, ...}`` likewise (:data:`genlab.nets.zoo.DISCRIMINATORS`: ``norm:
            batch|instance|layer|none`` and ``spectral_norm`` for dcgan/mlp; ``spectral_norm``,
            ``pooling``, ``wide`` for resnet; ``mbstd_group_size`` for stylegan2).
        augment: ``none`` | ``diffaugment`` (Zhao et al. 2020) | ``ada`` (Karras et al. 2020):
            applied to every real and fake image D sees, in D and G steps (and the penalties).
        augment_policy: DiffAugment's operations, e.g. ``color,translation,cutout``.
        ada_ops: ADA's operation groups/names, e.g. ``blit,geom,color``.
        ada_target: ADA's target of r_t = E[sign(D(aug(real)))] (0.6).
        ada_interval: D steps between adjustments of p (4).
        ada_speed_kimg: thousands of reals for p to go from 0 to 1 (500; the ADA paper).
        ada_p: initial (ADA) augmentation probability p; p and r_t are logged as
            ``train/ada_p``, ``train/ada_rt`` and saved with the model.
        ada_antialias: ADA's geometric warps as stylegan2-ada-pytorch (2x supersampling with
            the sym6 low-pass filter, :func:`genlab.augment.warp.warp_antialiased`; true) or
            plain bilinear resampling at the image's resolution (genlab's earlier warp; false).
        ortho_reg: BigGAN's orthogonal regularisation strength beta on G (0 = off; 1e-4).
        pl_weight: StyleGAN2 path-length regularisation weight (0 = off; 2), stylegan2 G only.
        pl_every: lazy path-length regularisation: every k generator steps, scaled by k (4).
        pl_batch_shrink: the penalty uses batch_size // pl_batch_shrink fresh latents (2).
        optimizer_g, optimizer_d: ``{_target_: torch.optim.X, lr: .., ...}`` (separate: TTUR).
        scheduler_g, scheduler_d: optional ``{_target_: torch.optim.lr_scheduler.X, ...}``,
            stepped once per generator step (not when an fp16 GradScaler skipped it).
        n_critic: discriminator steps (each on its own batch) per generator step. Every batch
            is one D step (``d_steps``); every ``n_critic``-th batch also one G step
            (``g_steps``, which is ``trainer.global_step``, so ``trainer.max_steps`` and
            ``ModelCheckpoint(every_n_train_steps)`` count generator steps).
        reuse_fakes: on a batch with a G step, score the D step's fakes again in the G step
            (against the just-updated D, as PyTorch's DCGAN example does) instead of drawing
            new ones: one G forward per batch instead of two (false = fresh fakes per step).
        gp_weight: WGAN-GP gradient penalty weight (0 = off). With ``gp_weight > 0`` or
            ``r1_gamma > 0`` the discriminator must not use batch norm (``ConfigError``).
        r1_gamma: R1 penalty gamma on reals (0 = off); the penalty is gamma/2 * ||grad||^2.
        r1_every: lazy R1: apply every k discriminator steps, scaled by k (1 = every step, in
            the main D step).
        lazy_reg: how a lazy regulariser (R1 with ``r1_every`` = k > 1, path length with
            ``pl_every`` = k > 1) is applied on its k-th step. ``separate`` (StyleGAN2,
            stylegan2-ada-pytorch's ``Dreg``/``Greg`` phases): its own optimizer step after the
            main one, on the same batch, weighted by k, and that network's optimizer built with
            ``lr * k/(k+1)`` and ``betas ** (k/(k+1))`` (both steps use it; the key keeps the
            uncorrected values). ``fused``: added to the main step's loss, weighted by k, no
            correction. A network without an active regulariser (``r1_gamma: 0``,
            ``pl_weight: 0``) or with k = 1 is never corrected.
        ema_decay: constant decay of the EMA of the generator weights and buffers (null = off
            unless ``ema_kimg`` is set); ``generate`` (samples, metrics, ``genlab.sample``)
            uses the EMA when on. Only G is averaged, once per applied generator step; it is
            part of the state dict (saved, restored on resume).
        ema_kimg: EMA half-life in thousands of real images, stylegan2-ada-pytorch's
            ``ema_kimg`` (null = use ``ema_decay``; setting both is a ConfigError). Each
            generator step then averages with ``beta = 0.5 ** (n / (ema_kimg * 1000))``, n =
            the real images of that step over all processes (``n_critic`` x batch x world
            size), so the half-life does not depend on the batch size or the number of GPUs.
        ema_rampup: with ``ema_kimg``: the half-life is at most ``ema_rampup`` times the real
            images seen before this step (stylegan2-ada-pytorch's ``ema_rampup``; its cifar
            config: 0.05), so the early EMA tracks G; null = the full half-life from step 1.
            Images seen come from the step counters (``d_steps`` x global batch), so a resumed
            run continues the same schedule.
        ema_buffers: what the EMA generator does with G's buffers at each update: ``average``
            them like the weights (batch-norm statistics; BigGAN-PyTorch's EMA) or ``copy`` them
            (stylegan2-ada-pytorch's G_ema, mmagic's ``update_buffers=False``: StyleGAN2's
            running mean of w, the truncation target, is G's own).
        ema_start: warm-up: for the first ``ema_start`` generator steps the EMA copies G.
        compile: ``torch.compile`` the networks (a bool; false = eager).
        channels_last: ``channels_last`` memory format for the conv nets (a bool).
    """

    image_size: int
    channels: int
    num_classes: int | None = None
    latent_dim: int = 100
    latent_distribution: str = "normal"
    loss: str = "non_saturating"
    conditional: bool = False
    fake_labels: str = "real"
    pack: int = 1
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
    reuse_fakes: bool = False
    gp_weight: float = 0.0
    r1_gamma: float = 0.0
    r1_every: int = 1
    lazy_reg: str = "separate"
    ema_decay: float | None = None
    ema_kimg: float | None = None
    ema_rampup: float | None = None
    ema_buffers: str = "average"
    ema_start: int = 0
    augment: str = "none"
    augment_policy: str = "color,translation,cutout"
    ada_ops: str = "blit,geom,color"
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_speed_kimg: float = 500.0
    ada_p: float = 0.0
    ada_antialias: bool = True
    ortho_reg: float = 0.0
    pl_weight: float = 0.0
    pl_every: int = 4
    pl_batch_shrink: int = 2
    compile: bool = False
    channels_last: bool = False

    def __post_init__(self):
        check_instance_shapes(self)  # a mapping where a value belongs, or the reverse: one line
        check_int("model.latent_dim", self.latent_dim)
        require(self.channels in (1, 3), "model.channels", self.channels, "1 or 3")
        ok = self.loss in GAN_LOSS_NAMES
        require(ok, "model.loss", self.loss, f"one of {list(GAN_LOSS_NAMES)}")
        g_arch = check_net_spec("generator", self.generator, self.image_size)
        d_arch = check_net_spec("discriminator", self.discriminator, self.image_size)
        # the nets' own defaults when the key is absent: DCGAN D batch norm, others none
        default_norm = "batch" if d_arch == "dcgan" else "none"
        norm = self.discriminator.get("norm", default_norm)
        require(norm in D_NORMS, "model.discriminator.norm", norm, f"one of {list(D_NORMS)}")
        self._check_regularisers(g_arch)
        check_optimizer("model.optimizer_g", self.optimizer_g)
        check_optimizer("model.optimizer_d", self.optimizer_d)
        for net, interval in self.lazy_reg_intervals().items():
            key = f"model.optimizer_{net}.betas"
            betas = (self.optimizer_g if net == "g" else self.optimizer_d).get("betas")
            ok = isinstance(betas, list | tuple) and all(number(b) and 0 <= b < 1 for b in betas)
            require(
                ok,
                key,
                betas,
                f"a list of betas in [0, 1) (model.lazy_reg=separate raises them to the power "
                f"k/(k+1), k={interval}), or model.lazy_reg=fused",
            )
        for key in ("n_critic", "r1_every"):
            check_int(f"model.{key}", getattr(self, key))
        check_bool("model.reuse_fakes", self.reuse_fakes)
        for key in ("gp_weight", "r1_gamma"):
            check_non_negative(f"model.{key}", getattr(self, key))
        check_penalty_norm(self.gp_weight, self.r1_gamma, norm)
        self._check_ema()
        dists = list(LATENT_DISTRIBUTIONS)
        ok = self.latent_distribution in dists
        require(ok, "model.latent_distribution", self.latent_distribution, f"one of {dists}")
        modes = list(FAKE_LABELS)
        ok = self.fake_labels in modes
        require(ok, "model.fake_labels", self.fake_labels, f"one of {modes}")
        self._check_pack()
        if self.conditional:
            ok = positive_int(self.num_classes)
            require(ok, "model.num_classes", self.num_classes, "an integer >= 1 (labelled data)")
        check_speed_options(self)

    def _check_pack(self) -> None:
        """``pack``: an integer >= 1; refused (one line naming both keys, and why) with the
        options it cannot combine with."""
        check_int("model.pack", self.pack)
        if self.pack == 1:
            return
        if self.conditional:
            raise ConfigError(
                "model.pack",
                self.pack,
                "1 with model.conditional=true (the projection discriminator scores one label "
                "per input; a packed input holds model.pack images with as many labels)",
            )
        if self.gp_weight > 0:
            raise ConfigError(
                "model.pack",
                self.pack,
                f"1 with model.gp_weight={self.gp_weight} (WGAN-GP constrains the gradient norm "
                "of each D input along real-fake lines; genlab's penalty draws them per image, "
                "not per packed input); use model.r1_gamma, which packs exactly",
            )

    def _check_ema(self) -> None:
        """``ema_decay`` (constant) or ``ema_kimg`` (half-life in images, ``ema_rampup``)."""
        if self.ema_decay is not None:
            ok = number(self.ema_decay) and 0.0 < self.ema_decay < 1.0
            require(ok, "model.ema_decay", self.ema_decay, "null or a number in (0, 1)")
        if self.ema_kimg is not None:
            ok = number(self.ema_kimg) and self.ema_kimg > 0
            require(ok, "model.ema_kimg", self.ema_kimg, "null or a number > 0 (kimg)")
            if self.ema_decay is not None:
                raise ConfigError(
                    "model.ema_kimg",
                    self.ema_kimg,
                    f"null with model.ema_decay={self.ema_decay} (a constant decay and a "
                    "half-life in images are two ways to set the same EMA); set "
                    "model.ema_decay=null to use ema_kimg, or model.ema_kimg=null",
                )
        if self.ema_rampup is not None:
            ok = number(self.ema_rampup) and self.ema_rampup > 0
            require(ok, "model.ema_rampup", self.ema_rampup, "null or a number > 0 (e.g. 0.05)")
            require(
                self.ema_kimg is not None,
                "model.ema_rampup",
                self.ema_rampup,
                "null unless model.ema_kimg is set (the ramp-up limits the half-life in images)",
            )
        check_int("model.ema_start", self.ema_start, minimum=0)
        ok = self.ema_buffers in EMA_BUFFERS
        require(ok, "model.ema_buffers", self.ema_buffers, f"one of {list(EMA_BUFFERS)}")

    def lazy_reg_intervals(self) -> dict[str, int]:
        """``{"d": r1_every, "g": pl_every}`` for each network whose regulariser runs as its
        own optimizer step (``lazy_reg: separate``, weight > 0, interval > 1): these
        optimizers get the k/(k+1) correction."""
        if self.lazy_reg != "separate":
            return {}
        intervals = {}
        if self.r1_gamma > 0 and self.r1_every > 1:
            intervals["d"] = self.r1_every
        if self.pl_weight > 0 and self.pl_every > 1:
            intervals["g"] = self.pl_every
        return intervals

    def _check_regularisers(self, g_arch: str) -> None:
        """Augmentation, orthogonal and path-length settings."""
        require(self.augment in AUGMENTS, "model.augment", self.augment, f"one of {list(AUGMENTS)}")
        if self.augment == "diffaugment":
            parse_policy(self.augment_policy, "model.augment_policy")
        if self.augment == "ada":
            parse_ops(self.ada_ops, "model.ada_ops")
            ok = number(self.ada_target) and 0.0 < self.ada_target < 1.0
            require(ok, "model.ada_target", self.ada_target, "a number in (0, 1) (ADA: 0.6)")
            ok = positive_int(self.ada_interval)
            require(ok, "model.ada_interval", self.ada_interval, "an integer >= 1 (ADA: 4)")
            ok = number(self.ada_speed_kimg) and self.ada_speed_kimg > 0
            require(ok, "model.ada_speed_kimg", self.ada_speed_kimg, "a number > 0 (ADA: 500)")
            ok = number(self.ada_p) and 0.0 <= self.ada_p <= 1.0
            require(ok, "model.ada_p", self.ada_p, "a number in [0, 1]")
        check_bool("model.ada_antialias", self.ada_antialias)
        for key in ("ortho_reg", "pl_weight"):
            check_non_negative(f"model.{key}", getattr(self, key))
        for key in ("pl_every", "pl_batch_shrink"):
            check_int(f"model.{key}", getattr(self, key))
        modes = list(LAZY_REG_MODES)
        require(self.lazy_reg in modes, "model.lazy_reg", self.lazy_reg, f"one of {modes}")
        if self.pl_weight > 0 and g_arch != "stylegan2":
            raise ConfigError(
                "model.pl_weight", self.pl_weight, "0 unless model.generator.arch=stylegan2"
            )

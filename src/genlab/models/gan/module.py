"""GAN LightningModule: manual optimisation, n_critic discriminator steps per generator step.

Lazy regularisation (``model.lazy_reg: separate``, the default, as stylegan2-ada-pytorch's
``Dreg``/``Greg`` phases): on every ``r1_every``-th batch the R1 penalty is its own D optimizer
step after the main one, and on every ``pl_every``-th generator step the path-length penalty its
own G step; those optimizers run with ``lr * k/(k+1)`` and ``betas ** (k/(k+1))``.

EMA of G: a constant ``ema_decay`` or a half-life in images (``ema_kimg``, ``ema_rampup``), whose
images seen are ``d_steps`` x the global batch, so they come back with the counters on resume.

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
from torch.optim.swa_utils import AveragedModel

from genlab.augment.ada import AdaptiveAugment
from genlab.checks.errors import ConfigError
from genlab.compat import optimizer_step_uncounted
from genlab.images import signed_to_unit, unit_to_signed
from genlab.losses.gan import GAN_LOSSES, gradient_penalty, r1_penalty
from genlab.models.base import GenerativeModule, build_optimizer
from genlab.models.gan.build import build_augment, build_discriminator, build_generator
from genlab.models.gan.config import GANConfig, lazy_reg_optimizer
from genlab.models.gan.ema import LerpEMA, ema_beta
from genlab.models.gan.fake_labels import training_label_counts
from genlab.models.gan.packing import pack_images
from genlab.models.latents import draw_latents, normal_latents
from genlab.nets.layers import orthogonal_regularization
from genlab.nets.stylegan2 import PathLengthPenalty


class GAN(GenerativeModule):
    """Generator G and discriminator D trained adversarially with the loss named by ``loss``.

    Per batch: one discriminator step; every ``n_critic``-th batch (so on distinct batches)
    also one generator step. G and D are picked by ``generator.arch``/``discriminator.arch``
    from a fixed table (dcgan, mlp, resnet, stylegan2); D sees every image, real or fake, in
    both steps through ``model.augment`` (DiffAugment or ADA, whose p is logged as
    ``train/ada_p`` and saved). ``forward(z)`` generates images in [-1, 1]. Counters
    ``d_steps``/``g_steps``/``skipped_g_steps`` key every schedule and survive resume.
    """

    config_class = GANConfig
    family = "gan"
    sample_options = frozenset({"truncation", "temperature", "labels", "use_ema"})
    loss_parts = {"discriminator": "train/loss_d", "generator": "train/loss_g"}
    syncs_own_gradients = True  # under GANDDPStrategy: all-reduces G or D grads before a step
    networks = ("generator", "discriminator")  # what model.compile / channels_last act on

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.automatic_optimization = False
        cfg = self.config
        num_classes = cfg.num_classes if cfg.conditional else None
        self.generator = build_generator(cfg, num_classes)
        self.discriminator = build_discriminator(cfg, num_classes)
        self.loss_fns = GAN_LOSSES[cfg.loss]
        self.augment = build_augment(cfg)  # its state (ADA's p) is in the state dict
        self.path_length = PathLengthPenalty() if cfg.pl_weight > 0 else None
        self.style_based = cfg.generator["arch"] == "stylegan2"  # truncation acts on w
        self._last_pl: torch.Tensor | None = None  # path-length penalty of this G step (logged)
        # lazy regularisers in their own optimizer steps ({"d": r1_every, "g": pl_every})
        self.lazy_reg_intervals = cfg.lazy_reg_intervals()
        self.generator_ema = None
        if cfg.ema_decay is not None or cfg.ema_kimg is not None:
            self._ema_fn = LerpEMA(cfg.ema_decay if cfg.ema_decay is not None else 0.0)
            self.generator_ema = AveragedModel(  # use_buffers=False: buffers copied from G
                self.generator,
                multi_avg_fn=self._ema_fn,
                use_buffers=cfg.ema_buffers == "average",
            )
            self.generator_ema.requires_grad_(False)
        if cfg.conditional and cfg.fake_labels == "dataset":  # filled in setup("fit"), saved
            self.register_buffer("fake_label_counts", torch.zeros(num_classes, dtype=torch.int64))
        else:
            self.fake_label_counts = None
        self.d_steps = 0  # discriminator steps = training batches seen
        self.g_steps = 0  # generator steps = trainer.global_step
        self.skipped_g_steps = 0  # generator steps an fp16 GradScaler skipped (inf/NaN grads)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, labels)

    def compile_unsupported_reason(self) -> str | None:
        """``model.compile`` and a penalty that differentiates twice (gradient penalty, R1,
        path length) do not mix: torch.compile's backward cannot build a graph itself."""
        cfg = self.config
        for key in ("gp_weight", "r1_gamma", "pl_weight"):
            if getattr(cfg, key) > 0:
                return (
                    f"model.{key}={getattr(cfg, key)} needs a double backward, which "
                    "torch.compile does not support"
                )
        return super().compile_unsupported_reason()

    # -- sampling (the GenerativeModule protocol) ---------------------------------------------
    def sample_latent(self, num_samples: int, generator: torch.Generator | None = None):
        """Training noise z (num_samples, latent_dim) on the module's device, from
        ``model.latent_distribution`` (N(0, I) or U[-1, 1]) on the CPU stream."""
        cfg = self.config
        z = draw_latents(num_samples, cfg.latent_dim, cfg.latent_distribution, generator)
        return z.to(self.device)

    def random_labels(self, num_samples: int, generator: torch.Generator | None = None):
        """Class labels (num_samples,) for a conditional GAN, else None: uniform, or with
        ``fake_labels: dataset`` (once the counts are filled) i.i.d. from the training
        frequencies."""
        if not self.config.conditional:
            return None
        counts = self.fake_label_counts
        if counts is not None and int(counts.sum()) > 0:
            weights = counts.detach().cpu().double()
            labels = torch.multinomial(weights, num_samples, replacement=True, generator=generator)
        else:
            labels = torch.randint(0, self.config.num_classes, (num_samples,), generator=generator)
        return labels.to(self.device)

    def draw_fake_labels(self, labels: torch.Tensor | None, num: int) -> torch.Tensor | None:
        """Labels (num,) of ``num`` training fakes (``model.fake_labels``): the first ``num``
        real ``labels`` (``real``; None when unconditional), else fresh draws of
        :meth:`random_labels` from the global (per-rank, checkpointed) torch stream."""
        if labels is None or self.config.fake_labels == "real":
            return labels if labels is None or num == labels.size(0) else labels[:num]
        counts = self.fake_label_counts
        if counts is not None and int(counts.sum()) == 0:
            raise ConfigError(
                "model.fake_labels",
                "dataset",
                "real or uniform here (the training label counts were never filled: they are "
                "counted in setup('fit') from the datamodule; fit with "
                "trainer.fit(model, datamodule=dm))",
            )
        return self.random_labels(num)

    def setup(self, stage: str) -> None:
        """Before fitting: the speed options, and with ``fake_labels: dataset`` the class
        counts of the training split (a resumed run then loads the checkpoint's)."""
        super().setup(stage)
        if stage == "fit" and self.fake_label_counts is not None:
            datamodule = getattr(self._attached_trainer(), "datamodule", None)
            counts = training_label_counts(datamodule, self.config.num_classes)
            self.fake_label_counts.copy_(counts.to(self.fake_label_counts.device))

    def latents(self, num_samples, generator=None, truncation=None, temperature=None, **_):
        """z (N, latent_dim) on the CPU from ``latent_distribution`` (N(0, I) or U[-1, 1]),
        truncated (|z| <= truncation, redrawn) and tempered when asked. A stylegan2 generator
        truncates w instead (in :meth:`generate_from_latents`), so z is left untruncated for it."""
        if self.style_based:
            truncation = None
        cfg = self.config
        return normal_latents(
            num_samples, cfg.latent_dim, generator, truncation, temperature, cfg.latent_distribution
        )

    def latent_traversal(
        self, num_directions, *, center="prior", num_centers=1, images=None, generator=None,
        num_samples=10_000, **options,
    ):  # fmt: skip
        """GANSpace directions (:func:`genlab.models.traversal.gan_traversal`): principal
        components of sampled z, or of w = mapping(z) for a stylegan2 generator; a conditional
        GAN keeps one class label per centre along its walk."""
        from genlab.models.traversal import gan_traversal

        return gan_traversal(
            self, num_directions, center, num_centers, images, generator, options, num_samples
        )

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's logits (B,) of images (B, C, H, W) in [-1, 1] after the training augmentation
        (``model.augment``; differentiable, so G's gradient flows through it); with
        ``model.pack`` = m, logits (B/m,) of the packed images (:func:`pack_images`)."""
        if self.augment is not None:
            images = self.augment(images)
        if self.config.pack > 1:  # PacGAN: (B, C, H, W) -> (B/m, m*C, H, W); unconditional
            return self.discriminator(pack_images(images, self.config.pack), None)
        return self.discriminator(images, labels)

    @torch.no_grad()
    def generate(
        self,
        num_samples: int,
        *,
        generator: torch.Generator | None = None,
        truncation: float | None = None,
        temperature: float | None = None,
        labels: torch.Tensor | None = None,
        use_ema: bool = True,
    ) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] from prior draws (truncation trick, temperature) and
        :meth:`random_labels` (conditional GAN) unless given; the EMA generator when enabled and
        ``use_ema``."""
        z = self.latents(num_samples, generator, truncation, temperature)
        if labels is None:
            labels = self.random_labels(num_samples, generator)
        return self.generate_from_latents(z, labels=labels, use_ema=use_ema, truncation=truncation)

    @torch.no_grad()
    def generate_from_latents(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        use_ema: bool = True,
        truncation: float | None = None,
        **_,
    ) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] from z (N, latent_dim) [and labels (N,)].

        ``truncation`` psi acts here only for a stylegan2 generator: w <- w_avg + psi (w -
        w_avg) (psi = 1: off); other generators truncate z in :meth:`latents`."""
        z = z.to(self.device)
        if labels is None:
            labels = self.random_labels(len(z))
        net = self.generator_ema.module if (use_ema and self.generator_ema) else self.generator
        options = {}
        if self.style_based and truncation is not None:
            if not isinstance(truncation, int | float) or not 0 < truncation <= 1:
                raise ConfigError("truncation", truncation, "null or psi in (0, 1] (stylegan2)")
            options["truncation"] = float(truncation)
        was_training = net.training
        net.eval()
        images = net(z, None if labels is None else labels.to(self.device), **options)
        net.train(was_training)
        return signed_to_unit(images)

    def schedule_step(self) -> int:
        """Generator steps (= ``trainer.global_step``): what schedules and max_steps count."""
        return int(self.g_steps)

    # -- training ----------------------------------------------------------------------------
    def configure_optimizers(self):
        cfg = self.config
        spec_d, spec_g = cfg.optimizer_d, cfg.optimizer_g
        if "d" in self.lazy_reg_intervals:  # lazy_reg=separate: lr * k/(k+1), betas ** k/(k+1)
            spec_d = lazy_reg_optimizer(spec_d, self.lazy_reg_intervals["d"])
        if "g" in self.lazy_reg_intervals:
            spec_g = lazy_reg_optimizer(spec_g, self.lazy_reg_intervals["g"])
        opt_d = build_optimizer(spec_d, self.discriminator.parameters())
        opt_g = build_optimizer(spec_g, self.generator.parameters())
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

    def discriminator_step(
        self, real: torch.Tensor, labels, fake: torch.Tensor | None = None, fake_labels=None
    ) -> dict[str, torch.Tensor]:
        """D losses on a real batch (B, C, H, W) in [-1, 1] and as many fakes (B, C, H, W):
        ``fake`` (detached) when given, else fresh ones; D sees both through
        :meth:`discriminate` (the augmentation), penalties included (ADA: R1 on the
        un-augmented reals through the augmentation, as stylegan2-ada-pytorch). R1 is in this
        loss on its lazy steps unless it is a separate step (:meth:`r1_loss`). The fakes carry
        ``fake_labels`` (given with ``fake``, else :meth:`draw_fake_labels`), the reals, the
        gradient penalty and R1 the real ``labels``."""
        cfg = self.config
        if fake is None:
            z = self.sample_latent(real.size(0))
            fake_labels = self.draw_fake_labels(labels, real.size(0))
            with torch.no_grad():
                fake = self.generator(z, fake_labels)
        elif fake_labels is None:
            fake_labels = labels
        terms = self.loss_fns.discriminator_terms(
            self.discriminate, real, fake, labels, fake_labels
        )
        loss_d, real_logits, fake_logits = (
            terms["loss_d"],
            terms["real_logits"],
            terms["fake_logits"],
        )
        out = {"loss_d": loss_d.detach()}
        if isinstance(self.augment, AdaptiveAugment):  # p follows r_t = E[sign(D(aug(real)))]
            self.augment.observe(real_logits)
            out["ada_p"] = self.augment.p.detach().clone()
            out["ada_rt"] = self.augment.rt.detach().clone()
        if cfg.gp_weight > 0:
            gp = gradient_penalty(self.discriminate, real, fake, labels)
            loss_d = loss_d + cfg.gp_weight * gp
            out["gp"] = gp.detach()
        if self._r1_turn() and "d" not in self.lazy_reg_intervals:  # fused into the D step
            r1_loss, out["r1"] = self.r1_loss(real, labels)
            loss_d = loss_d + r1_loss
        out["d_real"] = torch.sigmoid(real_logits).mean()
        out["d_fake"] = torch.sigmoid(fake_logits).mean()
        out["loss_d_total"] = loss_d
        return out

    def _r1_turn(self) -> bool:
        """This batch regularises D with R1 (lazy: every ``r1_every``-th; d_steps = batches)."""
        return self.config.r1_gamma > 0 and self.d_steps % self.config.r1_every == 0

    def _pl_turn(self) -> bool:
        """This generator step regularises the path length (every ``pl_every``-th)."""
        return self.path_length is not None and self.g_steps % self.config.pl_every == 0

    def r1_loss(self, real: torch.Tensor, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gamma/2 * r1_every * R1, R1 detached)`` on the reals (B, C, H, W) in [-1, 1]."""
        cfg = self.config
        # packed D: each packed input's squared norm sums its m images' (r1_penalty averages
        # over images), so x pack is the R1 of D on its own inputs
        r1 = r1_penalty(self.discriminate, real, labels) * cfg.pack
        return 0.5 * cfg.r1_gamma * cfg.r1_every * r1, r1.detach()

    def path_length_loss(self, batch_size: int, device: torch.device, labels) -> torch.Tensor:
        """``pl_weight * pl_every * penalty`` on ``batch_size // pl_batch_shrink`` fresh latents
        (fp32: the Jacobian-vector product is not loss-scaled under 16-mixed); logged as
        ``train/pl``."""
        cfg = self.config
        n = max(1, batch_size // cfg.pl_batch_shrink)
        z = self.sample_latent(n)
        pl_labels = self.draw_fake_labels(labels, n)  # real labels[:n] or fresh fake labels
        with torch.autocast(device_type=device.type, enabled=False):
            images, ws = self.generator(z, pl_labels, return_ws=True)
            penalty = self.path_length(images, ws).mean()
        self._last_pl = penalty.detach()
        return cfg.pl_weight * cfg.pl_every * penalty

    def generator_step(
        self, real: torch.Tensor, labels, fake: torch.Tensor | None = None, fake_labels=None
    ) -> torch.Tensor:
        """G loss of ``fake`` (B, C, H, W, still attached to G's graph) or else of fresh fakes;
        the loss object scores them (and, if relativistic, the real batch (B, C, H, W) in
        [-1, 1]) with D through the augmentation. Plus BigGAN's
        orthogonal regularisation of G (``ortho_reg``) and StyleGAN2's lazy path-length
        penalty (``pl_weight`` every ``pl_every`` generator steps, scaled by ``pl_every``) unless
        it is a separate step (:meth:`path_length_loss`). Fakes carry ``fake_labels`` (given
        with ``fake``, else :meth:`draw_fake_labels`), the reals ``labels``."""
        cfg = self.config
        if fake is None:
            z = self.sample_latent(real.size(0))
            fake_labels = self.draw_fake_labels(labels, real.size(0))
            fake = self.generator(z, fake_labels)
        elif fake_labels is None:
            fake_labels = labels
        terms = self.loss_fns.generator_terms(self.discriminate, real, fake, labels, fake_labels)
        loss = terms["loss_g"]
        if cfg.ortho_reg > 0:
            loss = loss + orthogonal_regularization(self.generator, cfg.ortho_reg).to(loss)
        if self._pl_turn() and "g" not in self.lazy_reg_intervals:  # fused into the G step
            loss = loss + self.path_length_loss(real.size(0), real.device, labels).to(loss)
        return loss

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
            optimizer_step_uncounted(self.trainer, optimizer)  # genlab.compat
        # GradScaler.update() lowers the scale exactly when the step was skipped.
        return scaler is None or scaler.get_scale() >= scale_before

    def training_step(self, batch, batch_idx):
        real = unit_to_signed(batch["image"])
        labels = self._labels(batch)
        opt_d, opt_g = self.optimizers()
        generator_turn = (self.d_steps + 1) % self.config.n_critic == 0  # this batch: D and G
        fake = fake_labels = None
        if self.config.reuse_fakes and generator_turn:  # one G forward serves both steps
            z = self.sample_latent(real.size(0))
            fake_labels = self.draw_fake_labels(labels, real.size(0))
            fake = self.generator(z, fake_labels)

        # the reused fakes' own labels, passed only when they are not the real ones
        own_labels = fake is not None and fake_labels is not labels
        reused = {"fake_labels": fake_labels} if own_labels else {}
        self.toggle_optimizer(opt_d)
        out_d = self.discriminator_step(
            real, labels, None if fake is None else fake.detach(), **reused
        )
        self._optimize(opt_d, out_d.pop("loss_d_total"), self.discriminator, counted=False)
        if "d" in self.lazy_reg_intervals and self._r1_turn():  # Dreg: R1 in its own step
            r1_loss, out_d["r1"] = self.r1_loss(real, labels)
            self._optimize(opt_d, r1_loss, self.discriminator, counted=False)
        self.untoggle_optimizer(opt_d)
        self.d_steps += 1

        loss_d = out_d.pop("loss_d")
        logs = {f"train/{k}": v for k, v in out_d.items()}
        if generator_turn:
            self.toggle_optimizer(opt_g)
            loss_g = self.generator_step(real, labels, fake, **reused)
            applied = self._optimize(opt_g, loss_g, self.generator, counted=True)
            if "g" in self.lazy_reg_intervals and self._pl_turn():  # Greg: its own step
                pl_loss = self.path_length_loss(real.size(0), real.device, labels)
                self._optimize(opt_g, pl_loss, self.generator, counted=False)
            self.untoggle_optimizer(opt_g)
            self.g_steps += 1
            self._after_generator_step(applied, real.size(0) * self.trainer.world_size)
            logs["train/loss_g"] = loss_g.detach()
            if self._last_pl is not None:
                logs["train/pl"] = self._last_pl
                self._last_pl = None
        # The forward passes above moved each rank's batch-norm statistics (and so the EMA's
        # buffers) on its own data: make them rank 0's again, so that checkpoints, validation,
        # sampling and the end of training see the same model on every rank.
        self.sync_buffers()
        logs["train/g_step"] = float(self.g_steps)
        logs["train/d_step"] = float(self.d_steps)
        if self.skipped_g_steps:
            logs["train/skipped_g_steps"] = float(self.skipped_g_steps)
        logs["train/loss_d"] = loss_d
        self.log_train_scalars(logs, prog_bar=("train/loss_d",))  # on the steps Lightning writes

    def ema_beta(self, global_batch: int) -> float:
        """Decay of the EMA update after generator step ``g_steps`` (counted already):
        ``ema_decay``, or with ``ema_kimg`` the half-life rule of :func:`ema_beta` for the
        ``n_critic * global_batch`` real images of this step after ``(d_steps - n_critic) *
        global_batch`` (the images D saw before this step's batches)."""
        cfg = self.config
        if cfg.ema_kimg is None:
            return cfg.ema_decay
        step_images = cfg.n_critic * global_batch
        images_seen = max(self.d_steps - cfg.n_critic, 0) * global_batch
        return ema_beta(cfg.ema_kimg, cfg.ema_rampup, images_seen, step_images)

    def _after_generator_step(self, applied: bool, global_batch: int = 1) -> None:
        """LR schedulers (both) and the EMA advance once per *applied* generator step;
        ``global_batch``: this step's batch size over all processes (``ema_kimg``)."""
        if not applied:  # fp16 scaler skipped the step: weights unchanged, schedules wait
            self.skipped_g_steps += 1
            return
        schedulers = self.lr_schedulers() or []
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
        if self.generator_ema is not None:
            if self.g_steps <= self.config.ema_start:
                self.generator_ema.n_averaged.zero_()  # warm-up: the EMA copies G
            self._ema_fn.beta = self.ema_beta(global_batch)
            self.generator_ema.update_parameters(self.generator)

    def validation_step(self, batch, batch_idx):
        """Discriminator scores on held-out reals and fresh fakes (cheap health signal)."""
        real = unit_to_signed(batch["image"])
        labels = self._labels(batch)
        fake = unit_to_signed(self.generate(real.size(0), labels=labels))
        pack = self.config.pack
        if pack > 1:  # packed D, unconditional; a last partial pack is left out
            real, fake = (pack_images(x, pack, drop_remainder=True) for x in (real, fake))
            labels = None
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

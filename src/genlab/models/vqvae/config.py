"""Typed configuration of the VQ-VAE family (first stage) and its learned prior (second stage).

Plain data only: this module imports no torch, so a bad value is refused before any heavy
import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genlab.checks.values import (
    check_instance_shapes,
    check_int,
    check_non_negative,
    check_optimizer,
    check_scheduler,
    check_speed_options,
    number,
    positive_int,
    require,
)

DOWNSAMPLING = 4  # the encoder (genlab.models.vqvae.nets) halves the side twice
RECON_SCALES = ("none", "data_variance")  # what divides the reconstruction MSE


def _adam() -> dict[str, Any]:
    return {"_target_": "torch.optim.Adam", "lr": 2e-4}


def _check_common(cfg) -> None:
    check_instance_shapes(cfg)  # a mapping where a value belongs, or the reverse: one line
    require(cfg.channels in (1, 3), "model.channels", cfg.channels, "1 or 3")
    ok = positive_int(cfg.image_size) and cfg.image_size % DOWNSAMPLING == 0
    require(ok, "model.image_size", cfg.image_size, f"a multiple of {DOWNSAMPLING}")
    check_optimizer("model.optimizer", cfg.optimizer)
    check_scheduler("model.lr_scheduler", cfg.lr_scheduler)
    check_speed_options(cfg)


@dataclass
class VQVAEConfig:
    """Every field of ``conf/model/vqvae.yaml``.

    Attributes:
        image_size: side of the square images, a multiple of 4 (from ``${data.image_size}``).
        channels: 1 or 3 (from ``${data.channels}``).
        num_classes: unused (kept so data configs compose).
        num_embeddings: K, codebook entries.
        embedding_dim: D, size of each code vector.
        hidden_channels: width of the encoder/decoder.
        num_residual_blocks: residual blocks in the encoder and in the decoder.
        commitment_cost: beta of the commitment loss (van den Oord et al.: 0.25).
        ema_decay: gamma of the EMA codebook update (0.99).
        ema_epsilon: Laplace smoothing of the EMA cluster sizes.
        dead_code_threshold: codes whose EMA cluster size falls below this are restarted at a
            random encoder output of the batch (0 = never).
        recon_scale: ``none`` (the loss's reconstruction term is the MSE of the [0, 1]
            pixels) | ``data_variance`` (the MSE divided by ``data_variance``, as the Sonnet
            VQ-VAE example of van den Oord et al.'s model: ``mean((x_recon - x)^2) /
            data_variance``; the commitment term is not divided).
        data_variance: with ``recon_scale=data_variance``: the variance of the training pixel
            values in [0, 1] (all pixels and channels pooled, the example's
            ``np.var(train_images / 255.0)``); ``None`` = computed once from the training
            split when fitting starts, then kept in the checkpoint (``hyper_parameters`` and the
            ``data_variance`` buffer). Must be ``None`` with ``recon_scale=none``.
        optimizer / lr_scheduler: as for the VAE (``lr_scheduler`` stepped per epoch).
        compile: ``torch.compile`` the networks (a bool; false = eager).
        channels_last: ``channels_last`` memory format for the conv nets (a bool).
    """

    image_size: int
    channels: int
    num_classes: int | None = None
    num_embeddings: int = 128
    embedding_dim: int = 32
    hidden_channels: int = 64
    num_residual_blocks: int = 2
    commitment_cost: float = 0.25
    ema_decay: float = 0.99
    ema_epsilon: float = 1e-5
    dead_code_threshold: float = 1.0
    recon_scale: str = "none"
    data_variance: float | None = None
    optimizer: dict[str, Any] = field(default_factory=_adam)
    lr_scheduler: dict[str, Any] | None = None
    compile: bool = False
    channels_last: bool = False

    def __post_init__(self):
        _check_common(self)
        for key in ("num_embeddings", "embedding_dim", "hidden_channels"):
            check_int(f"model.{key}", getattr(self, key))
        check_int("model.num_residual_blocks", self.num_residual_blocks, 0)
        ok = self.hidden_channels >= 2
        require(ok, "model.hidden_channels", self.hidden_channels, "an integer >= 2")
        for key in ("commitment_cost", "ema_epsilon", "dead_code_threshold"):
            check_non_negative(f"model.{key}", getattr(self, key))
        ok = number(self.ema_decay) and 0 <= self.ema_decay < 1
        require(ok, "model.ema_decay", self.ema_decay, "a number in [0, 1)")
        ok = self.recon_scale in RECON_SCALES
        require(ok, "model.recon_scale", self.recon_scale, f"one of {list(RECON_SCALES)}")
        v = self.data_variance
        if self.recon_scale == "none":
            require(v is None, "model.data_variance", v, "null with model.recon_scale=none")
        else:
            ok = v is None or (number(v) and v > 0)
            what = "null (computed from the training data when fitting starts) or a number > 0"
            require(ok, "model.data_variance", v, what)


@dataclass
class VQVAEPriorConfig:
    """Every field of ``conf/model/vqvae_prior.yaml``: a gated PixelCNN over the code grid of a
    frozen first-stage VQ-VAE.

    Attributes:
        image_size / channels / num_classes: from the data config; must match the first stage.
        vqvae_ckpt: path of the first-stage (``vqvae`` family) checkpoint; read once, with
            ``torch.load(weights_only=True)``, when ``first_stage`` is not given.
        first_stage: the first stage's hyperparameters (filled in from ``vqvae_ckpt``, stored
            in this model's checkpoint, so sampling needs no other file; its weights are in
            this model's ``state_dict``). Leave null.
        hidden_channels: width of the PixelCNN.
        num_layers: gated masked-convolution layers (the first is the masked "A" layer).
        kernel_size: odd kernel size of the masked convolutions.
        optimizer / lr_scheduler: of the PixelCNN (the first stage stays frozen).
        compile: ``torch.compile`` the networks (a bool; false = eager).
        channels_last: ``channels_last`` memory format for the conv nets (a bool).
    """

    image_size: int
    channels: int
    num_classes: int | None = None
    vqvae_ckpt: str | None = None
    first_stage: dict[str, Any] | None = None
    hidden_channels: int = 64
    num_layers: int = 8
    kernel_size: int = 3
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "torch.optim.Adam", "lr": 1e-3}
    )
    lr_scheduler: dict[str, Any] | None = None
    compile: bool = False
    channels_last: bool = False

    def __post_init__(self):
        _check_common(self)
        ok = self.first_stage is not None or isinstance(self.vqvae_ckpt, str)
        require(ok, "model.vqvae_ckpt", self.vqvae_ckpt, "the path of a vqvae checkpoint")
        ok = self.first_stage is None or isinstance(self.first_stage, dict)
        require(ok, "model.first_stage", self.first_stage, "null (filled from model.vqvae_ckpt)")
        for key in ("hidden_channels", "num_layers"):
            check_int(f"model.{key}", getattr(self, key))
        ok = positive_int(self.kernel_size) and self.kernel_size % 2 == 1
        require(ok, "model.kernel_size", self.kernel_size, "an odd integer >= 1")

"""Second stage of the VQ-VAE: a gated PixelCNN prior over the code grid of a frozen first stage
(van den Oord et al. 2017, section 4.2: "we train a PixelCNN over the discrete latents").

    p(c) = prod_{i in raster order} p(c_i | c_<i),    L = -log p(c(x)) = sum_i CE(c_i)

where c(x) are the frozen first stage's nearest codes of a training image. ``generate`` samples
c autoregressively (one PixelCNN pass per code position) and decodes it with the first stage.

The first stage comes from ``vqvae_ckpt``, read with
:func:`genlab.models.registry.build_model_from_checkpoint` (``torch.load(weights_only=True)``,
the class looked up by the checkpoint's registered family name, which must be ``vqvae``); its
hyperparameters are then kept in this model's own (``first_stage``) and its weights in this
model's ``state_dict``, so this model's checkpoints rebuild without the first-stage file.
A checkpoint's ``vqvae_ckpt`` is never read (:attr:`VQVAEPrior.path_hparams`): rebuilt from a
checkpoint, the first stage is the one stored inside it, and a checkpoint without it is refused.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.checks.errors import ConfigError
from genlab.models.base import GenerativeModule
from genlab.models.registry import build_model_from_checkpoint
from genlab.models.vqvae.config import VQVAEPriorConfig
from genlab.models.vqvae.module import VQVAE, configure_optimizers
from genlab.nets.pixelcnn import GatedPixelCNN
from genlab.runs.checkpoints import load_checkpoint

KEY = "model.vqvae_ckpt"
# first-stage fields that only concern its own training (callable specs are not stored)
TRAINING_ONLY = ("optimizer", "lr_scheduler")


def load_first_stage(path: str) -> VQVAE:
    """The frozen VQ-VAE stored at ``path``; ConfigError naming ``model.vqvae_ckpt`` unless it
    is a safely loadable checkpoint of the ``vqvae`` family."""
    family = load_checkpoint(path, KEY)["genlab"].get("family")
    if family != VQVAE.family:
        raise ConfigError(KEY, path, f"a {VQVAE.family} checkpoint (this one is a {family})")
    model = build_model_from_checkpoint(path, KEY)
    assert isinstance(model, VQVAE)
    return model


class VQVAEPrior(GenerativeModule):
    """PixelCNN prior over a frozen VQ-VAE's codes (module docstring for the equations).

    Logged: ``train/loss`` and ``val/loss`` (nats per code position), ``val/nll_codes`` (nats
    per image: the code grid's negative log-likelihood), ``val/bits_per_code``."""

    config_class = VQVAEPriorConfig
    family = "vqvae_prior"
    networks = ("pixelcnn",)  # model.compile / channels_last (the frozen first stage stays)
    sample_options = frozenset({"temperature"})
    supports_reconstruction = True
    #: path hyperparameter -> the stored one that replaces it when rebuilt from a checkpoint
    #: (:func:`genlab.models.registry.without_stored_paths`: the stored path is never read).
    path_hparams = {"vqvae_ckpt": "first_stage"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        cfg = self.config
        if cfg.first_stage is None:
            first = load_first_stage(cfg.vqvae_ckpt)
            stored = {k: v for k, v in first.hparams.items() if k not in TRAINING_ONLY}
            self.config = dataclasses.replace(cfg, first_stage=stored)
            self.save_hyperparameters(dataclasses.asdict(self.config), logger=False)
        else:
            first = VQVAE(**cfg.first_stage)  # weights: from this model's state_dict
        shape = (first.config.image_size, first.config.channels)
        if shape != (cfg.image_size, cfg.channels):
            raise ConfigError(
                "model.image_size",
                f"{cfg.image_size} px x {cfg.channels} channel(s)",
                f"the first stage's {shape[0]} px x {shape[1]} channel(s) (data config)",
            )
        first.requires_grad_(False)
        self.first_stage = first.eval()
        self.pixelcnn = GatedPixelCNN(
            first.config.num_embeddings, cfg.hidden_channels, cfg.num_layers, cfg.kernel_size
        )

    def train(self, mode: bool = True):
        """Training mode for the PixelCNN only: the first stage stays frozen in eval mode (no
        EMA codebook updates)."""
        super().train(mode)
        self.first_stage.eval()
        return self

    def code_nll(self, codes: Tensor) -> Tensor:
        """-log p(c) per image (B,) in nats for codes (B, h, w)."""
        logits = self.pixelcnn(codes).float()
        return F.cross_entropy(logits, codes, reduction="none").flatten(1).sum(1)

    # -- the GenerativeModule protocol --------------------------------------------------------
    @torch.no_grad()
    def sample_codes(
        self, num_samples: int, generator: torch.Generator | None = None, temperature=None
    ) -> Tensor:
        """Codes (N, h, w) drawn in raster order from p(c_i | c_<i) (logits / temperature);
        the categorical draws use the CPU ``generator``."""
        if temperature is not None and (
            not isinstance(temperature, int | float) or temperature <= 0
        ):
            raise ConfigError("temperature", temperature, "a number > 0")
        h, w = self.first_stage.code_grid
        codes = torch.zeros(num_samples, h, w, dtype=torch.long, device=self.device)
        for i in range(h):
            for j in range(w):
                logits = self.pixelcnn(codes)[:, :, i, j].float().cpu()
                if temperature is not None:
                    logits = logits / temperature
                probs = torch.softmax(logits.double(), dim=1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0].to(
                    self.device
                )
        return codes

    @torch.no_grad()
    def generate(self, num_samples, *, generator=None, temperature=None) -> Tensor:
        """New images (N, C, H, W) in [0, 1]: codes from the PixelCNN, decoded by the first
        stage."""
        return self.first_stage.decode_codes(self.sample_codes(num_samples, generator, temperature))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """The first stage's reconstructions (B, C, H, W) in [0, 1]."""
        return self.first_stage.reconstruct(x)

    @torch.no_grad()
    def evaluation_terms(self, datamodule, settings: dict) -> dict:
        """The first stage's reconstruction terms plus the prior's ``nll_codes`` (nats per
        image of the code grid) and ``bits_per_code``."""
        from genlab.data.iteration import iterate_images

        out = self.first_stage.evaluation_terms(datamodule, settings)
        prefix = settings["prefix"]
        total, count = 0.0, 0
        for x in iterate_images(
            datamodule, settings["split"], settings["num_images"], settings["batch_size"]
        ):
            total += self.code_nll(self.first_stage.encode_codes(x)).double().sum().item()
            count += x.shape[0]
        positions = math.prod(self.first_stage.code_grid)
        out[f"{prefix}nll_codes"] = total / max(count, 1)
        out[f"{prefix}bits_per_code"] = total / max(count, 1) / positions / math.log(2)
        return out

    # -- training ---------------------------------------------------------------------------
    def configure_optimizers(self):
        return configure_optimizers(self, self.pixelcnn.parameters())

    def training_step(self, batch, batch_idx):
        codes = self.first_stage.encode_codes(batch["image"])
        loss = self.code_nll(codes).mean() / codes[0].numel()
        self.log_train_scalars({"train/loss": loss}, prog_bar=("train/loss",))
        return loss

    def validation_step(self, batch, batch_idx):
        codes = self.first_stage.encode_codes(batch["image"])
        nll = self.code_nll(codes).mean()
        positions = codes[0].numel()
        self.log("val/loss", nll / positions, prog_bar=True, sync_dist=True)
        self.log("val/nll_codes", nll, sync_dist=True)
        self.log("val/bits_per_code", nll / positions / math.log(2), sync_dist=True)

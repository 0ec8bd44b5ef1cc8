"""VQ-VAE first stage (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete
Representation Learning").

    z_e = E(x) (B, D, h, w);  k = argmin_j ||z_e - e_j||^2 per position;  z_q = e_k
    x_hat = sigmoid(Dec(z_e + sg[z_q - z_e]))            (straight-through, eq. 1-2)
    L = ||x - x_hat||^2 + beta ||z_e - sg[z_q]||^2      (eq. 3; the codebook term is replaced
                                                          by the EMA update, appendix A.1)

The reconstruction term is the mean squared error per element of images in [0, 1], divided by
the variance of the training pixels with ``recon_scale=data_variance`` (the Sonnet VQ-VAE
example, github.com/google-deepmind/sonnet ``examples/vqvae_example.ipynb``:
``recon_error = mean((x_recon - x)^2) / data_variance``, ``data_variance =
np.var(train_images / 255.0)``; the commitment term is not divided). That sets the
reconstruction/commitment balance the reference's beta = 0.25 was tuned for: on CIFAR-10 the
variance is about 0.063 (the example prints 0.0634), so the plain MSE would weigh the
reconstruction about 16x less. The codebook is :class:`~genlab.models.vqvae.quantizer.EMAVectorQuantizer`.
New images need a learned prior over the code grid: train ``model=vqvae_prior`` on this
checkpoint. This module's own ``generate`` decodes codes drawn independently per position from
the codebook's usage frequencies (a unigram prior: shows what the codes hold, not a model of
images).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import hydra.utils
import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.checks.errors import ConfigError
from genlab.data.iteration import iterate_images
from genlab.data.tensor_dataset import ImageBatch
from genlab.models.base import GenerativeModule, build_optimizer
from genlab.models.vqvae.config import DOWNSAMPLING, VQVAEConfig
from genlab.models.vqvae.nets import VQDecoder, VQEncoder
from genlab.models.vqvae.quantizer import EMAVectorQuantizer


def configure_optimizers(module, parameters):
    """Optimizer (+ per-epoch LR scheduler) of ``module.config`` over ``parameters``."""
    optimizer = build_optimizer(module.config.optimizer, parameters)
    spec = module.config.lr_scheduler
    if spec is None:
        return optimizer
    scheduler = hydra.utils.instantiate({**spec, "_partial_": True})(optimizer)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


log = logging.getLogger(__name__)


_LEVELS = torch.arange(256, dtype=torch.float64) / 255.0  # the 8-bit pixel values in [0, 1]


def _batch_moments(images: Tensor) -> tuple[int, float, float]:
    """(count, mean, sum of squared deviations) of the pixel values of ``images`` in [0, 1]
    (uint8: i / 255, counted exactly by value; float: as they are), in fp64."""
    if images.dtype == torch.uint8:
        counts = torch.bincount(images.flatten().long(), minlength=256).double()
        n = int(counts.sum().item())
        mean = float((counts * _LEVELS).sum() / n)
        return n, mean, float((counts * (_LEVELS - mean).pow(2)).sum())
    x = images.double()
    mean = x.mean().item()
    return x.numel(), mean, (x - mean).pow(2).sum().item()


def training_data_variance(datamodule, batch_size: int = 1024) -> tuple[float, int]:
    """(variance, number of images) of the pixel values in [0, 1] of ``datamodule``'s
    training split as stored (before any augmentation or dynamic binarisation), every pixel
    and channel pooled: the population variance, as the Sonnet example's
    ``np.var(train_images / 255.0)``. Batches merge by Chan et al.'s pairwise update, in fp64;
    8-bit images are counted by value (exact and fast)."""
    dataset = datamodule.dataset("train")
    count, mean, m2 = 0, 0.0, 0.0
    for start in range(0, len(dataset), batch_size):
        indices = list(range(start, min(start + batch_size, len(dataset))))
        batch = dataset.__getitems__(indices) if hasattr(dataset, "__getitems__") else None
        if isinstance(batch, ImageBatch):  # genlab's in-memory splits: one indexing operation
            images = batch.images
        else:
            images = torch.stack([torch.as_tensor(dataset[i][0]) for i in indices])
        n, batch_mean, batch_m2 = _batch_moments(images)
        delta, total = batch_mean - mean, count + n
        mean += delta * n / total
        m2 += batch_m2 + delta * delta * count * n / total
        count = total
    if count == 0:
        raise ConfigError("model.data_variance", None, "a number (the training split is empty)")
    return m2 / count, len(dataset)


def psnr(mse: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB of images in [0, 1]: 10 log10(1 / mse)."""
    return 10.0 * torch.log10(1.0 / mse.clamp(min=1e-12))


class VQVAE(GenerativeModule):
    """VQ-VAE with an EMA codebook, commitment loss and dead-code restarts (module docstring).

    Logged: ``train/{loss,recon_mse,recon_loss,commitment,perplexity,codebook_usage,
    restarted_codes}`` (``recon_loss``: the loss's reconstruction term, ``recon_mse`` divided
    by the data variance with ``recon_scale=data_variance``),
    ``val/{loss,recon_mse,psnr,perplexity,codebook_usage}``; ``genlab.eval`` adds
    ``test/{recon_mse,psnr,perplexity,codebook_usage}``.

    With ``recon_scale=data_variance`` the variance is the ``data_variance`` buffer (in the
    checkpoint): ``model.data_variance`` when given, else computed once from the training split
    at the start of fitting (:meth:`on_fit_start`; a resumed run keeps the checkpoint's) and
    then also written into the checkpoint's ``hyper_parameters``.
    """

    config_class = VQVAEConfig
    family = "vqvae"
    networks = ("encoder", "decoder")  # model.compile / channels_last (not the codebook)
    supports_reconstruction = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        cfg = self.config
        args = (cfg.channels, cfg.hidden_channels, cfg.num_residual_blocks, cfg.embedding_dim)
        self.encoder = VQEncoder(*args)
        self.decoder = VQDecoder(*args)
        self.quantizer = EMAVectorQuantizer(
            cfg.num_embeddings,
            cfg.embedding_dim,
            cfg.ema_decay,
            cfg.ema_epsilon,
            cfg.dead_code_threshold,
        )
        self._variance_checked = cfg.recon_scale == "none"
        if cfg.recon_scale == "data_variance":
            known = cfg.data_variance is not None
            value = float(cfg.data_variance) if known else math.nan
            self.register_buffer("data_variance", torch.tensor(value, dtype=torch.float64))

    @property
    def code_grid(self) -> tuple[int, int]:
        """(h, w) of the code grid."""
        side = self.config.image_size // DOWNSAMPLING
        return side, side

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """x (B, C, H, W) in [0, 1] -> the quantiser's outputs plus ``recon`` (B, C, H, W)."""
        out = self.quantizer(self.encoder(x).float())
        out["recon"] = torch.sigmoid(self.decoder(out["z_q"]).float())
        return out

    def recon_loss(self, recon_mse: Tensor) -> Tensor:
        """The loss's reconstruction term: ``recon_mse``, divided by the data variance with
        ``recon_scale=data_variance``."""
        if self.config.recon_scale == "none":
            return recon_mse
        if not self._variance_checked:  # one host sync per model, not per step
            if math.isnan(float(self.data_variance)):
                raise ConfigError(
                    "model.data_variance",
                    None,
                    "a number when the model runs outside genlab.train's fitting (fitting "
                    "computes it from the training split first)",
                )
            self._variance_checked = True
        return recon_mse / self.data_variance.to(recon_mse.dtype)

    def on_fit_start(self) -> None:
        """``recon_scale=data_variance`` without a value (given or restored from the resumed
        checkpoint): the variance of the training split's pixels, computed on global rank 0
        and broadcast, stored in the buffer and the checkpoint's ``hyper_parameters``."""
        if self.config.recon_scale != "data_variance":
            return
        if not math.isnan(float(self.data_variance)):
            value = float(self.data_variance)
        else:
            trainer = self.trainer
            datamodule = getattr(trainer, "datamodule", None)
            if datamodule is None:
                raise ConfigError(
                    "model.data_variance", None, "a number when fitting without a datamodule"
                )
            value, images = (
                training_data_variance(datamodule) if trainer.is_global_zero else (0.0, 0)
            )
            value = float(trainer.strategy.broadcast(value, src=0))
            if trainer.is_global_zero:
                log.info(
                    f"model.data_variance={value:.6g}: the variance of the pixel values of the "
                    f"{images} training images; the reconstruction MSE is divided by it"
                )
            self.data_variance.fill_(value)
        self._variance_checked = True
        self.config = dataclasses.replace(self.config, data_variance=value)
        self.hparams["data_variance"] = value  # in every checkpoint's hyper_parameters

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming (Lightning calls this before loading the weights) a checkpoint written
        without the data variance, i.e. trained on the plain MSE, into a model that divides by
        it would change the objective mid-run: refused, naming the setting that resumes it."""
        state = checkpoint.get("state_dict") or {}
        if self.config.recon_scale == "data_variance" and "data_variance" not in state:
            raise ConfigError(
                "model.recon_scale",
                "data_variance",
                "none to resume this checkpoint: it was trained on the plain MSE (written before "
                "model=vqvae divided it by the data variance)",
            )
        super().on_load_checkpoint(checkpoint)

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        out = self(x)
        recon_mse = F.mse_loss(out["recon"], x.float())
        recon_loss = self.recon_loss(recon_mse)
        return {
            "loss": recon_loss + self.config.commitment_cost * out["commitment"],
            "recon_mse": recon_mse,
            "recon_loss": recon_loss,
            "commitment": out["commitment"],
            "perplexity": out["perplexity"],
            "codebook_usage": out["usage"],
            "restarted_codes": out["restarted"],
        }

    # -- codes ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_codes(self, x: Tensor) -> Tensor:
        """Code indices (B, h, w) of images x (B, C, H, W) in [0, 1] (no EMA update)."""
        z_e = self.encoder(x.to(self.device)).float()
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        return self.quantizer.nearest_codes(flat).view(b, h, w)

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Images (B, C, H, W) in [0, 1] of code indices (B, h, w)."""
        z_q = self.quantizer.lookup(codes.to(self.device))
        return torch.sigmoid(self.decoder(z_q).float())

    # -- the GenerativeModule protocol --------------------------------------------------------
    @torch.no_grad()
    def generate(self, num_samples: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Codes drawn independently per position from the EMA code-usage frequencies, decoded
        (N, C, H, W) in [0, 1]; the learned prior is ``model=vqvae_prior``."""
        usage = self.quantizer.cluster_size.detach().float().cpu().clamp(min=0)
        h, w = self.code_grid
        codes = torch.multinomial(usage, num_samples * h * w, replacement=True, generator=generator)
        return self.decode_codes(codes.view(num_samples, h, w))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Reconstructions (B, C, H, W) in [0, 1] through the nearest codes."""
        return self.decode_codes(self.encode_codes(x))

    @torch.no_grad()
    def evaluation_terms(self, datamodule, settings: dict) -> dict:
        """Mean per-image reconstruction MSE and PSNR (dB) over ``settings["split"]``, and the
        perplexity and usage of the codes over the whole split."""
        prefix, device = settings["prefix"], settings["device"]
        batches = iterate_images(
            datamodule, settings["split"], settings["num_images"], settings["batch_size"]
        )
        mse_sum, psnr_sum, count = 0.0, 0.0, 0
        counts = torch.zeros(self.config.num_embeddings, dtype=torch.float64)
        for x in batches:
            x = x.to(device)
            codes = self.encode_codes(x)
            mse = (self.decode_codes(codes) - x).pow(2).flatten(1).mean(1).double()
            mse_sum += mse.sum().item()
            psnr_sum += psnr(mse).sum().item()
            count += x.shape[0]
            counts += torch.bincount(codes.flatten().cpu(), minlength=counts.numel()).double()
        frequencies = counts / counts.sum().clamp(min=1)
        entropy = -(frequencies * frequencies.clamp(min=1e-300).log()).sum().item()
        return {
            f"{prefix}recon_mse": mse_sum / max(count, 1),
            f"{prefix}psnr": psnr_sum / max(count, 1),
            f"{prefix}perplexity": math.exp(entropy),
            f"{prefix}codebook_usage": float((counts > 0).double().mean()),
            "num_images": count,
        }

    # -- training ---------------------------------------------------------------------------
    def configure_optimizers(self):
        return configure_optimizers(self, self.parameters())

    def training_step(self, batch, batch_idx):
        out = self.loss_terms(batch["image"])
        logs = {f"train/{k}": v for k, v in out.items()}
        self.log_train_scalars(logs, prog_bar=("train/loss",))  # on the steps Lightning writes
        return out["loss"]

    def validation_step(self, batch, batch_idx):
        x = batch["image"].float()
        out = self(x)
        mse = (out["recon"] - x).pow(2).flatten(1).mean(1)
        logs = {
            "val/recon_mse": mse.mean(),
            "val/psnr": psnr(mse).mean(),
            "val/perplexity": out["perplexity"],
            "val/codebook_usage": out["usage"],
        }
        self.log_dict(logs, sync_dist=True)
        loss = self.recon_loss(mse.mean()) + self.config.commitment_cost * out["commitment"]
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)

"""VQ-VAE first stage (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete
Representation Learning").

    z_e = E(x) (B, D, h, w);  k = argmin_j ||z_e - e_j||^2 per position;  z_q = e_k
    x_hat = sigmoid(Dec(z_e + sg[z_q - z_e]))            (straight-through, eq. 1-2)
    L = ||x - x_hat||^2 + beta ||z_e - sg[z_q]||^2      (eq. 3; the codebook term is replaced
                                                          by the EMA update, appendix A.1)

Reconstruction is the mean squared error per element of images in [0, 1] (the paper's MSE
objective). The codebook is :class:`~genlab.models.vqvae.quantizer.EMAVectorQuantizer`.
New images need a learned prior over the code grid: train ``model=vqvae_prior`` on this
checkpoint. This module's own ``generate`` decodes codes drawn independently per position from
the codebook's usage frequencies (a unigram prior: shows what the codes hold, not a model of
images).
"""

from __future__ import annotations

import math

import hydra.utils
import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.data.iteration import iterate_images
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


def psnr(mse: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB of images in [0, 1]: 10 log10(1 / mse)."""
    return 10.0 * torch.log10(1.0 / mse.clamp(min=1e-12))


class VQVAE(GenerativeModule):
    """VQ-VAE with an EMA codebook, commitment loss and dead-code restarts (module docstring).

    Logged: ``train/{loss,recon_mse,commitment,perplexity,codebook_usage,restarted_codes}``,
    ``val/{loss,recon_mse,psnr,perplexity,codebook_usage}``; ``genlab.eval`` adds
    ``test/{recon_mse,psnr,perplexity,codebook_usage}``.
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

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        out = self(x)
        recon_mse = F.mse_loss(out["recon"], x.float())
        return {
            "loss": recon_mse + self.config.commitment_cost * out["commitment"],
            "recon_mse": recon_mse,
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
        loss = mse.mean() + self.config.commitment_cost * out["commitment"]
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)

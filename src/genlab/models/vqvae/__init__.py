"""VQ-VAE family: the first stage (``vqvae``) and its learned PixelCNN prior (``vqvae_prior``)."""

from genlab.models.vqvae.config import VQVAEConfig, VQVAEPriorConfig
from genlab.models.vqvae.module import VQVAE
from genlab.models.vqvae.prior import VQVAEPrior

__all__ = ["VQVAE", "VQVAEConfig", "VQVAEPrior", "VQVAEPriorConfig"]

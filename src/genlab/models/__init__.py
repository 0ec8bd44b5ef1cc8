"""LightningModules, one folder per model family."""

from genlab.models.base import GenerativeModule
from genlab.models.gan import GAN, GANConfig
from genlab.models.vae import VAE, VAEConfig

MODEL_CLASSES = {"GAN": GAN, "VAE": VAE}

__all__ = ["GAN", "GANConfig", "VAE", "VAEConfig", "GenerativeModule", "MODEL_CLASSES"]

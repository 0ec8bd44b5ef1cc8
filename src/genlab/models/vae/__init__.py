from genlab.models.vae.config import VAEConfig
from genlab.models.vae.module import VAE

__all__ = ["VAE", "VAEConfig"]

from genlab.models.gan.config import GANConfig
from genlab.models.gan.module import GAN

__all__ = ["GAN", "GANConfig"]

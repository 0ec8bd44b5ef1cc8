from genlab.models.vae.config import VAEConfig
from genlab.models.vae.hierarchical import HierarchicalVAE, HierarchicalVAEConfig
from genlab.models.vae.ladder import LadderVAE, LadderVAEConfig
from genlab.models.vae.module import VAE

__all__ = [
    "VAE",
    "VAEConfig",
    "HierarchicalVAE",
    "HierarchicalVAEConfig",
    "LadderVAE",
    "LadderVAEConfig",
]

"""LightningModules, one folder per model family.

Every name below loads its module on first use: importing a family's torch-free config
(``genlab.models.gan.config`` ...) or :mod:`genlab.models.registry` imports neither torch nor
Lightning, so config errors are reported before any heavy import. Families by registered name:
:mod:`genlab.models.registry`.
"""

from __future__ import annotations

from genlab.lazy_exports import lazy_exports

_LAZY = {
    "GenerativeModule": "genlab.models.base",
    "GAN": "genlab.models.gan.module",
    "GANConfig": "genlab.models.gan.config",
    "VAE": "genlab.models.vae.module",
    "VAEConfig": "genlab.models.vae.config",
}

__all__ = ["GAN", "GANConfig", "VAE", "VAEConfig", "GenerativeModule"]

__getattr__ = lazy_exports(__name__, _LAZY)

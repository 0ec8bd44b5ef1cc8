"""VQ-VAE family: the first stage (``vqvae``) and its learned PixelCNN prior (``vqvae_prior``).
The configs (:mod:`genlab.models.vqvae.config`) import no torch; the module classes load
their modules (torch, Lightning) on first use, so checking a config stays light."""

from __future__ import annotations

from genlab.lazy_exports import lazy_exports

_LAZY = {
    "VQVAE": "genlab.models.vqvae.module",
    "VQVAEConfig": "genlab.models.vqvae.config",
    "VQVAEPrior": "genlab.models.vqvae.prior",
    "VQVAEPriorConfig": "genlab.models.vqvae.config",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)

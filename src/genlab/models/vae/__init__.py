"""VAE family: the single-latent VAE, the L-layer hierarchical VAE, Sønderby et al.'s Ladder
VAE and the NVAE/VDVAE-style top-down VAE, and
β-TCVAE and FactorVAE for disentanglement. The configs (:mod:`genlab.models.vae.config`)
import no torch; each module class loads its module (torch, Lightning) on first use, so
checking a config stays light."""

from __future__ import annotations

from genlab.lazy_exports import lazy_exports

_LAZY = {
    "VAE": "genlab.models.vae.module",
    "VAEConfig": "genlab.models.vae.config",
    "HierarchicalVAE": "genlab.models.vae.hierarchical",
    "HierarchicalVAEConfig": "genlab.models.vae.config",
    "LadderVAE": "genlab.models.vae.ladder",
    "LadderVAEConfig": "genlab.models.vae.config",
    "TopDownVAE": "genlab.models.vae.topdown",
    "TopDownVAEConfig": "genlab.models.vae.config",
    "BetaTCVAE": "genlab.models.vae.disentangle",
    "BetaTCVAEConfig": "genlab.models.vae.disentangle_config",
    "FactorVAE": "genlab.models.vae.disentangle",
    "FactorVAEConfig": "genlab.models.vae.disentangle_config",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)

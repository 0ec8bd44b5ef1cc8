"""GAN family. ``GANConfig`` (:mod:`genlab.models.gan.config`) imports no torch; ``GAN`` loads
its module (torch, Lightning) on first use, so checking a config stays light."""

from __future__ import annotations

from genlab.lazy_exports import lazy_exports

_LAZY = {"GAN": "genlab.models.gan.module", "GANConfig": "genlab.models.gan.config"}

__all__ = ["GAN", "GANConfig"]

__getattr__ = lazy_exports(__name__, _LAZY)

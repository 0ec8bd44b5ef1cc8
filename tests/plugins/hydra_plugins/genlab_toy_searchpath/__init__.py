"""Hydra discovers the SearchPathPlugin in this sub-package of the ``hydra_plugins`` namespace."""

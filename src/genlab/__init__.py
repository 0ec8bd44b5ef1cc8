"""genlab: a config-driven experiment framework for GANs and VAEs."""

__version__ = "0.1.0"

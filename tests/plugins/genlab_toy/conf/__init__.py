"""Hydra configs of genlab_toy, found as ``pkg://genlab_toy.conf`` (see hydra_plugins/)."""

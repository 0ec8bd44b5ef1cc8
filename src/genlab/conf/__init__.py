"""Hydra configs of genlab (a package so that console scripts find them as pkg://genlab.conf)."""

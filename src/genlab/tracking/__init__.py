"""Experiment tracking: genlab's Weights & Biases logger (offline without an account)."""

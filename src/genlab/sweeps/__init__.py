"""Sweeps: Hydra multirun jobs that fail alone, the end-of-sweep summary, DDP inside a multirun."""

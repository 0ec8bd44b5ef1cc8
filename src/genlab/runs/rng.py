"""Every global RNG state (python, numpy, torch CPU/CUDA) as checkpoint-safe plain data, and the
per-process seeds of multi-process runs."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def get_rng_states() -> dict[str, Any]:
    """Python, numpy, torch and CUDA generator states, as tensors/tuples/ints only (so the
    checkpoint stays loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_states` (missing entries are left alone)."""
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        s = states["numpy"]
        keys = np.asarray(s["keys"].numpy(), dtype=np.uint32)
        np.random.set_state((s["kind"], keys, s["pos"], s["has_gauss"], s["cached_gaussian"]))
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def rank_seed(seed: int, rank: int) -> int:
    """The seed in [0, 2**32) of process ``rank``'s noise streams in a run seeded with ``seed``.

    numpy's ``SeedSequence((seed, rank))``: distinct, well-mixed seeds for every rank, and the
    same ones every time the run is repeated."""
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0])


def seed_global_streams(seed: int) -> None:
    """Seed the global python, numpy and torch (CPU and every CUDA device) generators.

    Unlike ``lightning.seed_everything`` this leaves ``PL_GLOBAL_SEED`` alone: that is the run
    seed, which the distributed sampler's data order is derived from."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

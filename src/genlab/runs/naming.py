"""The name of a run: what differs about it, the same in TensorBoard, wandb and
``genlab.compare``.

A sweep job is named after its swept overrides (``model=gan,seed=1``), a single run after its
command-line overrides (``model=vae,trainer.max_epochs=3``); a run without any is named after
its run directory (``2026-12-07_02-21-53``, or ``job3`` for a sweep job that swept nothing).
``+``/``~`` prefixes are dropped: the name says which value the run used, not how it was set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

#: Longest directory name :func:`dir_name` makes (file systems allow 255 bytes).
MAX_DIR_NAME = 120


def run_name(overrides: Iterable[str], fallback: str) -> str:
    """``model=gan,seed=1`` from the overrides ``["model=gan", "seed=1"]``; ``fallback`` when
    there are none."""
    parts = [str(o).lstrip("+~") for o in overrides if str(o).strip()]
    return ",".join(parts) or fallback


def dir_name(name: str) -> str:
    """``name`` as one directory name: ``/`` and ``\\`` become ``_``, leading dots are dropped
    and a name longer than :data:`MAX_DIR_NAME` is cut, with a digest of the whole name so
    two long names stay apart."""
    safe = name.replace("/", "_").replace("\\", "_").replace("\0", "_").lstrip(".") or "run"
    if len(safe.encode()) <= MAX_DIR_NAME:
        return safe
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return safe.encode()[: MAX_DIR_NAME - 9].decode(errors="ignore") + "-" + digest

"""Checkpoint and weights files: written atomically (a crash or ``kill -9`` never leaves a
half-written file) and identified by a content digest."""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from genlab.runs.files import atomic_write, remove_orphaned_temp_files


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file in the same directory, fsync, then ``os.replace``."""
    atomic_write(path, lambda f: torch.save(obj, f))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO: ``save_checkpoint`` is :func:`atomic_torch_save` and
    ``load_checkpoint`` (``trainer.fit(ckpt_path=...)``) never unpickles arbitrary objects
    (``weights_only=True`` whatever the caller asks). Its first save into a directory removes
    the orphaned temp files of interrupted saves there
    (:func:`genlab.runs.files.remove_orphaned_temp_files`)."""

    def __init__(self) -> None:
        super().__init__()
        self._cleaned: set[str] = set()

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        if directory not in self._cleaned:
            remove_orphaned_temp_files(directory)
            self._cleaned.add(directory)
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only=None):
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)

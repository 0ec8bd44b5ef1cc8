"""Content hashes of datasets: the keys of genlab's metric caches and folder orderings."""

from __future__ import annotations

import hashlib
from typing import Any

import torch


def short_hash(*parts: Any, length: int = 16) -> str:
    """sha256 over the ``repr`` of ``parts`` (bytes/buffers are hashed raw), hex-truncated."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, bytes | bytearray | memoryview):
            h.update(p)
        else:
            h.update(repr(p).encode())
        h.update(b"\x00")
    return h.hexdigest()[:length]


def tensor_hash(*tensors: torch.Tensor) -> str:
    """Content hash of CPU tensors (shape, dtype and raw bytes)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().data if t.numel() else b"")
    return h.hexdigest()[:16]

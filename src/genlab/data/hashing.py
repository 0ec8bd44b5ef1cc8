"""Content hashes of datasets: the keys of genlab's metric caches and folder orderings.

Dataset fingerprints are digests of the content (:func:`file_digest`), never of names, sizes and
mtimes alone: a file rewritten with its size and mtime kept is a new fingerprint. The fast path
is an in-process index path -> (size, mtime_ns, ctime_ns, inode, device, sha256): a file is
re-hashed when any of these changes. ``ctime`` cannot be set back from user space (every write
and every ``os.utime`` moves it), so a rewrite that restores the mtime still re-hashes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
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


_INDEX: dict[str, tuple[tuple[int, ...], str]] = {}
_INDEX_LOCK = threading.Lock()
#: files hashed (not served from the index) in this process; for tests and benchmarks
HASHED_FILES = [0]


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def file_digest(path: str | os.PathLike) -> str:
    """Full hex sha256 of the bytes of ``path``, hashed once per (size, mtime, ctime, inode,
    device) of the file in this process; OSError when it cannot be read."""
    path = Path(path)
    key = os.path.abspath(path)
    before = os.stat(path)
    with _INDEX_LOCK:
        hit = _INDEX.get(key)
    if hit is not None and hit[0] == _stamp(before):
        return hit[1]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    HASHED_FILES[0] += 1
    after = os.stat(path)
    if _stamp(after) == _stamp(before):  # not changed while read: index it
        with _INDEX_LOCK:
            _INDEX[key] = (_stamp(after), digest)
    return digest

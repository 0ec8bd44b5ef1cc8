"""The one atomic file writer: a temp file in the same directory, fsync, then ``os.replace``,
so a crash or ``kill -9`` leaves the previous complete file, never a half-written one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = True) -> Path:
    """Call ``write(file)`` on a temp file beside ``path`` (created with its parents), then
    rename it to ``path``; the temp file is removed if anything fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, data: Any, **dump_kwargs: Any) -> Path:
    """``data`` as indented JSON (plus a newline) at ``path``, atomically."""

    def write(f: IO) -> None:
        json.dump(data, f, indent=2, **dump_kwargs)
        f.write("\n")

    return atomic_write(path, write, binary=False)

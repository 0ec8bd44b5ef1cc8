"""The one atomic file writer: a temp file in the same directory, fsync, then ``os.replace``,
so a crash or ``kill -9`` leaves the previous complete file, never a half-written one.

A ``kill -9`` during a write does leave the temp file. Its name says genlab made it and which
process: ``.<name>.genlab-<pid>-<8 random>.tmp``. :func:`remove_orphaned_temp_files` (called when a
run starts writing checkpoints into a directory) removes those whose process is gone, and the
ones of older genlab versions (``.<name>.ckpt.<8 random>.tmp``); never any other file."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

#: The temp files :func:`atomic_write` creates (``tempfile``'s 8 random characters).
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.genlab-(?P<pid>[0-9]+)-[a-z0-9_]{8}\.tmp$")
#: The checkpoint temp files of genlab versions whose names carried no marker.
LEGACY_TEMP_NAME = re.compile(r"^\.(?P<target>.+\.ckpt)\.[a-z0-9_]{8}\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or not a pid we can ask about): leave its file
    return True


def is_orphaned_temp_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temp file of an interrupted :func:`atomic_write` (a regular file with
    genlab's temp name whose writer process is gone, or a legacy ``.<x>.ckpt.<8>.tmp``)."""
    path = Path(path)
    name = path.name
    match = TEMP_NAME.match(name)
    if match is None and LEGACY_TEMP_NAME.match(name) is None:
        return False
    if path.is_symlink() or not path.is_file():
        return False
    return match is None or not _alive(int(match.group("pid")))


def remove_orphaned_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Remove the orphaned temp files of interrupted saves in ``directory`` (not recursive; see
    :func:`is_orphaned_temp_file`); the removed paths. A missing directory is fine."""
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for path in sorted(entries):
        if is_orphaned_temp_file(path):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
    if removed:
        log.info(
            "removed %d temp file(s) of interrupted saves in %s: %s",
            len(removed),
            directory,
            ", ".join(p.name for p in removed),
        )
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = True) -> Path:
    """Call ``write(file)`` on a temp file beside ``path`` (created with its parents), then
    rename it to ``path``; the temp file is removed if anything fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.genlab-{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
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

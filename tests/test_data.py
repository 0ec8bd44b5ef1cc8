"""Datamodules: what a model (and a user writing configs) sees from genlab.data."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import socket
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FASHION_IDX_NAMES, debian_fashion_mnist_available, unpack_debian_fashion_mnist
from genlab.checks.errors import ConfigError
from genlab.data import (
    CIFAR10DataModule,
    FashionMNISTDataModule,
    FashionMNISTMiniDataModule,
    FolderDataModule,
    ImageDataModule,
    MNISTDataModule,
    bundled_path,
)

REPO = Path(__file__).resolve().parents[1]
CONF_DATA = REPO / "src" / "genlab" / "conf" / "data"
SHARED_MNIST_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def normalised(dm: ImageDataModule, batch) -> dict[str, torch.Tensor]:
    return dm.on_after_batch_transfer(batch, 0)


# --------------------------------------------------------------------------- bundled dataset
def test_bundled_file_is_small_balanced_and_documented():
    path = bundled_path()
    assert path.is_file()
    assert path.stat().st_size <= 5 * 1024 * 1024
    with np.load(path, allow_pickle=False) as z:
        for split, n, per_class in (("train", 6000, 600), ("test", 1000, 100)):
            images, labels = z[f"{split}_images"], z[f"{split}_labels"]
            assert images.shape == (n, 28, 28) and images.dtype == np.uint8
            assert labels.shape == (n,) and labels.dtype == np.uint8
            assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10
            # shuffled: any prefix is roughly balanced, not sorted by class
            assert len(np.unique(labels[:100])) == 10
        prov = json.loads(str(z["provenance"]))
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert prov["seed"] == sidecar["seed"] == 0
    assert set(sidecar["source_files"]) == {n + ".gz" for n in FASHION_IDX_NAMES}
    assert sidecar["npz_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundled_datamodule_batches():
    dm = FashionMNISTMiniDataModule(batch_size=32)
    assert (dm.image_size, dm.channels, dm.num_classes, dm.name) == (
        28,
        1,
        10,
        "fashion_mnist_mini",
    )
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("fit")  # idempotent
    train = dm.train_dataloader()
    assert len(train) == 6000 // 32  # drop_last
    raw = next(iter(train))
    assert raw[0].dtype == torch.uint8 and raw[0].shape == (32, 1, 28, 28)
    batch = normalised(dm, raw)
    assert set(batch) == {"image", "label"}
    img, lab = batch["image"], batch["label"]
    assert img.dtype == torch.float32 and img.shape == (32, 1, 28, 28)
    assert img.min() >= 0 and img.max() <= 1 and img.max() > 0.5
    assert lab.dtype == torch.int64 and lab.shape == (32,) and 0 <= lab.min() and lab.max() <= 9
    # not binarised by default: intermediate grey levels exist
    assert ((img > 0) & (img < 1)).any()

    val = dm.val_dataloader()
    assert sum(b[0].shape[0] for b in val) == 1000  # val = the held-out test split, nothing dropped
    v1 = next(iter(dm.val_dataloader()))[1]
    v2 = next(iter(dm.test_dataloader()))[1]
    assert torch.equal(v1, v2)  # same split, not shuffled

    assert dm.images("train").shape == (6000, 1, 28, 28)
    sub = dm.images("test", max_images=50)
    assert sub.shape == (50, 1, 28, 28) and sub.dtype == torch.uint8
    assert torch.equal(sub, dm.images("test", max_images=50))
    fps = {s: dm.fingerprint(s) for s in ("train", "val", "test")}
    assert fps["val"] == fps["test"] != fps["train"]
    assert fps["train"] == FashionMNISTMiniDataModule().fingerprint("train")


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"image_size": 64}, "data.image_size"),  # 28 or 32 (padded) only
        ({"channels": 3}, "data.channels"),
        ({"num_classes": 5}, "data.num_classes"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"batch_size": 2.5}, "data.batch_size"),
        ({"num_workers": -1}, "data.num_workers"),
    ],
)
def test_bad_values_raise_config_error(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        FashionMNISTMiniDataModule(**kwargs)


# --------------------------------------------------------------------------- binarisation
def test_binarize_train_fresh_eval_fixed():
    dm = FashionMNISTMiniDataModule(batch_size=64, binarize=True, seed=3)
    dm.setup("fit")
    raw = next(iter(dm.train_dataloader()))
    a, b = normalised(dm, raw)["image"], normalised(dm, raw)["image"]
    for x in (a, b):
        assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)  # a fresh Bernoulli draw each time
    # the draw follows the pixel intensity
    grey = raw[0].float() / 255
    assert abs(a.mean().item() - grey.mean().item()) < 0.02

    def eval_images(module):
        return torch.cat([normalised(module, b)["image"] for b in module.val_dataloader()])

    first = eval_images(dm)
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(first, eval_images(dm))  # same every epoch
    other = FashionMNISTMiniDataModule(batch_size=100, binarize=True, seed=3)
    assert torch.equal(first, eval_images(other))  # same in every run
    assert torch.equal(first, torch.cat([normalised(dm, b)["image"] for b in dm.test_dataloader()]))
    third = FashionMNISTMiniDataModule(batch_size=100, binarize=True, seed=4)
    assert not torch.equal(first, eval_images(third))
    # metrics see the real grey images
    assert ((dm.images("test") > 0) & (dm.images("test") < 255)).any()


def test_model_receives_dicts_inside_trainer():
    import lightning.pytorch as pl

    seen: dict[str, list[torch.Tensor]] = {"train": [], "val": []}

    class Probe(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            assert isinstance(batch, dict) and batch["image"].dtype == torch.float32
            seen["train"].append(batch["image"])
            return (self.w * batch["image"].mean()).sum()

        def validation_step(self, batch, batch_idx):
            seen["val"].append(batch["image"])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = FashionMNISTMiniDataModule(batch_size=16, binarize=True)
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Probe(), datamodule=dm)
    assert len(seen["train"]) == 4 and len(seen["val"]) == 2
    for x in seen["train"] + seen["val"]:
        assert x.shape == (16, 1, 28, 28) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(seen["val"][0], seen["val"][1])


# --------------------------------------------------------------------------- folder
def _write_images(root: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub" / "deeper").mkdir(parents=True)
    specs = [
        ("a.png", "RGB", (37, 23)),
        ("b.PNG", "L", (19, 41)),
        ("c.png", "RGBA", (64, 64)),
        ("sub/d.jpg", "RGB", (80, 50)),
        ("sub/e.png", "P", (30, 30)),
        ("sub/deeper/f.bmp", "L", (9, 13)),
        ("g.png", "RGB", (100, 70)),
        ("h.png", "L", (28, 28)),
        ("i.png", "RGB", (33, 33)),
        ("j.png", "RGB", (45, 17)),
        ("k.png", "L", (66, 33)),
    ]
    paths = []
    for name, mode, (w, h) in specs:
        c = {"RGB": 3, "RGBA": 4}.get(mode, 1)
        arr = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
        img = Image.fromarray(arr.squeeze(-1) if c == 1 else arr, "RGBA" if c == 4 else None)
        if mode == "P":
            img = img.convert("P")
        elif mode != img.mode:
            img = img.convert(mode)
        img.save(root / name)
        paths.append(root / name)
    (root / "notes.txt").write_text("not an image")
    return paths


@pytest.mark.parametrize(("channels", "size"), [(3, 16), (1, 12)])
def test_folder_shapes(tmp_path, channels, size):
    _write_images(tmp_path / "imgs")
    dm = FolderDataModule(
        path=str(tmp_path / "imgs"), batch_size=4, image_size=size, channels=channels
    )
    assert (dm.image_size, dm.channels, dm.num_classes, dm.name) == (size, channels, None, "folder")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no corrupt files here: no warning
        dm.setup("fit")
    assert len(dm.dataset("train")) == 10 and len(dm.dataset("val")) == 1
    assert dm.dataset("val") is dm.dataset("test")
    batches = list(dm.train_dataloader())
    assert len(batches) == 2  # 10 images, batch 4, drop_last
    for raw in batches:
        assert raw[0].dtype == torch.uint8
        batch = normalised(dm, raw)
        assert batch["image"].shape == (4, channels, size, size)
        assert batch["image"].dtype == torch.float32
        assert 0 <= batch["image"].min() and batch["image"].max() <= 1
        assert batch["label"].tolist() == [-1] * 4 and batch["label"].dtype == torch.int64
    val = [normalised(dm, b) for b in dm.val_dataloader()]
    assert val[0]["image"].shape == (1, channels, size, size)
    assert dm.images("train").shape == (10, channels, size, size)
    assert dm.images("val").dtype == torch.uint8


def test_folder_center_crop_and_grayscale_conversion(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    arr = np.zeros((10, 30, 3), dtype=np.uint8)
    arr[:, :10] = (255, 0, 0)  # red left third, green middle, blue right third
    arr[:, 10:20] = (0, 255, 0)
    arr[:, 20:] = (0, 0, 255)
    Image.fromarray(arr).save(root / "wide.png")
    rgb = FolderDataModule(path=str(root), image_size=10, channels=3).images("train")
    assert rgb.shape == (1, 3, 10, 10)
    assert (rgb[0, 1] == 255).all() and (rgb[0, 0] == 0).all()  # only the green middle is kept
    gray = FolderDataModule(path=str(root), image_size=5, channels=1).images("train")
    assert gray.shape == (1, 1, 5, 5) and 100 < gray.float().mean() < 200  # L of pure green


def test_folder_single_image_train_and_val_share_it(tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    Image.new("RGB", (5, 7), (10, 20, 30)).save(root / "only.png")
    dm = FolderDataModule(path=str(root), batch_size=8, image_size=4)
    with pytest.warns(UserWarning, match="fewer than"):
        batches = list(dm.train_dataloader())
    assert len(batches) == 1 and batches[0][0].shape == (1, 3, 4, 4)
    assert len(dm.dataset("val")) == 1


def test_folder_corrupt_file_skipped_with_one_warning(tmp_path):
    root = tmp_path / "imgs"
    _write_images(root)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (root / "sub" / "zero.jpg").write_bytes(b"")
    dm = FolderDataModule(path=str(root), batch_size=2, image_size=8)
    with pytest.warns(UserWarning) as record:
        dm.setup("fit")
    msgs = [str(w.message) for w in record if "unreadable" in str(w.message)]
    assert len(msgs) == 1
    assert "broken.png" in msgs[0] and "sub/zero.jpg" in msgs[0] and "2 unreadable" in msgs[0]
    assert sorted(p.name for p in dm.bad_files) == ["broken.png", "zero.jpg"]
    assert len(dm.dataset("train")) + len(dm.dataset("val")) == 11
    for raw in dm.train_dataloader():
        assert raw[0].shape == (2, 3, 8, 8)

    strict = FolderDataModule(path=str(root), image_size=8, strict=True)
    with pytest.raises(ConfigError, match="data.path") as info:
        strict.setup("fit")
    assert "broken.png" in str(info.value) and "zero.jpg" in str(info.value)


@pytest.mark.parametrize(
    "case", ["none", "missing", "empty", "not_dir", "only_text", "all_corrupt"]
)
def test_folder_bad_path_raises_config_error(tmp_path, case):
    path: str | None = str(tmp_path / "x")
    if case == "none":
        path = None
    elif case == "empty":
        (tmp_path / "x").mkdir()
    elif case == "not_dir":
        (tmp_path / "x").write_text("file")
    elif case == "only_text":
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "readme.txt").write_text("hi")
    elif case == "all_corrupt":
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "bad.png").write_bytes(b"nope")
    with pytest.raises(ConfigError, match=r"data\.path") as info:
        dm = FolderDataModule(path=path, image_size=8)
        dm.setup("fit")
    if case in ("empty", "only_text"):
        assert ".png" in str(info.value) and ".jpg" in str(info.value)  # lists accepted extensions
    if case == "all_corrupt":
        assert "bad.png" in str(info.value)


def test_folder_fingerprint_tracks_content(tmp_path):
    root = tmp_path / "imgs"
    paths = _write_images(root)

    def fps():
        dm = FolderDataModule(path=str(root), image_size=8)
        return dm.fingerprint("train"), dm.fingerprint("val")

    base = fps()
    assert base == fps()  # stable
    assert base[0] != base[1]
    assert FolderDataModule(path=str(root), image_size=16).fingerprint("train") != base[0]
    # change one file's pixels (and size)
    Image.new("RGB", (31, 29), (1, 2, 3)).save(paths[0])
    changed = fps()
    assert changed != base
    # touch a file without changing it: a content digest, so the same fingerprint
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fps() == changed
    # add an image
    Image.new("L", (20, 20), 7).save(root / "new.png")
    assert fps()[0] not in (base[0], changed[0])


# --------------------------------------------------------------------------- torchvision
def _write_idx(path: Path, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(header + arr.tobytes())


def _fake_mnist_raw(root: Path, name: str, n_train: int = 12, n_test: int = 5) -> dict:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        data[prefix] = (images, labels)
    return data


@pytest.mark.parametrize(
    ("cls", "folder", "name"),
    [
        (MNISTDataModule, "MNIST", "mnist"),
        (FashionMNISTDataModule, "FashionMNIST", "fashion_mnist"),
    ],
)
@pytest.mark.parametrize("download", [False, True])
def test_idx_datamodules_offline(tmp_path, no_network, cls, folder, name, download):
    data = _fake_mnist_raw(tmp_path, folder)
    dm = cls(data_dir=str(tmp_path), batch_size=4, download=download)
    assert (dm.image_size, dm.channels, dm.num_classes, dm.name) == (28, 1, 10, name)
    dm.prepare_data()  # with download=true and files present: no network (guarded)
    dm.setup("fit")
    assert torch.equal(dm.images("train")[:, 0], torch.from_numpy(data["train"][0]))
    assert torch.equal(dm.images("test")[:, 0], torch.from_numpy(data["t10k"][0]))
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    batch = normalised(dm, batches[0])
    assert batch["image"].shape == (4, 1, 28, 28) and batch["label"].dtype == torch.int64
    labels = torch.cat([b[1] for b in dm.val_dataloader()])
    assert labels.tolist() == data["t10k"][1].tolist()  # val = test split, in order
    fp = dm.fingerprint("train")
    assert fp == cls(data_dir=str(tmp_path)).fingerprint("train") != dm.fingerprint("val")
    _write_idx(tmp_path / folder / "raw" / "train-images-idx3-ubyte", data["train"][0][:11])
    assert cls(data_dir=str(tmp_path)).fingerprint("train") != fp


def test_idx_missing_files_raise_config_error(tmp_path, no_network):
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(ConfigError, match=r"data\.data_dir.*data\.download=true"):
        dm.setup("fit")
    with pytest.raises(ConfigError, match=r"data\.image_size"):
        MNISTDataModule(data_dir=str(tmp_path), image_size=64)


def _fake_cifar(root: Path, per_batch: int = 4) -> np.ndarray:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(2)
    first = None
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        # CIFAR rows are (3*32*32,) channel-major: R plane, G plane, B plane
        data = rng.integers(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8)
        if first is None:
            first = data
        entry = {"data": data, "labels": [(i + j) % 10 for j in range(per_batch)]}
        with open(base / name, "wb") as f:
            pickle.dump(entry, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{k}" for k in range(10)]}, f)
    return first


def test_cifar10_offline_with_fake_batches(tmp_path, no_network, monkeypatch):
    # torchvision md5-checks every CIFAR file against the real archive; fake files cannot
    # match, so this test replaces the integrity check by an existence check. The real
    # download path (prepare_data -> torchvision download) is left untouched in the code.
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    first = _fake_cifar(tmp_path)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=5, download=True)
    assert (dm.image_size, dm.channels, dm.num_classes, dm.name) == (32, 3, 10, "cifar10")
    dm.prepare_data()
    dm.setup("fit")
    train = dm.images("train")
    assert train.shape == (20, 3, 32, 32) and train.dtype == torch.uint8
    assert torch.equal(train[:4], torch.from_numpy(first.reshape(4, 3, 32, 32)))  # channel order
    assert dm.images("test").shape == (4, 3, 32, 32)
    batch = normalised(dm, next(iter(dm.train_dataloader())))
    assert batch["image"].shape == (5, 3, 32, 32) and batch["label"].dtype == torch.int64
    with pytest.raises(ConfigError, match=r"data\.channels"):
        CIFAR10DataModule(data_dir=str(tmp_path), channels=1)


@pytest.mark.skipif(
    not (SHARED_MNIST_ROOT / "MNIST" / "raw").is_dir(), reason="no shared MNIST copy"
)
def test_real_mnist_from_shared_dir(no_network):
    dm = MNISTDataModule(data_dir=str(SHARED_MNIST_ROOT), batch_size=256, download=True)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.images("train").shape == (60000, 1, 28, 28)
    assert dm.images("test").shape == (10000, 1, 28, 28)
    labels = dm.dataset("train").labels
    assert torch.bincount(labels).min() > 5000
    assert len(dm.train_dataloader()) == 60000 // 256


@pytest.mark.skipif(
    not debian_fashion_mnist_available(), reason="Debian fashion-mnist package not installed"
)
def test_real_fashion_mnist_from_debian_package(tmp_path, no_network):
    unpack_debian_fashion_mnist(tmp_path)
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), batch_size=128)
    dm.setup("fit")
    full = dm.images("train")
    assert full.shape == (60000, 1, 28, 28)
    assert dm.images("test").shape == (10000, 1, 28, 28)
    # the bundled mini dataset is a subset of the real one
    rows = {hashlib.sha1(x.numpy().tobytes()).digest() for x in full}
    mini = FashionMNISTMiniDataModule().images("train")
    assert all(hashlib.sha1(x.numpy().tobytes()).digest() in rows for x in mini[:500])


# --------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "name", ["fashion_mnist_mini", "fashion_mnist", "mnist", "cifar10", "folder"]
)
def test_data_configs_instantiate_and_are_commented(tmp_path, name):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    path = CONF_DATA / f"{name}.yaml"
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line or line.startswith("_target_"), f"uncommented key in {path}: {line}"
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": OmegaConf.load(path)})
    assert cfg.data._target_.startswith("genlab.data.")
    if name == "folder":
        assert OmegaConf.is_missing(cfg.data, "path")
        (tmp_path / "imgs").mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "a.png")
        cfg.data.path = str(tmp_path / "imgs")
    dm = instantiate(cfg.data)
    assert isinstance(dm, ImageDataModule)
    assert dm.image_size == cfg.data.image_size and dm.channels == cfg.data.channels
    assert dm.num_classes == cfg.data.num_classes
    assert dm.batch_size == cfg.data.batch_size and dm.data_dir == str(tmp_path)


def test_folder_relative_path_falls_back_to_data_dir(tmp_path, monkeypatch):
    (tmp_path / "data" / "faces").mkdir(parents=True)
    Image.new("RGB", (9, 9), (5, 5, 5)).save(tmp_path / "data" / "faces" / "a.png")
    monkeypatch.chdir(tmp_path)
    dm = FolderDataModule(path="faces", data_dir=str(tmp_path / "data"), image_size=4)
    assert dm.path == (tmp_path / "data" / "faces").resolve()
    with pytest.raises(ConfigError, match=r"data\.path"):
        FolderDataModule(path="nowhere", data_dir=str(tmp_path / "data"))


def test_28px_data_zero_padded_to_32_for_the_32px_nets():
    """``data.image_size=32`` on a 28 px dataset adds a 2-pixel black border (the ResNet and
    StyleGAN2 nets start at 32 px); the picture itself is untouched, nothing is resized, and
    any other size names the two allowed ones."""
    from genlab.checks.errors import ConfigError
    from genlab.data import FashionMNISTMiniDataModule

    native, padded = FashionMNISTMiniDataModule(), FashionMNISTMiniDataModule(image_size=32)
    assert padded.image_size == 32
    for split in ("train", "test"):
        small, big = native.dataset(split).images, padded.dataset(split).images
        assert big.shape[-2:] == (32, 32) and big.dtype == torch.uint8
        assert torch.equal(big[..., 2:30, 2:30], small)
        assert big[..., :2, :].eq(0).all() and big[..., :, 30:].eq(0).all()
    batch = next(iter(padded.train_dataloader()))
    assert batch[0].shape[-2:] == (32, 32)  # (images, labels)
    with pytest.raises(ConfigError, match=r"data\.image_size=30 is invalid: allowed 28 or 32"):
        FashionMNISTMiniDataModule(image_size=30)

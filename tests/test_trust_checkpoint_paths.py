"""genlab.sample / genlab.eval read no path and no worker count from a checkpoint; the VQ-VAE
prior's first stage is the one stored inside its checkpoint (issue "trust, round 2")."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import compose_config
from genlab.checks.errors import ConfigError
from genlab.data.registry import datamodule_from_checkpoint
from genlab.eval import evaluate
from genlab.models.registry import build_model_from_checkpoint
from genlab.sample import real_images
from test_file_trust import TINY_VAE, _train_tiny, set_data, tamper


@pytest.fixture(scope="module")
def vae_ckpt(tmp_path_factory):
    return _train_tiny(tmp_path_factory.mktemp("vae"), TINY_VAE)


def _folder(path, value: int, n: int = 6):
    path.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((28, 28), value, np.uint8), mode="L").save(path / f"{i}.png")
    return path


def _folder_ckpt(vae_ckpt, tmp_path, stored_path):
    data = {"_target_": "genlab.data.FolderDataModule", "path": str(stored_path),
            "data_dir": str(stored_path.parent), "image_size": 28, "channels": 1,
            "batch_size": 4, "num_workers": 256}  # fmt: skip
    return tamper(vae_ckpt, tmp_path / "crafted" / "last.ckpt", set_data(data))


def test_sample_reconstruct_never_reads_the_checkpoints_folder(vae_ckpt, tmp_path):
    other = _folder(tmp_path / "someone_elses", 255)
    path = _folder_ckpt(vae_ckpt, tmp_path, other)
    with pytest.raises(ConfigError, match="never read a path from a checkpoint") as e:
        real_images(str(path), 4)  # genlab.sample mode=reconstruct, no data.path given
    assert e.value.key == "data.path"
    mine = _folder(tmp_path / "mine", 10)
    images = real_images(str(path), 4, {"path": str(mine)})
    assert torch.allclose(images, torch.full_like(images, 10 / 255))


def test_eval_of_a_folder_checkpoint_needs_the_users_data_path(vae_ckpt, tmp_path):
    path = _folder_ckpt(vae_ckpt, tmp_path, _folder(tmp_path / "someone_elses", 255))
    args = [f"ckpt_path={path}", "metrics.num_samples=0", "num_test_images=4", "k=2", "k_batch=2"]
    with pytest.raises(ConfigError) as e:
        evaluate(compose_config(tmp_path / "e", *args, config_name="eval"))
    assert e.value.key == "data.path"
    mine = _folder(tmp_path / "mine", 10)
    out = evaluate(compose_config(tmp_path / "e2", *args, f"data.path={mine}", config_name="eval"))
    assert out["family"] == "vae" and out["data"] == "FolderDataModule"


def test_no_data_dir_or_worker_count_is_taken_from_a_checkpoint(vae_ckpt, tmp_path):
    stored = tmp_path / "planted"
    data = {"_target_": "genlab.data.MNISTDataModule", "data_dir": str(stored),
            "num_workers": 256, "batch_size": 4}  # fmt: skip
    ckpt = torch.load(tamper(vae_ckpt, tmp_path / "m.ckpt", set_data(data)), weights_only=True)
    dm = datamodule_from_checkpoint(ckpt)
    assert dm.num_workers == 0 and os.fspath(dm.data_dir) != str(stored)
    dm = datamodule_from_checkpoint(ckpt, {"data_dir": str(tmp_path / "here"), "num_workers": 1})
    assert dm.num_workers == 1 and os.fspath(dm.data_dir) == str(tmp_path / "here")
    with pytest.raises(ConfigError) as e:
        dm.setup("test")  # no MNIST files there: the error names the user's key
    assert e.value.key == "data.data_dir"


# ------------------------------------------------------------------- VQ-VAE prior first stage
@pytest.fixture(scope="module")
def prior_ckpt(tmp_path_factory):
    from conftest import FAST
    from genlab.train import train

    root = tmp_path_factory.mktemp("prior")
    small = ["~callbacks.sample_grid", "model.hidden_channels=8", "model.num_residual_blocks=1",
             "trainer.limit_train_batches=1", "trainer.limit_val_batches=1"]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(compose_config(root / "first", *FAST, "model=vqvae", *small,
                             "model.num_embeddings=8", "model.embedding_dim=4"))  # fmt: skip
        first = root / "first" / "checkpoints" / "last.ckpt"
        train(compose_config(root / "prior", *FAST, "model=vqvae_prior", *small[:1],
                             f"model.vqvae_ckpt={first}", "model.num_layers=2",
                             "model.hidden_channels=8", "trainer.limit_train_batches=1",
                             "trainer.limit_val_batches=1"))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return root / "prior" / "checkpoints" / "last.ckpt", first


def test_the_prior_rebuilds_from_its_own_checkpoint_alone(prior_ckpt, tmp_path, monkeypatch):
    import genlab.models.vqvae.prior as prior

    path, first = prior_ckpt

    def no_first_stage_file(*args, **kwargs):
        raise AssertionError("the first-stage file was read")

    monkeypatch.setattr(prior, "load_first_stage", no_first_stage_file)
    # the stored vqvae_ckpt points at a file that moved: irrelevant
    moved = tamper(path, tmp_path / "p.ckpt", lambda c: c["hyper_parameters"].update(
        vqvae_ckpt=str(tmp_path / "gone.ckpt")))  # fmt: skip
    assert build_model_from_checkpoint(moved).family == "vqvae_prior"


def test_a_prior_checkpoint_cannot_point_at_another_first_stage(prior_ckpt, tmp_path):
    path, first = prior_ckpt
    relative = os.path.relpath(first, tmp_path / "crafted")  # ../../... as in the issue

    def edit(c):
        c["hyper_parameters"].update(first_stage=None, vqvae_ckpt=relative)

    crafted = tamper(path, tmp_path / "crafted" / "last.ckpt", edit)
    cwd = os.getcwd()
    os.chdir(tmp_path / "crafted")
    try:
        with pytest.raises(ConfigError, match="holds its first_stage") as e:
            build_model_from_checkpoint(crafted)
    finally:
        os.chdir(cwd)
    assert e.value.key == "ckpt_path"

"""Files are data, never code: a shared checkpoint or run directory cannot pick what genlab runs.

Each test takes a real tiny checkpoint (or run dir), tampers with it the way an attacker
sharing it could (``torch.save`` of a modified dict, still loadable with
``torch.load(weights_only=True)``) and checks that genlab refuses it with one ConfigError line
and that the marker file the payload would write never appears.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import CONF_DIR, FAST, compose_config
from genlab.checks.errors import ConfigError
from genlab.data import DATAMODULE_CLASSES, FashionMNISTMiniDataModule, datamodule_from_config
from genlab.eval import evaluate
from genlab.models.registry import build_model_from_checkpoint
from genlab.runs.checkpoints import resolve_ckpt_path
from genlab.sample import real_images
from genlab.train import train

TINY_GAN = [
    "model=gan",
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
    "model.latent_dim=8",
    "~callbacks.sample_grid",
    "trainer.limit_train_batches=1",
]
TINY_VAE = ["model=vae_mlp", "model.hidden_dims=[32]", "~callbacks.sample_grid"]


class Payload:
    """Unpickling this runs ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _train_tiny(run_dir: Path, overrides: list[str]) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(compose_config(run_dir, *FAST, *overrides))
    finally:
        torch.set_num_threads(threads)
        GlobalHydra.instance().clear()
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def vae_ckpt(tmp_path_factory) -> Path:
    return _train_tiny(tmp_path_factory.mktemp("vae"), TINY_VAE)


@pytest.fixture(scope="module")
def gan_ckpt(tmp_path_factory) -> Path:
    return _train_tiny(tmp_path_factory.mktemp("gan"), TINY_GAN)


def tamper(src: Path, dst: Path, edit) -> Path:
    """``dst`` = the checkpoint ``src`` after ``edit(checkpoint_dict)`` (weights_only-loadable)."""
    checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    edit(checkpoint)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, dst)
    return dst


def evil_data_targets(tmp_path: Path) -> tuple[dict, dict, list[Path]]:
    """Two data configs whose ``_target_`` writes a marker when instantiated by Hydra:
    ``torch.load`` of a pickle with ``weights_only: false`` (runs ``touch``), and
    ``pathlib.Path.write_text`` on a path built by a nested ``_target_``."""
    pickle_path, run_marker, write_marker = tmp_path / "evil.pkl", tmp_path / "ran", tmp_path / "w"
    torch.save(Payload(run_marker), pickle_path)
    load = {"_target_": "torch.load", "f": str(pickle_path), "weights_only": False}
    write = {
        "_target_": "pathlib.Path.write_text",
        "self": {"_target_": "pathlib.Path", "_args_": [str(write_marker)]},
        "data": "pwned",
    }
    return load, write, [run_marker, write_marker]


def set_data(cfg: dict):
    def edit(checkpoint):
        checkpoint["genlab"]["run_config"]["data"] = cfg

    return edit


# -- the table and its checks --------------------------------------------------------------------
def test_every_conf_data_target_is_in_the_table_and_rebuilds():
    targets = {
        OmegaConf.load(path)["_target_"] for path in sorted((CONF_DIR / "data").glob("*.yaml"))
    }
    assert targets == set(DATAMODULE_CLASSES)  # a new conf/data/*.yaml must be added there
    dm = datamodule_from_config(
        {"_target_": "genlab.data.FashionMNISTMiniDataModule", "batch_size": 4, "seed": 1},
        {"batch_size": 8, "data_dir": None},  # None = keep
    )
    assert isinstance(dm, FashionMNISTMiniDataModule) and dm.batch_size == 8


@pytest.mark.parametrize(
    "cfg, key",
    [
        ({"_target_": "pathlib.Path.write_text", "data": "x"}, "data._target_"),
        ({"_target_": "genlab.data.base.ImageDataModule"}, "data._target_"),  # not in the table
        ({"batch_size": 4}, "data._target_"),  # no target at all
        ({"_target_": "genlab.data.MNISTDataModule", "_partial_": True}, "data._partial_"),
        ({"_target_": "genlab.data.MNISTDataModule", "batch_sise": 4}, "data.batch_sise"),
        (
            {"_target_": "genlab.data.MNISTDataModule", "data_dir": {"_target_": "os.getcwd"}},
            "data.data_dir",
        ),
        ({"_target_": "genlab.data.MNISTDataModule", "seed": object()}, "data.seed"),
    ],
)
def test_datamodule_from_config_refuses_anything_but_plain_keywords(cfg, key):
    with pytest.raises(ConfigError) as info:
        datamodule_from_config(cfg)
    assert info.value.key == key
    message = str(info.value)
    assert "\n" not in message and "ckpt_path" in message
    if key == "data._target_":
        assert "genlab.data.FashionMNISTMiniDataModule" in message  # the allowed values


# -- genlab.eval / genlab.sample --------------------------------------------------------------
def test_eval_and_sample_refuse_a_checkpoint_whose_data_target_is_a_callable(vae_ckpt, tmp_path):
    """The issue's attack: the file passes weights_only=True, its data ``_target_`` runs code."""
    load, write, markers = evil_data_targets(tmp_path)
    for i, data_cfg in enumerate((load, write)):
        path = tamper(vae_ckpt, tmp_path / f"evil{i}.ckpt", set_data(data_cfg))
        cfg = compose_config(
            tmp_path / "eval", f"ckpt_path={path}", "metrics.num_samples=0", config_name="eval"
        )
        with pytest.raises(ConfigError, match=r"data\._target_=.* is invalid: allowed one of"):
            evaluate(cfg)
        with pytest.raises(ConfigError, match=r"data\._target_"):
            real_images(str(path), 4)  # genlab.sample mode=reconstruct
        assert not any(m.exists() for m in markers)
    assert not (tmp_path / "evil0.ckpt").with_name("eval.json").exists()


def test_eval_does_not_download_because_the_checkpoint_says_so(vae_ckpt, tmp_path):
    """A checkpoint naming ``download: true`` and a directory does not make eval fetch data
    there; only the user's ``data.download=true`` does."""
    target = tmp_path / "somewhere"
    data_cfg = {"_target_": "genlab.data.MNISTDataModule", "data_dir": str(target)}
    path = tamper(vae_ckpt, tmp_path / "dl.ckpt", set_data({**data_cfg, "download": True}))
    from genlab.data.registry import datamodule_from_checkpoint

    checkpoint = torch.load(path, weights_only=True)
    assert datamodule_from_checkpoint(checkpoint).download is False
    assert datamodule_from_checkpoint(checkpoint, {"download": True}).download is True
    assert not target.exists()


@pytest.mark.slow
def test_cli_refuses_tampered_checkpoints_in_one_line(vae_ckpt, tmp_path):
    """``python -m genlab.eval`` / ``python -m genlab.sample`` as a user types them: exit 2, one
    ``genlab: error:`` line naming ``data._target_``, no marker, no output file."""
    load, write, markers = evil_data_targets(tmp_path)
    evil_eval = tamper(vae_ckpt, tmp_path / "a" / "last.ckpt", set_data(load))
    evil_sample = tamper(vae_ckpt, tmp_path / "b" / "last.ckpt", set_data(write))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    commands = [
        [sys.executable, "-m", "genlab.eval", f"ckpt_path={evil_eval}", "metrics.num_samples=0"],
        [sys.executable, "-m", "genlab.sample", f"ckpt_path={evil_sample}", "mode=reconstruct"],
    ]
    procs = [
        subprocess.Popen(c, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for c in commands
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        lines = err.decode().strip().splitlines()
        assert proc.returncode == 2, err.decode()[-3000:]
        assert len(lines) == 1 and lines[0].startswith("genlab: error: data._target_="), lines
    assert not any(m.exists() for m in markers)
    assert not (tmp_path / "a" / "eval.json").exists() and not (tmp_path / "samples.png").exists()


# -- the model: class, hyper_parameters, counters ---------------------------------------------
@pytest.mark.parametrize(
    "edit, key",
    [
        (  # optimizer spec naming a non-optimizer (configure_optimizers would call it)
            lambda c: c["hyper_parameters"]["optimizer"].update(_target_="torch.save"),
            "model.optimizer._target_",
        ),
        (  # a nested spec inside the optimizer spec (Hydra instantiates recursively)
            lambda c: c["hyper_parameters"]["optimizer"].update(
                lr={"_target_": "os.system", "command": "true"}
            ),
            "model.optimizer.lr._target_",
        ),
        (  # a scheduler spec naming a non-scheduler
            lambda c: c["hyper_parameters"].update(lr_scheduler={"_target_": "builtins.exec"}),
            "model.lr_scheduler._target_",
        ),
        (  # a _target_ where no spec belongs
            lambda c: c["hyper_parameters"].update(hidden_dims={"_target_": "builtins.list"}),
            "model.hidden_dims._target_",
        ),
        (  # counters are setattr'ed on the model: only its own
            lambda c: c["genlab"].update(counters={"training": 1}),
            "genlab.counters.training",
        ),
    ],
)
def test_checkpoint_cannot_name_callables_or_attributes_of_the_model(vae_ckpt, tmp_path, edit, key):
    path = tamper(vae_ckpt, tmp_path / "evil.ckpt", edit)
    with pytest.raises(ConfigError) as info:
        build_model_from_checkpoint(path)
    assert info.value.key == key and "\n" not in str(info.value)


def test_real_checkpoints_still_rebuild(vae_ckpt, gan_ckpt):
    """The checks refuse only what genlab never writes: real VAE / GAN checkpoints (Adam specs,
    GAN counters) rebuild as before."""
    assert build_model_from_checkpoint(vae_ckpt).family == "vae"
    gan = build_model_from_checkpoint(gan_ckpt)
    assert gan.family == "gan" and gan.d_steps == 1


def test_resume_refuses_foreign_counters(gan_ckpt, tmp_path):
    """``ckpt_path=<file>`` resume: Lightning would setattr every counter name of the file."""
    path = tamper(
        gan_ckpt, tmp_path / "evil.ckpt", lambda c: c["genlab"]["counters"].update(trainer=0)
    )
    cfg = compose_config(tmp_path / "run", *FAST, *TINY_GAN, f"ckpt_path={path}")
    with pytest.raises(ConfigError, match=r"genlab\.counters\.trainer"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("run_id", ["../../../tmp/x", ["a"], "a b"])
def test_wandb_resume_takes_only_a_plain_run_id_from_the_checkpoint(gan_ckpt, tmp_path, run_id):
    """``logger.wandb.resume=true`` reads the run id from the checkpoint; wandb makes file names
    of it (``wandb/offline-run-*-<id>/run-<id>.wandb``)."""
    from genlab.tracking.wandb import wandb_id_from_checkpoint

    def edit(checkpoint):
        checkpoint["genlab"]["run_config"]["logger"] = {"wandb": {"id": run_id}}

    path = tamper(gan_ckpt, tmp_path / "evil.ckpt", edit)
    with pytest.raises(ConfigError) as info:
        wandb_id_from_checkpoint(str(path))
    assert info.value.key == "logger.wandb.id"


# -- run directories: ckpt_path=last reads .hydra/overrides.yaml ------------------------------
def _run_dir(root: Path, name: str, overrides_yaml: str) -> Path:
    run = root / "train" / "runs" / name
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text(overrides_yaml)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    return run


def test_ckpt_path_last_reads_overrides_as_plain_text(tmp_path, monkeypatch):
    """A run dir's overrides.yaml is compared as text: no interpolation is resolved (it could
    read any environment variable), no YAML tag builds an object."""
    monkeypatch.setenv("GENLAB_TRUST_PROBE", "vae")
    _run_dir(tmp_path, "interp", "- model=${oc.env:GENLAB_TRUST_PROBE}\n")
    marker = tmp_path / "tagged"
    _run_dir(tmp_path, "tag", f"- !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="no run of this config"):
        resolve_ckpt_path("last", tmp_path, "train", ["model=vae"])
    assert not marker.exists()
    plain = _run_dir(tmp_path, "plain", "- model=vae\n- ckpt_path=last\n")
    found = resolve_ckpt_path("last", tmp_path, "train", ["model=vae"])
    assert found == str(plain / "checkpoints" / "last.ckpt")


def test_resolved_ckpt_path_is_absolute(tmp_path, monkeypatch):
    """Lightning reads ``best``/``last``/``hpc``/``registry`` as keywords: genlab passes paths."""
    monkeypatch.chdir(tmp_path)
    Path("best").write_bytes(b"x")
    assert resolve_ckpt_path("best", tmp_path, "train", []) == str(tmp_path / "best")


# -- genlab.compare on crafted run dirs (report/runs.py, compare.py) -----------------------------
def _compare_run(root: Path, name: str, overrides: str, status: str = "completed") -> Path:
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save({"seed": 1}, run / ".hydra" / "config.yaml")
    (run / ".hydra" / "overrides.yaml").write_text(overrides)
    (run / "status.json").write_text(json.dumps({"status": status}))
    return run


@pytest.mark.parametrize("where", ["overrides.yaml", "status.json"])
def test_compare_never_resolves_interpolations_from_run_dirs(tmp_path, monkeypatch, where):
    """A shared run dir whose overrides.yaml (or status.json error) says
    ``${oc.env:SECRET}`` must not copy the secret into report.html (which the user shares)."""
    from genlab.compare import main

    monkeypatch.setenv("GENLAB_TRUST_SECRET", "s3cr3t-token")
    probe = "${oc.env:GENLAB_TRUST_SECRET}"
    if where == "overrides.yaml":
        _compare_run(tmp_path, "a", f"- seed={probe}\n")
    else:
        run = _compare_run(tmp_path, "a", "- seed=1\n")
        (run / "status.json").write_text(json.dumps({"status": "failed", "error": probe}))
    _compare_run(tmp_path, "b", "- seed=2\n")
    main([str(tmp_path), "--out", str(tmp_path / "report")])
    assert "s3cr3t-token" not in (tmp_path / "report" / "report.html").read_text()


def test_compare_embeds_only_png_files_of_the_run_dir(tmp_path):
    """``samples/last.png`` is base64-embedded in report.html: a link to a file elsewhere (a
    key, a token) must not be, nor a non-PNG file."""
    import base64

    from genlab.compare import main

    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN PRIVATE KEY----- not for sharing")
    run = _compare_run(tmp_path / "runs", "a", "- seed=1\n")
    (run / "samples").mkdir()
    (run / "samples" / "last.png").symlink_to(secret)
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    html = (tmp_path / "report" / "report.html").read_text()
    assert base64.b64encode(secret.read_bytes()).decode() not in html


def test_compare_runs_no_code_from_yaml_tags(tmp_path):
    """config.yaml / overrides.yaml with a python tag: nothing runs (OmegaConf's safe loader)
    and compare still reports, showing that file as unread."""
    from genlab.compare import main

    marker = tmp_path / "ran"
    run = _compare_run(tmp_path / "runs", "a", "- seed=1\n")
    (run / ".hydra" / "config.yaml").write_text(
        f"seed: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    assert not marker.exists()
    assert (tmp_path / "report" / "report.html").is_file()

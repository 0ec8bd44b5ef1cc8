"""A model family added from outside genlab's source: one package, one config, two registrations.

``tests/plugins/`` holds what ``pip install genlab-toy`` would put in site-packages: the package
``genlab_toy`` (a small DDPM, neither GAN nor VAE, with ``conf/model/toy_diffusion.yaml``), its
``dist-info`` declaring the entry point ``toy_diffusion`` in the group ``genlab.models``, and a
Hydra SearchPathPlugin under ``hydra_plugins/``. With that folder on ``PYTHONPATH`` (and no edit
to genlab) every CLI works on the new family: train, multirun, sample, eval, compare, resume, DDP.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.checks.errors import ConfigError
from genlab.runs.checkpoints import load_checkpoint

PLUGINS = Path(__file__).resolve().parent / "plugins"

# One CPU epoch of 3 batches of a tiny toy diffusion model, sample quality on 20 images.
TINY = [
    "model=toy_diffusion",
    "model.timesteps=10",
    "model.beta_schedule=cosine",  # the linear one needs T >= 21 (betas scaled by 1000/T)
    "model.base_channels=8",
    "model.time_dim=16",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
    "callbacks.sample_grid.num_samples=4",
    "data.batch_size=16",
    "logger=csv",
    "num_threads=1",
    "metrics.num_samples=20",
    "metrics.batch_size=20",
    "metrics.num_real=200",
    "metrics.kid_subset_size=10",
    "metrics.is_splits=2",
]


def plugin_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user who installed the plugin: ``tests/plugins`` importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
    env.update(OMP_NUM_THREADS="1", HOME=str(tmp_path / "home"))
    return env


def genlab(cwd: Path, command: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m genlab.<command> args...`` in ``cwd`` with the plugin installed."""
    result = subprocess.run(
        [sys.executable, "-m", f"genlab.{command}", *args],
        cwd=cwd,
        env=plugin_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return result


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(ckpt)["state_dict"]


@pytest.fixture
def plugin_importable(monkeypatch):
    """``tests/plugins`` on sys.path in this process (importlib.metadata reads sys.path)."""
    monkeypatch.syspath_prepend(str(PLUGINS))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``genlab.train -m model=toy_diffusion seed=1,2``, run once for the module."""
    root = tmp_path_factory.mktemp("toy_sweep")
    result = genlab(root, "train", "-m", *TINY, "seed=1,2", "hydra.sweep.dir=sweep")
    return root / "sweep", result


@pytest.fixture
def sweep_dir(sweep) -> Path:
    """The sweep's directory with two finished runs, ``0/`` and ``1/`` (a failed sweep fails
    each test here instead of being re-run by each)."""
    path, result = sweep
    ok(result)
    return path


# -- registration and the protocol, in this process ------------------------------------------
def test_entry_point_registers_the_family_without_editing_genlab(plugin_importable):
    from genlab_toy import ToyDiffusion

    from genlab.models import registry

    (ep,) = [ep for ep in entry_points(group="genlab.models") if ep.name == "toy_diffusion"]
    assert ep.value == "genlab_toy.model:ToyDiffusion"
    assert "toy_diffusion" in registry.registered_names()
    assert registry.model_class("toy_diffusion") is ToyDiffusion
    assert registry.check_registered(ToyDiffusion) == "toy_diffusion"
    import genlab

    source = Path(inspect.getfile(ToyDiffusion)).resolve()
    assert source.is_relative_to(PLUGINS)  # the family lives outside genlab's source
    assert not source.is_relative_to(Path(genlab.__file__).resolve().parent)


def test_toy_diffusion_follows_the_generative_module_protocol(plugin_importable):
    from genlab_toy import ToyDiffusion

    from genlab.models import GAN, VAE
    from genlab.models.base import GenerativeModule

    assert issubclass(ToyDiffusion, GenerativeModule)
    assert not issubclass(ToyDiffusion, GAN | VAE)
    model = ToyDiffusion(
        image_size=28, channels=1, timesteps=4, beta_schedule="cosine", base_channels=4, time_dim=8
    )
    assert ToyDiffusion.sample_options == {"temperature"}
    assert not ToyDiffusion.supports_reconstruction
    model.train()

    def seeded():
        return torch.Generator().manual_seed(5)

    images = model.generate(3, generator=seeded(), temperature=0.9)
    assert images.shape == (3, 1, 28, 28) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    assert model.training  # generate left the mode as it found it
    assert torch.equal(images, model.generate(3, generator=seeded(), temperature=0.9))
    assert not torch.equal(images, model.generate(3, generator=torch.Generator().manual_seed(6)))

    z = model.latents(2, seeded())  # x_T, the start of the chain
    assert z.shape == (2, 1, 28, 28)
    from_z = model.generate_from_latents(z)
    assert from_z.shape == (2, 1, 28, 28) and torch.equal(from_z, model.generate_from_latents(z))
    with pytest.raises(ConfigError, match="temperature"):
        model.generate(1, temperature=0)

    # the checkpoint's hyperparameters (plain data) rebuild the same model
    rebuilt = ToyDiffusion(**dict(model.hparams))
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt.generate(3, generator=seeded(), temperature=0.9), images)

    with pytest.raises(ConfigError, match=r"model\.timestep\b.*timesteps"):
        ToyDiffusion(image_size=28, channels=1, timestep=4)
    with pytest.raises(ConfigError, match="model.image_size"):
        ToyDiffusion(image_size=30, channels=1)


# -- the CLIs, in subprocesses, on the plugin's runs -----------------------------------------
def test_train_multirun_of_the_plugin_family(sweep_dir):
    runs = sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "config.yaml").is_file())
    assert [p.name for p in runs] == ["0", "1"]
    for run in runs:
        ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
        assert ckpt["genlab"]["family"] == "toy_diffusion"
        assert ckpt["hyper_parameters"]["timesteps"] == 10  # the override reached the model
        assert ckpt["global_step"] == 3
        assert json.loads((run / "status.json").read_text())["status"] == "completed"
        assert Image.open(run / "samples" / "last.png").size[0] > 28
        header = (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
        assert {"train/loss", "val/loss", "val/fid", "val/precision"} <= set(header)
    first, second = (weights(run / "checkpoints" / "last.ckpt") for run in runs)
    assert any(not torch.equal(first[k], second[k]) for k in first)  # seeds 1 and 2 differ


@pytest.mark.slow  # the default suite stays under 10 min
def test_sample_grid_and_interpolation_npz_from_a_plugin_checkpoint(sweep_dir, tmp_path):
    ckpt = sweep_dir / "0" / "checkpoints" / "last.ckpt"
    ok(genlab(tmp_path, "sample", f"ckpt_path={ckpt}", "num_samples=9", "output=grid.png",
              "temperature=0.8"))  # fmt: skip
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (3 * 28 + 4 * 2, 3 * 28 + 4 * 2)  # 3x3 images, 2 px padding

    ok(genlab(tmp_path, "sample", f"ckpt_path={ckpt}", "mode=interpolate", "rows=2", "steps=5",
              "output=interp.npz"))  # fmt: skip
    images = np.load(tmp_path / "interp.npz")["images"]
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
    paths = images.reshape(2, 5, -1).astype(float)
    assert not np.array_equal(paths[0, 0], paths[0, -1])  # two ends of a path: two latents


@pytest.mark.slow  # the default suite stays under 10 min
def test_eval_scores_sample_quality_and_the_familys_own_terms(sweep_dir, tmp_path):
    ckpt = sweep_dir / "0" / "checkpoints" / "last.ckpt"
    out = tmp_path / "eval.json"
    ok(genlab(tmp_path, "eval", f"ckpt_path={ckpt}", f"output={out}", "num_test_images=40",
              "metrics.num_samples=20", "metrics.batch_size=20", "metrics.num_real=200",
              "metrics.kid_subset_size=10", "metrics.is_splits=2",
              f"paths.cache_dir={tmp_path / 'cache'}"))  # fmt: skip
    results = json.loads(out.read_text())
    for name in ("test/fid", "test/kid", "test/is", "test/precision", "test/recall"):
        assert np.isfinite(results[name]), name
    assert results["sample_quality_features"] == "classifier"
    assert results["test/num_images"] == 40  # ToyDiffusion.evaluation_terms
    assert 0 < results["test/denoise_mse"] < 2


def test_compare_the_two_runs_of_the_sweep(sweep_dir, capsys):
    from genlab.compare import main
    from test_compare import parse_report

    main([str(sweep_dir)])
    printed = capsys.readouterr().out
    assert "2 runs, sorted by val/fid" in printed and "ranked by group mean over seeds" in printed
    report = parse_report(sweep_dir / "report.html")
    header, group, *runs = report.rows  # the plugin's two seeds: one group, then its runs
    assert header[:4] == ["#", "run (seed group)", "seed", "val/fid (mean ± std)"]
    assert group[2] == "1, 2" and group[-1] == "2 completed"
    assert sorted(r[1] for r in runs) == ["seed=1", "seed=2"]
    assert {"val/fid", "train/loss", "val/loss"} <= set(report.charts)
    assert [img for img in report.images if img.get("class") == "samples"]


# -- longer checks -----------------------------------------------------------------------------
EXACT = [a for a in TINY if not a.startswith("trainer.max_epochs")] + [
    "trainer.deterministic=true",
    "seed=3",
]


@pytest.mark.slow  # three training processes
def test_resume_from_a_run_dir_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    ok(genlab(tmp_path, "train", *EXACT, "trainer.max_epochs=2", "hydra.run.dir=straight"))
    ok(genlab(tmp_path, "train", *EXACT, "trainer.max_epochs=1", "hydra.run.dir=first"))
    ok(genlab(tmp_path, "train", *EXACT, "trainer.max_epochs=2", f"ckpt_path={tmp_path / 'first'}",
              "hydra.run.dir=resumed"))  # fmt: skip
    expected = weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    got = weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert load_checkpoint(tmp_path / "first" / "checkpoints" / "last.ckpt")["global_step"] == 3
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["global_step"] == 6
    assert got.keys() == expected.keys()
    assert [k for k in expected if not torch.equal(got[k], expected[k])] == []


@pytest.mark.slow  # two DDP processes, each importing torch and Lightning
def test_ddp_cpu_trains_the_plugin_family(tmp_path):
    tiny_no_trainer = [a for a in TINY if a != "trainer=cpu"]
    result = ok(genlab(tmp_path, "train", *tiny_no_trainer, "trainer=ddp_cpu", "hydra.run.dir=ddp"))
    assert "GLOBAL_RANK: 1" in result.stdout + result.stderr  # really two processes
    ckpt = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    assert ckpt["genlab"]["family"] == "toy_diffusion"
    assert json.loads((tmp_path / "ddp" / "status.json").read_text())["status"] == "completed"


@pytest.mark.slow  # three short processes
def test_sample_refuses_options_the_family_lacks(sweep_dir, tmp_path):
    ckpt = sweep_dir / "0" / "checkpoints" / "last.ckpt"
    refused = genlab(tmp_path, "sample", f"ckpt_path={ckpt}", "truncation=0.7")
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "truncation" in refused.stderr and "temperature" in refused.stderr
    refused = genlab(tmp_path, "sample", f"ckpt_path={ckpt}", "mode=reconstruct")
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "reconstruct" in refused.stderr


@pytest.mark.slow  # a training process that stops at the registration check
def test_train_refuses_the_family_without_its_entry_point(tmp_path):
    """The package and its configs without the dist-info: importable, composable, refused."""
    import shutil

    bare = tmp_path / "site"
    for name in ("genlab_toy", "hydra_plugins"):
        shutil.copytree(PLUGINS / name, bare / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = plugin_env(tmp_path) | {"PYTHONPATH": str(bare)}
    result = subprocess.run(
        [sys.executable, "-m", "genlab.train", *TINY, "hydra.run.dir=run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "model._target_" in result.stderr and "genlab.models" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()

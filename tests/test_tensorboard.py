"""A sweep in TensorBoard, read back with TensorBoard's own event reader: runs named after
their overrides side by side in ``<sweep dir>/tensorboard``, sample grids in the Images tab,
``val/fid`` scalars, and an HParams view of the overrides and the model's hyperparameters
whose metrics are the final and best ``val/fid`` & co. (no ``hp_metric = -1``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata  # noqa: E402

from conftest import compose_config  # noqa: E402
from wandb_offline import read_offline_run  # noqa: E402

EPOCHS = 2
SWEEP = [
    "-m",
    "model=gan,vae",
    "seed=1,2",
    "trainer=cpu",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
    "callbacks.sample_grid.num_samples=16",
    "data.batch_size=16",
    "metrics.num_samples=100",
    "metrics.num_real=200",
    "metrics.metrics=[fid]",
    "hydra.sweep.dir=sweep",
]
NAMES = ["model=gan,seed=1", "model=gan,seed=2", "model=vae,seed=1", "model=vae,seed=2"]


def read(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def hparams_content(events: EventAccumulator, tag: str):
    try:
        content = events.PluginTagToContent(metadata.PLUGIN_NAME)[tag]
    except KeyError:
        return None
    if tag == metadata.EXPERIMENT_TAG:
        return metadata.parse_experiment_plugin_data(content)
    return metadata.parse_session_start_info_plugin_data(content)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``python -m genlab.train -m model=gan,vae seed=1,2 ...`` with the default loggers, no
    account, no network."""
    where = tmp_path_factory.mktemp("tb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(where), NETRC=str(where / ".netrc"), WANDB_CONFIG_DIR=str(where / "wb"))
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "genlab.train", *SWEEP],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return where / "sweep", done


def test_sweep_runs_are_named_by_their_overrides_with_images_and_fid(sweep):
    sweep_dir, done = sweep
    root = sweep_dir / "tensorboard"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == NAMES
    assert "tensorboard --logdir sweep/tensorboard" in done.stdout  # the summary says how
    for name in NAMES:
        events = read(root / name)
        tags = events.Tags()
        fid = events.Scalars("val/fid")
        assert len(fid) == EPOCHS and fid[0].step < fid[1].step
        grids = events.Images("samples/samples")
        assert len(grids) == EPOCHS and grids[0].width > 16 and grids[0].height > 16
        if name.startswith("model=vae"):
            assert "samples/reconstructions" in tags["images"]
        assert "hp_metric" not in tags["scalars"]
        best = events.Scalars("best/val/fid")
        assert best[-1].value == pytest.approx(min(e.value for e in fid))


def test_hparams_are_the_overrides_and_model_hyperparameters_with_fid_as_metric(sweep):
    sweep_dir, _ = sweep
    root = sweep_dir / "tensorboard"
    for name in NAMES:
        session = hparams_content(read(root / name), metadata.SESSION_START_INFO_TAG)
        hparams = session.hparams
        model, seed = name.split(",")
        assert hparams["model"].string_value == model.split("=")[1]
        assert hparams["seed"].number_value == float(seed.split("=")[1])
        assert "model.latent_dim" in hparams  # the model's own, resolved
        given = {o.split("=")[0].lstrip("~") for o in SWEEP}
        plumbing = [k for k in hparams if k.startswith(("callbacks", "logger", "paths"))]
        assert plumbing and set(plumbing) <= given  # only what the command line changed
        assert len(hparams) < 80  # not the whole config tree (~217 keys)
    experiment = hparams_content(read(root), metadata.EXPERIMENT_TAG)  # one for the sweep
    metrics = [info.name.tag for info in experiment.metric_infos]
    assert "val/fid" in metrics and "best/val/fid" in metrics
    assert "val/loss" in metrics  # the VAE's, declared once for the whole sweep
    first = [info.name for info in experiment.hparam_infos if info.differs]
    assert {"model", "seed"} <= set(first)  # TensorBoard lists differing columns first


def test_wandb_runs_of_the_sweep_sit_side_by_side_with_the_same_names(sweep):
    sweep_dir, done = sweep
    files = sorted(sweep_dir.glob("wandb/offline-run-*/run-*.wandb"))
    runs = [read_offline_run(f) for f in files]
    assert sorted(run["name"] for run in runs) == NAMES
    assert {run["group"] for run in runs} == {"sweep"}
    assert "wandb sync sweep/wandb/offline-run-*" in done.stdout
    vae = next(run for run in runs if run["name"] == "model=vae,seed=1")
    assert vae["config"]["model"] == '"vae"' and vae["config"]["seed"] == "1"


def test_a_single_run_declares_its_own_hparams_experiment(tmp_path):
    from genlab.train import train

    cfg = compose_config(
        tmp_path,
        "logger=tensorboard",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "~callbacks.rich_progress_bar",
        "data.batch_size=16",
        "metrics.num_samples=100",
        "metrics.num_real=200",
        "metrics.metrics=[fid]",
    )
    train(cfg)
    (run,) = [p for p in (tmp_path / "tensorboard").iterdir() if p.is_dir()]
    events = read(run)
    experiment = hparams_content(events, metadata.EXPERIMENT_TAG)
    assert [info.name.tag for info in experiment.metric_infos] == ["val/fid", "best/val/fid"]
    assert hparams_content(events, metadata.SESSION_START_INFO_TAG).hparams["seed"].number_value
    assert (tmp_path / "csv" / "metrics.csv").is_file()  # logger=tensorboard keeps the CSV

"""The hyperparameters every logger gets: the run's overrides with the values it used, the
seed, the model's own hyperparameters and the user's labels; not the whole config tree."""

from __future__ import annotations

from genlab.runs.naming import dir_name, run_name
from genlab.tracking.hparams import BestMetrics, run_hparams

RUN_CONFIG = {
    "seed": 42,
    "model": {"latent_dim": 16},
    "data": {"batch_size": 64},
    "trainer": {"max_epochs": 3},
    "callbacks": {"sample_grid": {"num_samples": 64}},
    "labels": {"owner": "me", "ticket": {"id": 42}},
}


def test_overrides_take_the_values_the_run_used_and_labels_are_columns():
    overrides = ["model=vae", "data.batch_size=64", "+trainer.max_epochs=3", "hydra.verbose=true"]
    hparams = run_hparams(RUN_CONFIG, overrides, {"model": "vae"}, {"latent_dim": 16, "b": [1]})
    assert hparams == {
        "model": "vae",  # a config group: its chosen option
        "data.batch_size": 64,  # resolved from the run's config
        "trainer.max_epochs": 3,
        "seed": 42,  # always: a run on the default seed shows it
        "model.latent_dim": 16,
        "model.b": "[1]",  # lists as text (TensorBoard takes scalars only)
        "labels.owner": "me",
        "labels.ticket.id": 42,
    }


def test_best_keeps_the_best_finite_value_in_the_metrics_direction():
    best = BestMetrics()
    for fid, is_ in [(30.0, 1.5), (float("nan"), 2.0), (20.0, 1.8), (25.0, 1.9)]:
        best.update({"val/fid": fid, "val/is": is_, "train/loss_d": 0.1})
    assert best.as_metrics() == {"best/val/fid": 20.0, "best/val/is": 2.0}
    assert best.metric_names() == ["val/fid", "val/is", "best/val/fid", "best/val/is"]


def test_run_names_are_the_overrides_and_safe_as_directory_names():
    assert run_name(["model=gan", "+seed=1", "~callbacks.sample_grid"], "x") == (
        "model=gan,seed=1,callbacks.sample_grid"
    )
    assert run_name([], "2026-12-07_02-21-53") == "2026-12-07_02-21-53"
    assert dir_name("data.path=/data/faces") == "data.path=_data_faces"
    long_a, long_b = "x=" + "a" * 300, "x=" + "a" * 299 + "b"
    assert len(dir_name(long_a).encode()) <= 120 and dir_name(long_a) != dir_name(long_b)
    assert dir_name("..") == "run"

"""Every config group option composes, and the image shape flows from data to model."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from conftest import CONF_DIR, compose_config


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def test_every_group_has_options():
    for group in ("model", "data", "trainer", "logger", "callbacks", "debug"):
        assert options(group), group


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("data", ["fashion_mnist_mini", "cifar10"])
def test_model_composes_and_reads_shape_from_data(tmp_path, model, data):
    cfg = compose_config(tmp_path, f"model={model}", f"data={data}")
    assert cfg.model.image_size == cfg.data.image_size
    assert cfg.model.channels == cfg.data.channels


@pytest.mark.parametrize(
    "group", ["data", "trainer", "logger", "callbacks", "debug", "experiment", "hparams_search"]
)
def test_group_options_compose(tmp_path, group):
    for option in options(group):
        extra = ["data.path=/nonexistent"] if (group, option) == ("data", "folder") else []
        cfg = compose_config(tmp_path, f"{group}={option}", *extra)
        assert cfg.trainer._target_.endswith("Trainer")


def test_any_trainer_argument_is_overridable(tmp_path):
    cfg = compose_config(
        tmp_path, "trainer.precision=bf16-mixed", "+trainer.accumulate_grad_batches=2"
    )
    assert cfg.trainer.precision == "bf16-mixed"
    assert cfg.trainer.accumulate_grad_batches == 2


def test_unknown_group_option_lists_the_options(tmp_path):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(tmp_path, "model=nope")
    assert "gan" in str(err.value) and "vae" in str(err.value)

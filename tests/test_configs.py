"""Every config group option composes, and the image shape flows from data to model."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing

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


GROUPS = ["data", "model", "trainer", "logger", "callbacks", "metrics", "debug", "experiment"]
GROUPS += ["hparams_search"]


@pytest.mark.parametrize("group", GROUPS)
def test_every_shipped_option_passes_the_key_checks(tmp_path, group):
    """Every shipped option (experiments, debug and sweep configs included) sets only keys
    genlab reads (genlab.checks.known_keys), and its run and model values pass."""
    from genlab.checks.known_keys import check_config_keys
    from genlab.checks.run_config import check_run_config
    from genlab.models.registry import check_model_config

    for option in options(group):
        extra = ["data.path=/nonexistent"] if (group, option) == ("data", "folder") else []
        cfg = compose_config(tmp_path, f"{group}={option}", *extra)
        check_config_keys(cfg, "train")
        if group in ("debug", "experiment", "hparams_search"):
            if cfg.trainer.get("accelerator") in ("gpu", "cuda"):
                cfg.trainer.accelerator = "cpu"  # this machine may have no GPU
            check_run_config(cfg)
            check_model_config(cfg.model)


@pytest.mark.parametrize("config_name", ["sample", "eval"])
def test_sample_and_eval_configs_pass_the_key_checks(tmp_path, config_name):
    from genlab.checks.known_keys import check_config_keys

    cfg = compose_config(tmp_path, "ckpt_path=x.ckpt", config_name=config_name)
    check_config_keys(cfg, config_name)


def test_any_trainer_argument_is_overridable(tmp_path):
    cfg = compose_config(
        tmp_path,
        "trainer.precision=bf16-mixed",
        "trainer.limit_train_batches=5",  # not in conf/trainer/default.yaml: no + needed
        "trainer.accumulate_grad_batches=2",
        "+trainer.limit_val_batches=3",  # the old spelling still works for null defaults
    )
    assert cfg.trainer.precision == "bf16-mixed"
    assert cfg.trainer.limit_train_batches == 5 and cfg.trainer.limit_val_batches == 3
    assert cfg.trainer.accumulate_grad_batches == 2


def test_trainer_schema_is_the_installed_lightning_signature(tmp_path):
    from lightning.pytorch import Trainer

    from genlab.checks.trainer_schema import trainer_arguments
    from genlab.compat import lightning_precision_values as precision_values

    signature = inspect.signature(Trainer.__init__).parameters
    expected = {
        name: p.default
        for name, p in signature.items()
        if name not in ("self", "callbacks", "logger") and p.default is not p.empty
    }
    assert trainer_arguments() == expected
    assert list(trainer_arguments()) == list(expected)  # signature order
    cfg = compose_config(tmp_path)
    assert set(expected) <= set(cfg.trainer)
    ours = {"_target_", *expected}
    assert set(cfg.trainer) == ours  # conf/trainer/default.yaml adds no key of its own
    from lightning.fabric.connector import _PRECISION_INPUT

    accepted = [v for lit in typing.get_args(_PRECISION_INPUT) for v in typing.get_args(lit)]
    assert list(precision_values()) == accepted


def test_composing_imports_neither_torch_nor_lightning(tmp_path):
    """A fresh interpreter composes through Hydra alone (the schema comes from the Hydra plugin
    hydra_plugins.genlab_trainer_schema, the signature from Lightning's source, not an import)."""
    code = f"""if True:
        import sys
        from hydra import compose, initialize_config_dir
        with initialize_config_dir(config_dir={str(CONF_DIR)!r}, version_base="1.3"):
            cfg = compose("train", overrides=["trainer.limit_train_batches=5", "trainer=ddp_cpu"])
        assert cfg.trainer.limit_train_batches == 5 and cfg.trainer.devices == 2
        heavy = sorted(m for m in ("torch", "lightning") if m in sys.modules)
        print("IMPORTED", heavy)
    """
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "IMPORTED []" in done.stdout


def test_misspelt_trainer_argument_is_an_unknown_key(tmp_path):
    with pytest.raises(ConfigCompositionException, match="limit_trian_batches"):
        compose_config(tmp_path, "trainer.limit_trian_batches=5")


def test_unknown_group_option_lists_the_options(tmp_path):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(tmp_path, "model=nope")
    assert "gan" in str(err.value) and "vae" in str(err.value)

"""Pins every private third-party API genlab relies on (genlab.compat): an upgrade of
Lightning, Hydra, wandb or torch-fidelity that changes one of them fails here, by name."""

from __future__ import annotations

import ast
import logging
import re
import warnings
from pathlib import Path

import pytest
import torch

import genlab
from genlab import compat

SRC = Path(genlab.__file__).parent


def test_no_module_but_compat_touches_private_third_party_names():
    """Private names of Lightning/Hydra/wandb/torch-fidelity/omegaconf are used only in
    genlab/compat.py (imports of `_x` names and `obj._x` attribute reads of those packages)."""
    private_modules = ("lightning", "hydra", "wandb", "torch_fidelity", "omegaconf", "torchmetrics")
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "compat.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                root = node.module.split(".")[0]
                if root in private_modules and (
                    any(part.startswith("_") for part in node.module.split("."))
                    or any(a.name.startswith("_") for a in node.names)
                ):
                    offenders.append(f"{path.relative_to(SRC)}: from {node.module} import ...")
            if isinstance(node, ast.Attribute) and node.attr in (
                "_signal_connector",
                "_hydra_subprocess_cmd",
                "_wandb_init",
                "_experiment",
                "_get_node",
                "_foreach_norm",
                "batch_progress",
                "_logger_connector",
            ):
                offenders.append(f"{path.relative_to(SRC)}: .{node.attr}")
    assert offenders == []


def _trainer(tmp_path, **kwargs):
    import lightning.pytorch as pl

    return pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **kwargs,
    )


def _module(steps: list, on_batch=None):
    import lightning.pytorch as pl

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.w = torch.nn.Parameter(torch.ones(1))

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward((self.w * batch[0]).sum())
            before = self.w.detach().clone()
            compat.optimizer_step_uncounted(self.trainer, opt)
            steps.append((self.trainer.global_step, bool((self.w != before).any())))
            if on_batch is not None:
                on_batch(self.trainer, batch_idx)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            data = torch.utils.data.TensorDataset(torch.ones(6, 1))
            return torch.utils.data.DataLoader(data, batch_size=1)

    return Module()


def test_uncounted_optimizer_step_updates_weights_without_counting(tmp_path):
    steps: list = []
    _trainer(tmp_path, max_epochs=1).fit(_module(steps))
    assert [count for count, _ in steps] == [0] * 6  # global_step never advanced
    assert all(changed for _, changed in steps)  # but every step was applied


def test_batches_processed_this_epoch_counts_the_epochs_batches(tmp_path):
    seen: list = []
    model = _module([], on_batch=lambda t, i: seen.append(compat.batches_processed_this_epoch(t)))
    _trainer(tmp_path, max_epochs=2).fit(model)
    assert seen == [0, 1, 2, 3, 4, 5] * 2


def test_lightning_writes_logs_on_its_logging_steps_only(tmp_path):
    written: list = []
    model = _module([], on_batch=lambda t, i: written.append(compat.lightning_writes_logs_now(t)))
    _trainer(tmp_path, max_epochs=1, log_every_n_steps=3).fit(model)
    assert written == [False, False, True, False, False, True]
    written.clear()  # fast_dev_run: Lightning writes every batch whatever log_every_n_steps is
    _trainer(tmp_path, fast_dev_run=4, log_every_n_steps=3).fit(model)
    assert written == [True] * 4


def test_graceful_stop_request_is_lightnings_sigterm_flag(tmp_path):
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    def stop_at(trainer, batch_idx):
        if batch_idx == 1:
            compat.request_graceful_stop(trainer)
            assert trainer.received_sigterm  # the public property reads the private flag

    steps: list = []
    with pytest.raises(SIGTERMException):
        _trainer(tmp_path, max_epochs=1).fit(_module(steps, on_batch=stop_at))
    assert len(steps) == 2  # stopped after the batch that asked


def test_ddp_strategy_without_wrapper_overrides_existing_private_methods():
    from lightning.pytorch.strategies import DDPStrategy

    strategy = compat.ddp_strategy_without_wrapper(print, print)
    for name in ("_setup_model", "_register_ddp_hooks", "training_step"):
        assert callable(getattr(DDPStrategy, name))  # what the subclass overrides still exists
        assert name in vars(strategy)


def test_lightning_hparams_flattening_and_wandb_logger_private_state(tmp_path, monkeypatch):
    from argparse import Namespace

    from lightning.pytorch.loggers import WandbLogger

    assert compat.lightning_hparams_to_flat_dict(Namespace(a=1, f=len)) == {"a": 1, "f": "len"}
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, id="abc123")
    kwargs = compat.wandb_logger_init_kwargs(logger)
    assert kwargs["id"] == "abc123"
    assert compat.wandb_logger_run(logger) is None  # not started by looking
    compat.forget_wandb_logger_run(logger)
    assert compat.wandb_logger_run(logger) is None


def test_hydra_private_helpers():
    modules = compat.hydra_launcher_modules()
    assert all(callable(m._hydra_subprocess_cmd) for m in modules)
    override = compat.parse_overrides(["seed=1,2"])[0]
    assert override.key_or_group == "seed" and override.is_sweep_override()
    compat.clear_global_hydra()  # safe when nothing is initialised


def test_one_config_repository_for_help_lists_the_same_groups_building_it_once():
    """``--help`` lists every config group; inside the block Hydra's repository is built once
    (not once per group) and every listing is what Hydra gives without it."""
    from hydra import initialize_config_dir
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.global_hydra import GlobalHydra

    conf = str(Path(genlab.__file__).parent / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        groups = ["", "model", "data", "trainer", "hydra/launcher", "metrics"]
        plain = {g: loader.get_group_options(g) for g in groups}
        built = []
        original = ConfigLoaderImpl._parse_overrides_and_create_caching_repo

        def counting(self, *args):
            built.append(args)
            return original(self, *args)

        ConfigLoaderImpl._parse_overrides_and_create_caching_repo = counting
        try:
            with compat.one_config_repository_for_help():
                shared = {g: loader.get_group_options(g) for g in groups}
        finally:
            ConfigLoaderImpl._parse_overrides_and_create_caching_repo = original
    assert shared == plain and "gan" in plain["model"] and "joblib" in plain["hydra/launcher"]
    assert len(built) == 1
    assert ConfigLoaderImpl._parse_overrides_and_create_caching_repo is original  # restored


# torch-fidelity's internals (compat.torch_fidelity_inception) are pinned by
# tests/test_weight_files.py::test_torch_fidelity_module_gets_verified_weights_and_loads_nothing


# -- Lightning's start-up noise (compat.silence_lightning_noise) -----------------------------
def _tip_records(tmp_path) -> list[logging.LogRecord]:
    """The records a Trainer start (no LitLogger) logs on Lightning's rank_zero logger."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger(compat.LIGHTNING_INFO_LOGGER)
    logger.addHandler(handler)
    try:
        _trainer(tmp_path)
    finally:
        logger.removeHandler(handler)
    return [r for r in records if "litlogger" in r.getMessage()]


def test_lightning_logs_the_litlogger_tip_where_the_filter_looks(tmp_path):
    """Lightning has no public switch for the tip; the filter matches its logger and text."""
    logger = logging.getLogger(compat.LIGHTNING_INFO_LOGGER)
    saved = list(logger.filters)
    logger.filters = [f for f in saved if not isinstance(f, compat.LitLoggerTipFilter)]
    try:
        tips = _tip_records(tmp_path)
        assert len(tips) == 1 and compat.LITLOGGER_TIP in tips[0].getMessage()
        assert tips[0].name == compat.LIGHTNING_INFO_LOGGER
        compat.silence_lightning_noise()
        compat.silence_lightning_noise()  # idempotent: one filter
        assert sum(isinstance(f, compat.LitLoggerTipFilter) for f in logger.filters) == 1
        assert _tip_records(tmp_path) == []
    finally:
        logger.filters = saved


def test_lightning_raises_the_leafspec_warning_from_its_own_module_and_only_that_is_silenced():
    from lightning.pytorch.utilities import _pytree

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _pytree._tree_flatten(1)  # what Lightning's loops do with every batch
    leaf = [w for w in caught if re.search(compat.LEAFSPEC_WARNING, str(w.message))]
    assert leaf and leaf[0].category is FutureWarning
    assert Path(leaf[0].filename).parts[-4:] == ("lightning", "pytorch", "utilities", "_pytree.py")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compat.silence_lightning_noise()
        _pytree._tree_flatten(1)
        warnings.warn("data.batch_size is larger than the dataset", UserWarning, stacklevel=1)
        warnings.warn("a FutureWarning of the user's own", FutureWarning, stacklevel=1)
    messages = [str(w.message) for w in caught]
    assert not any("LeafSpec" in m for m in messages), messages
    assert "data.batch_size is larger than the dataset" in messages
    assert "a FutureWarning of the user's own" in messages


def test_lightning_prints_its_info_lines_with_its_own_console_handler():
    """Why genlab.cli.entry.PrintedOnceFilter exists: Lightning's top-level package gives the
    ``lightning`` logger a console handler and lets records propagate to the root as well."""
    import lightning  # noqa: F401

    logger = logging.getLogger("lightning")
    consoles = [
        h
        for h in logger.handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]
    assert consoles and logger.propagate

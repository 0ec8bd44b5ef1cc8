"""Every private API of Lightning, Hydra, wandb and torch-fidelity that genlab relies on.

Nothing else in genlab touches a private name of a third-party package: where no public API
does the job, the use lives here, in one small function whose docstring names the private
symbol, and ``tests/test_compat.py`` pins the behaviour genlab relies on, so an upgrade fails
one named test instead of a training run. Imports are lazy (this module is imported by the
command-line start-up path, which must not import torch or Lightning).

Replaced by public APIs (no longer used): ``torch._foreach_norm`` (now
``torch.nn.utils.get_total_norm``), ``DictConfig._get_node`` (``DictConfig.items_ex``),
``lightning.pytorch.overrides.distributed._sync_module_states`` (``torch.distributed``
broadcasts, :func:`genlab.runs.distributed.broadcast_module_states`), torchmetrics attributes
mutated after construction (the metric objects are rebuilt instead).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any


# -- Lightning -------------------------------------------------------------------------------
def lightning_source(*parts: str) -> Path | None:
    """A file of the installed ``lightning`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("lightning")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root, *parts)
        if path.is_file():
            return path
    return None


def parse_source(path: Path | None) -> ast.Module | None:
    """The module ``path`` parsed with :mod:`ast` (None when unreadable)."""
    if path is None:
        return None
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


# Lightning's start-up noise a user cannot act on. Neither has a public switch (Lightning 2.6:
# the tip is an unconditional ``rank_zero_info`` in ``LoggerConnector.configure_logger``; the
# FutureWarning is torch's, raised by Lightning's own ``utilities/_pytree.py``).
LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"  # logs every rank_zero_info
LITLOGGER_TIP = "💡 Tip: For seamless cloud logging and experiment tracking, try installing"
LEAFSPEC_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
LIGHTNING_MODULES = r"lightning\."  # the warning is attributed to Lightning's calling module


class LitLoggerTipFilter(logging.Filter):
    """Drops exactly Lightning's advertisement for litlogger (printed at every Trainer start)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == LIGHTNING_INFO_LOGGER and LITLOGGER_TIP in record.getMessage())


def silence_lightning_noise() -> None:
    """Silence the litlogger tip (a filter on Lightning's ``rank_zero`` logger, matching the
    tip's text) and the ``LeafSpec`` FutureWarning torch raises from Lightning's own code (a
    warnings filter on that message, from ``lightning.*`` modules only). Every other record and
    warning, of Lightning or of the user's code, is untouched. Idempotent; needs no import of
    Lightning. Relies on the logger name, the tip's text and the warning's text (pinned by
    tests/test_compat.py)."""
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(f, LitLoggerTipFilter) for f in logger.filters):
        logger.addFilter(LitLoggerTipFilter())
    warnings.filterwarnings(
        "ignore", message=LEAFSPEC_WARNING, category=FutureWarning, module=LIGHTNING_MODULES
    )


_PRECISION_FILE = ("fabric", "plugins", "precision", "precision.py")
_PRECISION_LITERALS = ("_PRECISION_INPUT_INT", "_PRECISION_INPUT_STR", "_PRECISION_INPUT_STR_ALIAS")


@functools.cache
def lightning_precision_values() -> tuple[Any, ...]:
    """Every ``trainer.precision`` Lightning accepts, read from its source without importing it
    (for fast config errors). Private: the ``_PRECISION_INPUT*`` literals of
    ``lightning/fabric/plugins/precision/precision.py`` (fallback: importing
    ``lightning.fabric.connector._PRECISION_INPUT``)."""
    import typing

    tree = parse_source(lightning_source(*_PRECISION_FILE))
    literals: dict[str, list[Any]] = {}
    for node in tree.body if tree is not None else []:
        target = node.targets[0] if isinstance(node, ast.Assign) and node.targets else None
        if isinstance(target, ast.Name) and target.id in _PRECISION_LITERALS:
            if isinstance(node.value, ast.Subscript):  # Literal[...]
                items = node.value.slice
                elements = items.elts if isinstance(items, ast.Tuple) else [items]
                literals[target.id] = [ast.literal_eval(e) for e in elements]
    if set(literals) == set(_PRECISION_LITERALS):
        return tuple(v for name in _PRECISION_LITERALS for v in literals[name])
    values: list[Any] = []
    from lightning.fabric.connector import _PRECISION_INPUT  # fallback: imports Lightning

    for literal in typing.get_args(_PRECISION_INPUT):
        values.extend(typing.get_args(literal) or [literal])
    return tuple(values)


def request_graceful_stop(trainer: Any) -> None:
    """Make Lightning stop after the current batch as on SIGTERM (``trainer.received_sigterm``
    becomes True: the loops finish the step, then raise ``SIGTERMException`` so callbacks can
    save). Private: ``trainer._signal_connector.received_sigterm``; ``trainer.should_stop``
    (public) waits for the end of the epoch's checks instead and raises nothing."""
    trainer._signal_connector.received_sigterm = True


def optimizer_step_uncounted(trainer: Any, optimizer: Any) -> None:
    """Step a (LightningOptimizer-wrapped) torch ``optimizer`` through the strategy and the
    precision plugin (AMP grad scaling, closures) without advancing ``trainer.global_step``
    (which counts every ``LightningOptimizer.step``). Private: calling
    ``trainer.strategy.optimizer_step`` directly, bypassing ``LightningOptimizer.step``'s
    ``_on_before_step``/``_on_after_step`` hooks that the loop uses to count steps."""
    inner = getattr(optimizer, "optimizer", optimizer)
    trainer.strategy.optimizer_step(inner, closure=_no_closure)


def _no_closure() -> None:
    return None


def lightning_writes_logs_now(trainer: Any) -> bool:
    """Whether Lightning writes this training batch's step metrics to the loggers (every
    ``trainer.log_every_n_steps`` batches, when stopping, and every batch under
    ``fast_dev_run``); the same answer from ``on_train_batch_start`` to
    ``on_train_batch_end`` unless a callback stops training in between. Reads the private
    ``trainer._logger_connector.should_update_logs`` (Lightning has no public equivalent);
    True when it is missing, so a Lightning change costs speed, never a logged value."""
    if getattr(trainer, "fast_dev_run", False):  # _LoggerConnector.update_train_step_metrics
        return True
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))


def batches_processed_this_epoch(trainer: Any) -> int:
    """Training batches already processed in the current epoch (restored by Lightning from a
    mid-epoch checkpoint before the sampler is asked for indices). Private:
    ``trainer.fit_loop.epoch_loop.batch_progress.current.processed``."""
    return int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)


def ddp_strategy_without_wrapper(broadcast_module_states: Any, broadcast_buffers: Any) -> type:
    """A ``DDPStrategy`` subclass that does not wrap a module whose ``syncs_own_gradients``
    is True in ``DistributedDataParallel`` (that module all-reduces its own gradients; any
    other module is wrapped as usual). Private: the overridden ``DDPStrategy._setup_model``
    and ``DDPStrategy._register_ddp_hooks``. ``broadcast_module_states(module)`` /
    ``broadcast_buffers(module)`` copy rank 0's weights and buffers (at set-up, and the buffers
    before every training step, as DDP does)."""
    from lightning.pytorch.strategies import DDPStrategy
    from torch.nn.parallel import DistributedDataParallel

    class UnwrappedDDPStrategy(DDPStrategy):
        def _setup_model(self, model):
            if not getattr(model, "syncs_own_gradients", False):
                return super()._setup_model(model)
            broadcast_module_states(model)  # same initial weights and buffers (as DDP does)
            return model

        def _register_ddp_hooks(self) -> None:
            if isinstance(self.model, DistributedDataParallel):
                super()._register_ddp_hooks()

        def training_step(self, *args: Any, **kwargs: Any):
            if self.world_size > 1 and not isinstance(self.model, DistributedDataParallel):
                broadcast_buffers(self.lightning_module)
            return super().training_step(*args, **kwargs)

    return UnwrappedDDPStrategy


def lightning_hparams_to_flat_dict(params: Any) -> dict[str, Any]:
    """Hyperparameters as Lightning's own loggers prepare them (Namespace/dataclass -> dict,
    callables -> names). Private: ``lightning.fabric.utilities.logger._convert_params`` and
    ``_sanitize_callable_params``."""
    from lightning.fabric.utilities.logger import _convert_params, _sanitize_callable_params

    return _sanitize_callable_params(_convert_params(params))


def wandb_logger_init_kwargs(logger: Any) -> dict[str, Any]:
    """The ``wandb.init`` keyword arguments a Lightning ``WandbLogger`` will use (mutable).
    Private: ``WandbLogger._wandb_init``."""
    return logger._wandb_init


def wandb_logger_run(logger: Any) -> Any:
    """The logger's wandb run if it started one, else None (without starting one, which the
    public ``experiment`` property would). Private: ``WandbLogger._experiment``."""
    return logger._experiment


def forget_wandb_logger_run(logger: Any) -> None:
    """Drop the logger's finished run so that the next use starts a new one. Private:
    ``WandbLogger._experiment``."""
    logger._experiment = None


# -- Hydra -----------------------------------------------------------------------------------
def hydra_launcher_modules() -> list[Any]:
    """Lightning's modules that build the command re-running a Hydra job on DDP ranks > 0
    (each holds a module-level ``_hydra_subprocess_cmd``). Private: that function."""
    import lightning.fabric.strategies.launchers.subprocess_script as fabric_launcher
    import lightning.pytorch.strategies.launchers.subprocess_script as pl_launcher

    return [pl_launcher, fabric_launcher]


def parse_overrides(texts: list[str]) -> list[Any]:
    """Command-line overrides parsed by Hydra's own grammar (each with ``key_or_group``,
    ``value()``, ``is_sweep_override()``). Semi-private: ``hydra.core.override_parser.
    overrides_parser.OverridesParser`` (used by Hydra's sweeper plugins, not in the user docs)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(texts)


def replace_hydra_launch_command(build: Any) -> None:
    """Make Lightning's DDP subprocess launcher build the command of ranks > 0 with
    ``build(local_rank, original)`` (``original`` = Lightning's own builder). Private: the
    module-level ``_hydra_subprocess_cmd`` of Lightning's two ``subprocess_script`` modules."""
    modules = hydra_launcher_modules()
    original = getattr(modules[0]._hydra_subprocess_cmd, "genlab_original", None)
    original = original or modules[0]._hydra_subprocess_cmd

    def command(local_rank: int):
        return build(local_rank, original)

    command.genlab_original = original
    for module in modules:
        module._hydra_subprocess_cmd = command


@contextlib.contextmanager
def one_config_repository_for_help() -> Iterator[None]:
    """Within this block Hydra builds its config repository once per (config name, overrides)
    instead of once per config group. ``--help`` lists every group (~100 with Hydra's and the
    plugins' own) and for each one Hydra deep-copies the whole repository (every ConfigStore
    schema): about a second of CPU on a small machine. Private: ``ConfigLoaderImpl.
    _parse_overrides_and_create_caching_repo`` (hydra/_internal/config_loader_impl.py)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    original = ConfigLoaderImpl._parse_overrides_and_create_caching_repo
    built: dict[tuple, Any] = {}

    def once(self, config_name, overrides):
        key = (id(self), config_name, tuple(overrides))
        if key not in built:
            built[key] = original(self, config_name, overrides)
        return built[key]

    ConfigLoaderImpl._parse_overrides_and_create_caching_repo = once
    try:
        yield
    finally:
        ConfigLoaderImpl._parse_overrides_and_create_caching_repo = original


def clear_global_hydra() -> None:
    """Forget a Hydra initialisation left behind by ``@hydra.main`` (so ``initialize_config_dir``
    can run again in the same process). ``GlobalHydra`` is Hydra's documented way to do this
    in tests; it lives in ``hydra.core``, not the top-level API."""
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()


# -- torch-fidelity --------------------------------------------------------------------------
def torch_fidelity_inception(state_dict: dict[str, Any], features: list[str]) -> Any:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` holding ``state_dict``, with torch-fidelity
    loading nothing itself.

    The only use of torch-fidelity internals in genlab: its constructor always loads weights,
    from ``feature_extractor_weights_path`` with ``torch.load(weights_only=False)`` or, without a
    path, with ``torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url`` (a
    module-level name). That name is replaced, for the duration of the constructor, by a function
    returning the already verified ``state_dict``; the constructor's strict ``load_state_dict``
    then checks every key and shape.
    """
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    if not hasattr(tfi, "load_state_dict_from_url"):
        raise RuntimeError(
            "unsupported torch-fidelity version: genlab cannot give its Inception module "
            "pre-verified weights (use metrics.inception_net=fid_helper)"
        )
    calls: list[str] = []

    def verified_weights(url: str, *args, **kwargs) -> dict[str, Any]:
        calls.append(url)
        return state_dict

    with mock.patch.object(tfi, "load_state_dict_from_url", verified_weights):
        net = tfi.FeatureExtractorInceptionV3(
            "inception-v3-compat", features, feature_extractor_weights_path=None
        )
    if len(calls) != 1:
        raise RuntimeError("torch-fidelity's Inception did not take genlab's verified weights")
    return net

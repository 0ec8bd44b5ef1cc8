"""Run-level helpers: threads, config printing, user-facing error handling."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from genlab.utils.errors import ConfigError

log = logging.getLogger(__name__)


def configure_threads(cfg: DictConfig) -> None:
    """Give each process its share of the CPU cores (oversubscription slows small nets ~10x).

    ``num_threads`` in the config wins; otherwise cores / processes per node on CPU.
    """
    threads = cfg.get("num_threads")
    if threads is None:
        trainer = cfg.get("trainer", {})
        on_cpu = trainer.get("accelerator") == "cpu" or not torch.cuda.is_available()
        devices = trainer.get("devices", 1)
        procs = devices if isinstance(devices, int) and devices > 0 else 1
        threads = max(1, (os.cpu_count() or 1) // procs) if on_cpu else None
    if threads:
        torch.set_num_threads(int(threads))


def print_config(cfg: DictConfig) -> None:
    """Print the composed config as a rich tree and save it beside the run as config_tree.log."""
    from rich import print as rprint
    from rich.syntax import Syntax

    text = OmegaConf.to_yaml(cfg, resolve=False)
    rprint(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    output_dir = cfg.get("paths", {}).get("output_dir")
    if output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "config_tree.log").write_text(text)


def find_config_error(err: BaseException | None) -> ConfigError | None:
    """The ConfigError behind ``err`` (Hydra's instantiate wraps it), or None."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def exit_on_config_error(task: Callable) -> Callable:
    """Wrap a Hydra task: a ConfigError becomes one clear line on stderr and exit code 2, a
    diverged run (``genlab.callbacks.divergence.DivergenceError``) one line and exit code 3
    (no traceback wall; the full traceback with ``HYDRA_FULL_ERROR=1``)."""

    @functools.wraps(task)
    def wrapper(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        except Exception as err:
            from genlab.callbacks.divergence import DivergenceError
            from genlab.utils.cli import EXIT_BAD_INPUT, EXIT_DIVERGED

            full = os.environ.get("GENLAB_FULL_ERROR", os.environ.get("HYDRA_FULL_ERROR"))
            if full == "1":
                raise
            if isinstance(err, DivergenceError):
                print(f"genlab: error: {err}", file=sys.stderr)
                raise SystemExit(EXIT_DIVERGED) from None
            config_error = find_config_error(err)
            if config_error is None:
                raise
            print(f"genlab: error: {config_error}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None

    return wrapper

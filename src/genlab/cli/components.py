"""Instantiate lists of callbacks/loggers from config groups (lightning-hydra-template style)."""

from __future__ import annotations

import logging

import hydra
from lightning.pytorch import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def _instantiate_group(group: DictConfig | None, kind: str) -> list:
    objects = []
    for name, node in (group or {}).items():
        if isinstance(node, DictConfig) and "_target_" in node:
            log.info(f"Instantiating {kind} {name} <{node._target_}>")
            objects.append(hydra.utils.instantiate(node))
    return objects


def instantiate_callbacks(callbacks_cfg: DictConfig | None) -> list[Callback]:
    """Every node with a ``_target_`` in the ``callbacks`` group."""
    return _instantiate_group(callbacks_cfg, "callback")


def instantiate_loggers(logger_cfg: DictConfig | None) -> list[Logger]:
    """Every node with a ``_target_`` in the ``logger`` group."""
    return _instantiate_group(logger_cfg, "logger")

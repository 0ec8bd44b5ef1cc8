"""Rebuild a datamodule from a config read from a file, never running what the file names.

A checkpoint stores the run's data config (``checkpoint["genlab"]["run_config"]["data"]``, e.g.
``{"_target_": "genlab.data.MNISTDataModule", "batch_size": 64, ...}``). ``genlab.eval`` and
``genlab.sample`` must rebuild that datamodule, but a checkpoint is data from elsewhere: its
``_target_`` must not choose a callable (``hydra.utils.instantiate`` would import and call
``pathlib.Path.write_text`` or ``torch.load`` just as readily). So the ``_target_`` is only a
key into :data:`DATAMODULE_CLASSES`, genlab's own datamodules keyed by the ``_target_`` strings
of ``conf/data/*.yaml``, and the other keys become plain keyword arguments checked against the
class's ``__init__`` signature. Anything else is refused with a :class:`ConfigError` naming the
key and what is allowed.

A checkpoint chooses no path that is read and no number of worker processes: the stored
:data:`USER_ONLY_KEYS` (``data_dir``, ``path``, ``num_workers``) are dropped and taken from the
user's command line and config only (``data.data_dir``, ``data.path``, ``data.num_workers``), and
its ``download`` flag is ignored. Data that is not there locally is a ConfigError naming
``data.data_dir`` (torchvision datasets) or ``data.path`` (image folders).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from lightning.pytorch import LightningDataModule

from genlab.checks.errors import ConfigError
from genlab.data.bundled import FashionMNISTMiniDataModule
from genlab.data.folder import FolderDataModule
from genlab.data.shapes2d import Shapes2DDataModule
from genlab.data.stacked_mnist import StackedMNISTDataModule
from genlab.data.torchvision_data import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule

# ``_target_`` (as in conf/data/*.yaml and so in every checkpoint) -> class.
DATAMODULE_CLASSES: dict[str, type[LightningDataModule]] = {
    f"genlab.data.{cls.__name__}": cls
    for cls in (
        CIFAR10DataModule,
        FashionMNISTDataModule,
        FashionMNISTMiniDataModule,
        FolderDataModule,
        MNISTDataModule,
    )
}
DATAMODULE_CLASSES["genlab.data.shapes2d.Shapes2DDataModule"] = Shapes2DDataModule  # data=shapes2d
# conf/data/stacked_mnist.yaml names its module (genlab.data's __init__ does not export it)
DATAMODULE_CLASSES["genlab.data.stacked_mnist.StackedMNISTDataModule"] = StackedMNISTDataModule
PLAIN_TYPES = (str, int, float, bool, type(None))
#: Keys of a stored data config that pick what is read or how many processes start: taken only
#: from the user (``overrides``), never from a checkpoint (:func:`datamodule_from_checkpoint`).
USER_ONLY_KEYS = ("data_dir", "path", "num_workers")


def _is_plain(value: Any) -> bool:
    """str/int/float/bool/None, or a list/tuple of those (no dicts, no objects)."""
    if isinstance(value, PLAIN_TYPES):
        return True
    return isinstance(value, list | tuple) and all(isinstance(v, PLAIN_TYPES) for v in value)


def _parameters(cls: type) -> list[str]:
    """The named keyword parameters of ``cls.__init__`` (no ``*args`` / ``**kwargs``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(cls).parameters.values() if p.kind in kinds]


def datamodule_from_config(
    data_cfg: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    key: str = "ckpt_path",
) -> LightningDataModule:
    """A genlab datamodule from a data config that came from a file (checkpoint, run dir).

    ``data_cfg["_target_"]`` must be a key of :data:`DATAMODULE_CLASSES`; every other key a
    parameter of that class's ``__init__`` with a plain value (str/int/float/bool/None or a
    list of those). ``overrides`` (the user's ``data.*`` keys; ``None`` values are ignored)
    replace keys before the checks. ``key`` names where the config came from (in messages).
    Nothing named in the config is imported or called: the class comes from the fixed table,
    the values are passed as they are (no interpolation, no nested ``_target_``).

    Raises:
        ConfigError: naming ``data.<key>`` and the allowed values, for any other content.
    """
    source = f"(the data config read from {key}; genlab builds only its own datamodules from it)"
    if not isinstance(data_cfg, Mapping):
        raise ConfigError("data", type(data_cfg).__name__, f"a mapping {source}")
    merged = dict(data_cfg)
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    target = merged.pop("_target_", None)
    if not isinstance(target, str) or target not in DATAMODULE_CLASSES:
        names = ", ".join(repr(name) for name in sorted(DATAMODULE_CLASSES))
        raise ConfigError("data._target_", target, f"one of {names} {source}")
    cls = DATAMODULE_CLASSES[target]
    allowed = _parameters(cls)
    kwargs: dict[str, Any] = {}
    for name, value in merged.items():
        if not isinstance(name, str) or name not in allowed:
            keys = ", ".join(allowed)
            raise ConfigError(f"data.{name}", value, f"the keys of {target}: {keys} {source}")
        if not _is_plain(value):
            shown = value if isinstance(value, Mapping) else type(value).__name__
            raise ConfigError(
                f"data.{name}", shown, f"a str, number, bool, null or a list of those {source}"
            )
        kwargs[name] = list(value) if isinstance(value, tuple) else value
    return cls(**kwargs)


def datamodule_from_checkpoint(
    checkpoint: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    key: str = "ckpt_path",
) -> LightningDataModule:
    """The datamodule a genlab checkpoint was trained on, via :func:`datamodule_from_config`.

    The stored :data:`USER_ONLY_KEYS` are dropped: the data location and the worker count come
    only from ``overrides`` (the user's ``data.*``), else the class defaults (``data_dir="data"``,
    ``num_workers=0``); an image folder needs the user's ``data.path`` (ConfigError naming it).
    The checkpoint's own ``download`` flag is ignored (a file from elsewhere does not decide to
    fetch data into a directory it names): downloading happens only when ``overrides`` say
    ``download: true``.
    """
    run_config = (checkpoint.get("genlab") or {}).get("run_config") or {}
    data_cfg = run_config.get("data") if isinstance(run_config, Mapping) else None
    if data_cfg is None:
        raise ConfigError(key, "(no data config)", "a checkpoint written by genlab.train")
    if isinstance(data_cfg, Mapping):
        data_cfg = {k: v for k, v in data_cfg.items() if k not in USER_ONLY_KEYS}
        if "download" in data_cfg:
            data_cfg["download"] = False
        user = {k: v for k, v in (overrides or {}).items() if v is not None}
        target = data_cfg.get("_target_")
        if isinstance(target, str) and DATAMODULE_CLASSES.get(target) is FolderDataModule:
            if "path" not in user:
                raise ConfigError(
                    "data.path",
                    None,
                    "the directory of the images this checkpoint was trained on, on this machine "
                    "(genlab.sample and genlab.eval never read a path from a checkpoint): "
                    "data.path=/some/dir",
                )
    return datamodule_from_config(data_cfg, overrides, key)

"""Every key of a composed config is one that genlab reads: a key nothing reads is refused.

Hydra lets ``+key=value`` add any key, so ``+lr=0.1``, ``+foo=bar`` or ``+metrics.num_sample=50``
would be accepted and silently ignored. :func:`check_config_keys` refuses such a key with a
"did you mean" and the keys that are there, before anything slow is imported. What is known:

* the top level: the keys of ``conf/<config>.yaml`` and its config groups;
* ``labels.*`` (``genlab.train``): free-form, the user's own labels (``+labels.owner=me``),
  stored with the run and never read by genlab;
* plain groups (``metrics``, ``paths``): the keys of the group's option files;
* ``callbacks.<name>`` and ``logger.<name>``: a node with a ``_target_`` (or null); a key added
  to it (or to ``data``) with ``+`` must be an argument of that class, read from its signature
  (the class is imported for this, as instantiation would, only when a key was added);
* ``model``, ``trainer`` and ``hydra`` have their own checks (the family's typed config,
  Lightning's Trainer arguments, Hydra) and ``genlab.eval``'s ``data`` overrides are checked
  against the checkpoint's data config.

A key that an interpolation (``${...}``) elsewhere in the config reads is read. Values of the
top-level and plain-group keys must also have the shape of their default (a single value, a
list or a mapping).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from genlab.checks.errors import ConfigError, UnknownKeyError
from genlab.checks.values import describe_shape

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
LABELS = "labels"  # the free-form namespace of genlab.train (conf/train.yaml)

FREE, PLAIN, TARGET, TARGETS, OWN = "free", "plain", "target", "targets", "own"
#: How each top-level node of a CLI's config is checked (a node not listed: its own keys only).
ROLES: dict[str, dict[str, str]] = {
    "train": {
        LABELS: FREE,
        "metrics": PLAIN,
        "paths": PLAIN,
        "callbacks": TARGETS,
        "logger": TARGETS,
        "data": TARGET,
        "model": OWN,
        "trainer": OWN,
        "hydra": OWN,
    },
    "eval": {"metrics": PLAIN, "paths": PLAIN, "data": OWN, "hydra": OWN},
    "sample": {"hydra": OWN},
}
_KIND = {"callbacks": "callback", "logger": "logger"}

#: Classes whose ``**kwargs`` go to another callable (the keys it takes are theirs too).
KWARGS_SINKS: dict[str, tuple[str, ...]] = {
    "lightning.pytorch.loggers.wandb.WandbLogger": ("wandb.init",),
    "lightning.pytorch.loggers.tensorboard.TensorBoardLogger": (
        "torch.utils.tensorboard.SummaryWriter",
        "tensorboardX.SummaryWriter",
    ),
    "genlab.callbacks.sample_quality.SampleQualityCallback": ("genlab.metrics.SampleQuality",),
}
_HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")
_REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*\}")


def _load(path: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return loaded if isinstance(loaded, dict) else {}


def _group_names(defaults: Any) -> list[str]:
    """The config groups of a defaults list (``data``, ``model``, ``hydra``, ...)."""
    names = []
    for entry in defaults or []:
        if isinstance(entry, dict):
            for key in entry:
                name = str(key).split()[-1]  # "override hydra/job_logging" -> hydra/job_logging
                names.append(name.split("@")[0].split("/")[0])
    return [n for n in names if n and n != "_self_"]


@functools.cache
def top_level_defaults(config_name: str) -> tuple[dict[str, Any], frozenset[str]] | None:
    """(the values of ``conf/<config_name>.yaml``'s own keys, the names of its groups), or None
    for a config genlab does not ship."""
    path = CONF_DIR / f"{config_name}.yaml"
    if not path.is_file():
        return None
    loaded = _load(path)
    groups = frozenset(_group_names(loaded.pop("defaults", None)))
    loaded.pop("hydra", None)
    return loaded, groups


@functools.cache
def group_defaults(group: str) -> dict[str, Any]:
    """Every key of the options of a plain config group (``conf/<group>/*.yaml``) and its value
    in ``default.yaml`` (else in the first option that has it)."""
    keys: dict[str, Any] = {}
    files = sorted((CONF_DIR / group).glob("*.yaml"), key=lambda p: (p.stem != "default", p))
    for path in files:
        loaded = _load(path)
        loaded.pop("defaults", None)
        for key, value in loaded.items():
            keys.setdefault(str(key), value)
    return keys


def _references(node: Any) -> set[str]:
    """The config keys that interpolations anywhere in ``node`` read (``${paths.root_dir}``)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, str) and "${" in item:
            found.update(_REFERENCE.findall(item))
    return found


def _read_by_interpolation(key: str, references: set[str]) -> bool:
    return any(ref == key or ref.startswith(key + ".") for ref in references)


def leaf_paths(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key path in ``node`` (a dict or a DictConfig, whose interpolations are left
    unresolved), nodes included: ``{"a": {"b": 1}}`` -> ``["a", "a.b"]``."""
    if hasattr(node, "items_ex"):  # a DictConfig: items() would resolve ${...}
        items = node.items_ex(resolve=False)
    elif isinstance(node, Mapping):
        items = node.items()
    else:
        return []
    paths = []
    for key, child in items:
        full = f"{prefix}.{key}" if prefix else str(key)
        paths.append(full)
        paths.extend(leaf_paths(child, full))
    return paths


def _close(key: str, siblings: Iterable[str], prefix: str, whole: Any = None) -> list[str]:
    """Siblings spelled like ``key``, then keys anywhere in ``whole`` named (or spelled) like it
    (``lr`` -> ``model.optimizer_g.lr``)."""
    siblings = [s for s in siblings if not s.startswith("_")]
    close = [f"{prefix}{s}" for s in difflib.get_close_matches(key, siblings)]
    if whole is not None:
        paths = [p for p in leaf_paths(whole) if "._" not in p and not p.startswith("_")]
        leaves = {p.rsplit(".", 1)[-1] for p in paths if "." in p}
        names = set(difflib.get_close_matches(key, sorted(leaves), 3, 0.8))
        close += [p for p in paths if "." in p and p.rsplit(".", 1)[-1] in names]
    return close


def _shape(value: Any) -> str:
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    return "scalar"


def _check_shape(key: str, value: Any, default: Any) -> None:
    """``value`` has the shape of ``default`` (a null default: anything; null: always)."""
    if default is None or value is None or _shape(value) == _shape(default):
        return
    shape = _shape(default)
    names = [] if shape != "scalar" else [_type_name(default)]
    raise ConfigError(key, value, describe_shape(key, shape, True, names, default))


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return "a string"


def check_config_keys(
    cfg: Any, config_name: str = "train", overrides: list[str] | None = None
) -> None:
    """Refuse every key of ``cfg`` (the composed config of ``genlab.<config_name>``) that
    genlab does not read, and a value of the wrong shape, with one ConfigError naming the key.

    ``overrides`` are the command-line overrides (default: Hydra's, when a job is running):
    the keys they add with ``+`` to a ``_target_`` node are checked against its arguments."""
    from omegaconf import DictConfig, OmegaConf

    shipped = top_level_defaults(config_name)
    if shipped is None or not isinstance(cfg, DictConfig | dict):
        return
    raw = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    roles = ROLES.get(config_name, {})
    defaults, groups = shipped
    references = _references(raw)
    known = set(defaults) | set(groups) | set(roles)
    for key, value in raw.items():
        key = str(key)
        if key in defaults:
            _check_shape(key, value, defaults[key])
        elif key not in known and not _read_by_interpolation(key, references):
            listed = sorted((set(raw) & known) | {k for k, r in roles.items() if r == FREE})
            allowed = f"a key of the {config_name} config: {', '.join(listed)}"
            if roles.get(LABELS) == FREE:
                allowed += f"; your own labels go under {LABELS}: +{LABELS}.{key}={value}"
            raise UnknownKeyError(key, value, allowed, _close(key, known, "", raw))
    for name, role in roles.items():
        node = raw.get(name)
        if not isinstance(node, Mapping):
            continue
        if role == PLAIN:
            _check_plain_group(name, node, references)
        elif role == TARGETS:
            _check_target_collection(name, node)
    if overrides is None:
        overrides = _hydra_overrides()
    _check_added_arguments(raw, roles, overrides)


def _check_plain_group(group: str, node: Mapping, references: set[str]) -> None:
    known = group_defaults(group)
    for key, value in node.items():
        key = str(key)
        if key in known:
            _check_shape(f"{group}.{key}", value, known[key])
        elif not _read_by_interpolation(f"{group}.{key}", references):
            allowed = f"a key of {group}: {', '.join(sorted(known))}"
            raise UnknownKeyError(f"{group}.{key}", value, allowed, _close(key, known, group + "."))


def _check_target_collection(group: str, node: Mapping) -> None:
    """Each entry of ``callbacks``/``logger`` is a node with a ``_target_``, or null (off)."""
    kind = _KIND.get(group, "node")
    named = [str(k) for k, v in node.items() if isinstance(v, Mapping) and "_target_" in v]
    shipped = group_defaults(group)  # the nodes of conf/<group>/*.yaml
    for name, value in node.items():
        name = str(name)
        if value is None or (isinstance(value, Mapping) and "_target_" in value):
            continue
        if name in shipped:  # e.g. callbacks.model_checkpoint=5
            allowed = (
                f"a {kind} node (set its keys: {group}.{name}.<argument>=<value>) or null "
                f"to turn it off"
            )
            raise ConfigError(f"{group}.{name}", value, allowed)
        allowed = (
            f"one of {group}.{{{','.join(named)}}} (a {kind} node), null to turn one off, or a "
            f"new {kind} with its class: +{group}.{name}._target_=<class> (then its arguments)"
        )
        close = _close(name, named, group + ".")
        if isinstance(value, Mapping):  # e.g. +callbacks.sampl_grid.every_n_epochs=2
            inner = [f"{c}.{k}" for c in close for k in value]
            raise UnknownKeyError(f"{group}.{name}", value, allowed, inner or close)
        raise UnknownKeyError(f"{group}.{name}", value, allowed, close)


def _hydra_overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return [str(o) for o in HydraConfig.get().overrides.task]
    except Exception:  # noqa: BLE001 - no Hydra job: nothing was added on a command line
        pass
    return []


def added_keys(overrides: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, value)`` of every ``+key=value`` / ``++key=value`` override that sets a value
    (not ``+group=option``)."""
    added = []
    for text in overrides:
        if not text.startswith("+") or "=" not in text:
            continue
        key, _, value = text.lstrip("+").partition("=")
        key = key.strip()
        if not key or "/" in key or "@" in key or (CONF_DIR / key.replace(".", "/")).is_dir():
            continue
        added.append((key, value))
    return added


def _check_added_arguments(raw: Mapping, roles: Mapping[str, str], overrides: list[str]) -> None:
    """A key added with ``+`` to a ``_target_`` node (``data``, ``callbacks.<name>``,
    ``logger.<name>``) is an argument of its class."""
    for key, value in added_keys(overrides):
        parts = key.split(".")
        role = roles.get(parts[0])
        depth = {TARGET: 1, TARGETS: 2}.get(role or "")
        if depth is None or len(parts) <= depth:
            continue
        node_path, argument = ".".join(parts[:depth]), parts[depth]
        node = raw
        for part in parts[:depth]:
            node = node.get(part) if isinstance(node, Mapping) else None
        target = node.get("_target_") if isinstance(node, Mapping) else None
        if argument.startswith("_") or not isinstance(target, str):
            continue
        accepted = accepted_arguments(target)
        if accepted is None or argument in accepted:
            continue
        if len(parts) == depth + 1:  # the parsed value (1, not '1'), as other errors show it
            value = node.get(argument, value)
        close = [f"{node_path}.{c}" for c in difflib.get_close_matches(argument, accepted)]
        allowed = f"an argument of {target}: {', '.join(sorted(accepted))}"
        raise UnknownKeyError(f"{node_path}.{argument}", value, allowed, close)


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"


def _keyword_names(func: Any) -> tuple[set[str], bool] | None:
    """(keyword parameter names, takes ``**kwargs``) of a callable, or None if unreadable."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    names = {
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    }
    return names, any(p.kind == p.VAR_KEYWORD for p in parameters)


def _import(path: str) -> Any:
    try:
        import hydra.utils

        return hydra.utils.get_object(path)
    except Exception:  # noqa: BLE001 - not importable: instantiation reports it
        return None


@functools.cache
def accepted_arguments(target: str) -> frozenset[str] | None:
    """The keyword arguments ``target`` (a ``_target_`` path) takes, or None where that cannot
    be told (not importable, or ``**kwargs`` that go nowhere genlab knows). ``**kwargs`` passed
    on to the base class are followed along the MRO, and to :data:`KWARGS_SINKS`."""
    obj = _import(target)
    if obj is None:
        return None
    if not isinstance(obj, type):
        found = _keyword_names(obj)
        if found is None or found[1]:
            return None
        return frozenset(found[0]) - set(_HYDRA_KEYS)
    names: set[str] = set()
    for klass in obj.__mro__:
        if klass is object:
            return None  # **kwargs all the way up: cannot tell
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        found = _keyword_names(init)
        if found is None:
            return None
        names |= found[0]
        if not found[1]:
            return frozenset(names)
        sinks = KWARGS_SINKS.get(_qualified(klass))
        if sinks:
            sink = next((s for s in map(_import, sinks) if s is not None), None)
            found = _keyword_names(sink) if sink is not None else None
            if found is None or found[1]:
                return None
            return frozenset(names | found[0])
    return None

"""Small helpers for typed model configs (pythae style): build from kwargs, validate with names."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from genlab.checks.errors import ConfigError, UnknownKeyError


def to_plain(value: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists (checkpoints must hold only plain data)."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def config_from_kwargs(config_class: type, kwargs: dict[str, Any], prefix: str = "model"):
    """Build ``config_class`` from keyword args; an unknown key names the allowed ones (and the
    keys spelled like it), a mapping where a single value belongs or the reverse names the key
    and what it takes (:func:`check_field_shapes`)."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    for key in kwargs:
        if key not in fields:
            close = close_keys(config_class, key, prefix, kwargs)
            raise UnknownKeyError(f"{prefix}.{key}", kwargs[key], f"keys {sorted(fields)}", close)
    check_field_shapes(config_class, kwargs, prefix)
    return config_class(**{k: to_plain(v) for k, v in kwargs.items()})


def close_keys(
    config_class: type, key: str, prefix: str = "model", values: dict[str, Any] | None = None
) -> list[str]:
    """Fields spelled like ``key``, and keys of the dict fields named or spelled like ``key``
    (``lr`` or ``lrr`` -> ``model.optimizer_g.lr``); ``values`` (the given keyword arguments)
    win over the fields' defaults."""
    fields = dataclasses.fields(config_class)
    close = [f"{prefix}.{k}" for k in difflib.get_close_matches(key, [f.name for f in fields])]
    for f in fields:
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        given = (values or {}).get(f.name, default)
        node = given if isinstance(given, Mapping) else default
        if isinstance(node, Mapping):
            names = [str(k) for k in node]
            for name in [key] if key in names else difflib.get_close_matches(key, names, 2, 0.75):
                close.append(f"{prefix}.{f.name}.{name}")
    return close


# -- the shape of a value: a mapping (config node), a list or a single value ----------------
_SCALARS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _shape_of(value: Any) -> str:
    if isinstance(value, Mapping | DictConfig):
        return "mapping"
    if isinstance(value, list | tuple | ListConfig):
        return "list"
    return "scalar"


def _expected(hint: Any) -> tuple[str | None, bool, list[str]]:
    """(shape, null allowed, names of the scalar types) of a type hint; shape None = any."""
    if hint is Any:
        return None, True, []
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        parts = [_expected(a) for a in args if a is not type(None)]
        shapes = {shape for shape, _, _ in parts}
        nullable = type(None) in args or any(n for _, n, _ in parts)
        if len(shapes) != 1 or None in shapes:
            return None, True, []
        return shapes.pop(), nullable, [name for _, _, names in parts for name in names]
    if hint is type(None):
        return None, True, []
    if hint in (dict, Mapping) or origin in (dict, Mapping):
        return "mapping", False, []
    if hint in (list, tuple) or origin in (list, tuple):
        return "list", False, []
    if hint in _SCALARS:
        return "scalar", False, [_SCALARS[hint]]
    return None, True, []


@functools.cache
def field_shapes(config_class: type) -> dict[str, tuple[str | None, bool, list[str]]]:
    """``{field: (shape, null allowed, scalar type names)}`` of a dataclass, from its field
    types: ``dict[...]`` a mapping, ``list[...]`` a list, ``int``/``float``/``str``/``bool`` a
    single value; ``| None`` allows null; ``Any`` anything."""
    hints = typing.get_type_hints(config_class)
    return {f.name: _expected(hints.get(f.name, Any)) for f in dataclasses.fields(config_class)}


def describe_shape(key: str, shape: str, nullable: bool, names: list[str], example: Any) -> str:
    """What ``key`` takes, e.g. ``a mapping (model.generator is a config node: set its keys,
    e.g. model.generator.arch=dcgan)``."""
    null = " or null" if nullable else ""
    if shape == "mapping":
        if isinstance(example, Mapping) and example:
            first, value = next(iter(example.items()))
            how = f"set its keys, e.g. {key}.{first}={value}"
        else:
            how = f"set its keys as {key}.<key>=<value>"
        return f"a mapping{null} ({key} is a config node: {how})"
    if shape == "list":
        if isinstance(example, list | tuple) and example:
            return f"a list{null}, e.g. {key}={_compact(example)}"
        return f"a list{null}"
    kinds = " or ".join(dict.fromkeys(names)) or "a single value"
    return f"{kinds}{null} ({key} is a single value, not a config node or a list)"


def _compact(value: Any) -> str:
    """``[[200,200],[100,100]]``: a list as typed on the command line."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    return str(value)


def check_field_shapes(config_class: type, values: Mapping[str, Any], prefix: str = "model"):
    """Every value in ``values`` has the shape its field of ``config_class`` is typed with: a
    ``dict`` field a mapping, a ``list`` field a list, a scalar field a single value; null for a
    mapping or list only where the type allows it. A ConfigError names the key and what it takes otherwise (instead
    of an AttributeError from deeper checks, e.g. ``model.generator=5``)."""
    shapes = field_shapes(config_class)
    defaults = {f.name: f for f in dataclasses.fields(config_class)}
    for key, value in values.items():
        if key not in shapes:
            continue
        shape, nullable, names = shapes[key]
        if shape is None or (value is None and (nullable or shape == "scalar")):
            continue  # null for a single value: left to the field's own check
        if value is not None and _shape_of(value) == shape:
            continue
        f = defaults[key]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        allowed = describe_shape(f"{prefix}.{key}", shape, nullable, names, default)
        raise ConfigError(f"{prefix}.{key}", to_plain(value), allowed)


def check_instance_shapes(config: Any, prefix: str = "model") -> None:
    """:func:`check_field_shapes` of a built dataclass (its ``__post_init__`` calls this first,
    so a config built directly in Python is checked too)."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    check_field_shapes(type(config), values, prefix)


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ``ConfigError(key, value, allowed)`` unless ``ok``."""
    if not ok:
        raise ConfigError(key, value, allowed)


def positive_int(value: Any) -> bool:
    """``value`` is an int (not a bool) >= 1."""
    return is_int(value) and value > 0


def is_int(value: Any) -> bool:
    """``value`` is an int and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(key: str, value: Any, minimum: int = 1, allow_none: bool = False) -> int | None:
    """``value`` if it is an integer >= ``minimum`` (or None when ``allow_none``); else a
    ConfigError naming ``key``. The one integer validator of genlab's own config keys."""
    if value is None and allow_none:
        return None
    if not (is_int(value) and value >= minimum):
        raise ConfigError(
            key, value, f"an integer >= {minimum}" + (" or null" if allow_none else "")
        )
    return value


def check_bool(key: str, value: Any) -> bool:
    """``value`` if it is a bool (``true``/``false`` in YAML); else a ConfigError naming ``key``."""
    if not isinstance(value, bool):
        raise ConfigError(key, value, "true or false")
    return value


def check_choice(key: str, value: Any, choices: Any) -> Any:
    """``value`` if it is one of ``choices``; else a ConfigError naming ``key`` and them."""
    if value not in tuple(choices):
        raise ConfigError(key, value, list(choices))
    return value


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_non_negative(key: str, value: Any) -> Any:
    """``value`` if it is a number (not a bool) >= 0; else a ConfigError naming ``key``."""
    require(number(value) and value >= 0, key, value, "a number >= 0")
    return value


#: The ``model.*`` bools every model config has (acted on by ``GenerativeModule``).
SPEED_OPTIONS = ("compile", "channels_last")


def check_speed_options(config: Any) -> None:
    """``model.compile`` and ``model.channels_last`` of a model config are bools."""
    for key in SPEED_OPTIONS:
        check_bool(f"model.{key}", getattr(config, key))


def check_scheduler(key: str, spec: Any) -> None:
    """An optional learning-rate scheduler spec is null or a dict with a ``_target_``."""
    ok = spec is None or (isinstance(spec, dict) and "_target_" in spec)
    require(ok, key, spec, "null or a dict with _target_")


def check_optimizer(key: str, spec: Any) -> None:
    """An optimizer spec is a dict with a ``_target_`` and a positive ``lr``."""
    require(isinstance(spec, dict) and "_target_" in spec, key, spec, "a dict with _target_")
    lr = spec.get("lr")
    require(number(lr) and lr > 0, f"{key}.lr", lr, "a number > 0")

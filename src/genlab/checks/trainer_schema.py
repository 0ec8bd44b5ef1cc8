"""The schema of the ``trainer`` config: every argument of the installed Lightning ``Trainer``.

``conf/trainer/default.yaml`` starts from the config node ``genlab_trainer_schema``, which holds
each keyword argument of ``lightning.pytorch.Trainer.__init__`` with Lightning's own default,
so every argument is overridable as ``trainer.<arg>=...`` (no ``+``) and a misspelt one is an
unknown key with a "did you mean" (``genlab.cli.entry``). ``callbacks`` and ``logger`` are left
out: genlab builds them from the ``callbacks`` and ``logger`` config groups.

The signature is read from Lightning's source file with :mod:`ast`, located with
``importlib.util.find_spec("lightning")`` (which does not import it), so composing a config
(``--cfg job``, config errors) never imports torch or Lightning. Should the source not be
readable (a zipped or compiled install), the signature comes from ``inspect`` instead (slow:
imports Lightning). The node is registered in Hydra's ConfigStore by the Hydra plugin
``hydra_plugins.genlab_trainer_schema`` (so any ``hydra.compose`` of genlab's configs finds it)
and by :func:`genlab.cli.entry.run_hydra_cli`.
"""

from __future__ import annotations

import ast
import functools
from typing import Any

from genlab.compat import lightning_source, parse_source

SCHEMA_NAME = "genlab_trainer_schema"  # the ConfigStore node trainer/default.yaml starts from
TRAINER_TARGET = "lightning.pytorch.Trainer"
MANAGED_BY_GENLAB = ("callbacks", "logger")  # built from the callbacks / logger config groups
_TRAINER_FILE = ("pytorch", "trainer", "trainer.py")


def _arguments_from_source(tree: ast.Module) -> dict[str, Any] | None:
    init = next(
        (
            item
            for node in tree.body
            if isinstance(node, ast.ClassDef) and node.name == "Trainer"
            for item in node.body
            if isinstance(item, ast.FunctionDef) and item.name == "__init__"
        ),
        None,
    )
    if init is None:
        return None
    args = init.args
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
    pairs += [(arg, default) for arg, default in zip(args.kwonlyargs, args.kw_defaults)]
    arguments = {}
    for arg, default in pairs:
        if default is None:  # keyword-only without a default: not a config value
            continue
        try:
            arguments[arg.arg] = ast.literal_eval(default)
        except ValueError:  # a default that is not a literal: leave it to Lightning
            continue
    return arguments


def _arguments_from_inspect() -> dict[str, Any]:
    import inspect

    from lightning.pytorch import Trainer

    arguments = {}
    for name, parameter in inspect.signature(Trainer.__init__).parameters.items():
        default = parameter.default
        if default is inspect.Parameter.empty:
            continue
        if default is None or isinstance(default, bool | int | float | str):
            arguments[name] = default
    return arguments


@functools.cache
def trainer_arguments() -> dict[str, Any]:
    """``{name: default}`` of every keyword argument of ``lightning.pytorch.Trainer`` with a
    plain (literal) default, in signature order, without ``callbacks`` and ``logger``."""
    tree = parse_source(lightning_source(*_TRAINER_FILE))
    arguments = _arguments_from_source(tree) if tree is not None else None
    if not arguments:
        arguments = _arguments_from_inspect()
    return {k: v for k, v in arguments.items() if k != "self" and k not in MANAGED_BY_GENLAB}


def schema_node() -> dict[str, Any]:
    """The ``genlab_trainer_schema`` config: ``_target_`` and every Trainer argument."""
    return {"_target_": TRAINER_TARGET, **trainer_arguments()}


def register_trainer_schema() -> None:
    """Store :func:`schema_node` in Hydra's ConfigStore as ``genlab_trainer_schema`` (cheap:
    the signature is parsed once per process)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=schema_node(), provider="genlab")

"""Command-line entry points: every user mistake is one ``genlab: error: ...`` line and exit 2.

Hydra reports composition errors (``model=nope``, ``model.latnt_dim=8``) itself, in several
lines and with exit code 1; :func:`run_hydra_cli` lets them propagate instead and rewrites them
in genlab's ``key=value is invalid: allowed ...`` form. ``HYDRA_FULL_ERROR=1`` shows the full
traceback instead. Exit codes: 2 bad input, 3 diverged (see
:mod:`genlab.callbacks.divergence`), 128 + signal number after SIGTERM/SIGINT (a resumable
``last.ckpt`` was saved, see :mod:`genlab.callbacks.preemption`).
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genlab.checks.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIVERGED,
    ConfigError,
    DivergenceError,
    RunInterrupted,
    find_config_error,
)
from genlab.checks.known_keys import leaf_paths
from genlab.compat import one_config_repository_for_help, silence_lightning_noise


def _overrides(argv: list[str]) -> list[str]:
    return [a for a in argv if not a.startswith("-") and "=" in a]


def _compose_without(config_name: str, overrides: list[str], drop: str):
    """The config composed from ``overrides`` minus those touching ``drop`` (None if that fails)."""
    from hydra import compose, initialize_config_dir

    import genlab
    from genlab.compat import clear_global_hydra

    keep = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != drop]
    keep = [o for o in keep if "," not in o.split("=", 1)[-1] and not o.startswith("hydra")]
    try:
        clear_global_hydra()
        conf_dir = str(Path(genlab.__file__).parent / "conf")
        with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
            return compose(config_name, overrides=keep)
    except Exception:  # noqa: BLE001 - only used to make the message better
        return None


def unknown_key_message(full_key: str, value: str, config_name: str, argv: list[str]) -> str:
    """``model.latnt_dim=8 is invalid: no such key; allowed ...`` with the keys of ``model`` and
    close matches (``model.lr`` -> ``model.optimizer_g.lr``)."""
    from omegaconf import OmegaConf

    parent, _, leaf = full_key.rpartition(".")
    cfg = _compose_without(config_name, _overrides(argv), full_key)
    allowed, hint = "an existing key", ""
    add_hint = f"; to add a new key on purpose use +{full_key}={value}"
    if cfg is not None:
        node = OmegaConf.select(cfg, parent) if parent else cfg
        siblings = [str(k) for k in node.keys() if not str(k).startswith("_")]
        close = [
            f"{parent}.{k}" if parent else k for k in difflib.get_close_matches(leaf, siblings)
        ]
        close += [k for k in leaf_paths(node, parent) if k.endswith("." + leaf)]
        close = list(dict.fromkeys(c for c in close if c != full_key))[:4]
        allowed = f"the keys of {parent or 'the config'}: {', '.join(sorted(siblings))}"
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        if parent == "trainer" and _is_lightning_trainer(node):
            # every Trainer argument is a key already: a new one would be refused by the Trainer
            allowed = f"an argument of lightning.pytorch.Trainer{_lightning_version()}: "
            allowed += ", ".join(sorted(siblings))
            add_hint = ""
    return f"{full_key}={value} is invalid: no such key{hint}; allowed {allowed}{add_hint}"


def _is_lightning_trainer(node: Any) -> bool:
    from genlab.checks.trainer_schema import TRAINER_TARGET

    return node.get("_target_") == TRAINER_TARGET


def _lightning_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f" (lightning {version('lightning')})"
    except PackageNotFoundError:
        return ""


def _already_set_message(err: BaseException, argv: list[str]) -> str | None:
    """``+key=value`` for a key the config has: Hydra refuses to append; say to drop the ``+``."""
    text = str(err)
    marker = "An item is already at '"
    if "Could not append to config" not in text or marker not in text:
        return None
    key = text.split(marker, 1)[1].split("'", 1)[0]
    value = next(
        (o.split("=", 1)[1] for o in _overrides(argv) if o.lstrip("+").split("=", 1)[0] == key),
        "?",
    )
    return (
        f"+{key}={value} is invalid: {key} is in the config already; allowed {key}={value} "
        f"(without the +)"
    )


def _merge_error_message(err: BaseException, config_name: str, argv: list[str]) -> str | None:
    """``model.generator=[1]`` (a list where a config node is, or a mapping where a list is):
    Hydra says "Error merging override"; name the key, the value and what it takes."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    marker = "Error merging override "
    text = str(err)
    if not text.startswith(marker):
        return None
    override = text[len(marker) :].splitlines()[0].strip()
    key, _, value = override.lstrip("+~").partition("=")
    cfg = _compose_without(config_name, _overrides(argv), key)
    node = OmegaConf.select(cfg, key, default=None) if cfg is not None else None
    if isinstance(node, DictConfig):
        children = [str(k) for k in node.keys() if not str(k).startswith("_")]
        example = f"e.g. {key}.{children[0]}=..." if children else f"{key}.<key>=<value>"
        allowed = f"a mapping ({key} is a config node: set its keys, {example})"
    elif isinstance(node, ListConfig):
        allowed = f"a list, e.g. {key}=[a,b]"
    else:
        cause = err.__cause__
        first = str(cause).strip().splitlines()[0] if cause and str(cause).strip() else ""
        allowed = f"a value of the type {key} has ({first})" if first else "a value of its type"
    return f"{key}={value} is invalid: allowed {allowed}"


def describe_user_error(err: BaseException, config_name: str, argv: list[str]) -> str | None:
    """One line for a mistake in the user's input, or None for a genuine bug."""
    from hydra.errors import (
        ConfigCompositionException,
        InstantiationException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    config_error = find_config_error(err)
    if config_error is not None:
        return str(config_error)
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, option = str(err.missing_cfg_file).rpartition("/")
        if err.options and group:
            return str(ConfigError(group, option, sorted(err.options)))
        return str(err).splitlines()[0]
    if isinstance(err, OverrideParseException):
        return f"cannot parse the override {err.override!r}: {err.message.splitlines()[0]}"
    already_set = _already_set_message(err, argv)
    if isinstance(err, ConfigCompositionException) and already_set:
        return already_set
    merge = _merge_error_message(err, config_name, argv)
    if isinstance(err, ConfigCompositionException) and merge:
        return merge
    cause = err.__cause__
    unknown = isinstance(cause, ConfigKeyError | ConfigAttributeError) or (
        isinstance(cause, OmegaConfBaseException) and "not in struct" in str(cause)
    )
    if isinstance(err, ConfigCompositionException) and unknown:
        full_key = getattr(cause, "full_key", None) or ""
        value = next(
            (o.split("=", 1)[1] for o in _overrides(argv) if o.split("=", 1)[0] == full_key), "?"
        )
        if full_key:
            return unknown_key_message(full_key, value, config_name, argv)
    if isinstance(err, ConfigCompositionException | InstantiationException):
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        return " ".join(line for line in lines if not line.startswith("full_key"))[:1000]
    if isinstance(err, OmegaConfBaseException):
        return str(err).splitlines()[0]
    if not _raised_in_task(err):  # e.g. Hydra's ValueError for `model=0`
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"cannot compose the config from {' '.join(_overrides(argv))}: {first}"
    return None


def _raised_in_task(err: BaseException) -> bool:
    """True when the traceback passes through genlab code run by the task (not only Hydra's
    config composition)."""
    import genlab

    package = str(Path(genlab.__file__).parent)
    tb = err.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(package) and not filename.endswith(("cli.py", "train.py")):
            return True
        if filename.endswith("train.py") and tb.tb_frame.f_code.co_name != "main":
            return True
        tb = tb.tb_next
    return False


USER_FULL_ERROR_ENV = "GENLAB_FULL_ERROR"  # the user's HYDRA_FULL_ERROR while run_hydra_cli runs


def _exit_on_user_error(err: BaseException, config_name: str) -> None:
    """The one error-to-exit-code rule: print one line and raise SystemExit for a diverged run
    (3) or a mistake in the user's input (2); return for a bug (the caller re-raises it)."""
    if isinstance(err, DivergenceError):
        print(f"genlab: error: {err}", file=sys.stderr)
        raise SystemExit(EXIT_DIVERGED) from None
    message = describe_user_error(err, config_name, sys.argv[1:])
    if message is not None:
        print(f"genlab: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


class PrintedOnceFilter(logging.Filter):
    """On a console handler of the root logger: drop a record that a console handler of a
    logger below the root (on its way up) has printed already.

    Lightning's top-level package gives the ``lightning`` logger its own console handler and
    lets records propagate too, so under Hydra's logging every Lightning info line ("GPU
    available: ...") was printed twice. This keeps Lightning's copy on the console; the run's
    log file (a root FileHandler, not filtered) still gets every line."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None and logger is not logging.root:
            for handler in logger.handlers:
                if _is_console(handler) and record.levelno >= handler.level:
                    return False
            if not logger.propagate:
                break
            logger = logger.parent
        return True


def _is_console(handler: logging.Handler) -> bool:
    """A handler that writes to a stream but not to a file (Lightning's own console handler)."""
    return isinstance(handler, logging.StreamHandler) and not isinstance(
        handler, logging.FileHandler
    )


def _writes_to_terminal(handler: logging.Handler) -> bool:
    """A root handler that writes to this process's stdout/stderr (Hydra's console handler;
    not a capture handler, e.g. pytest's, nor a file)."""
    streams = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    return _is_console(handler) and any(getattr(handler, "stream", None) is s for s in streams)


def quiet_start() -> None:
    """A start that prints only what the user can act on: Lightning's litlogger tip and its
    internal LeafSpec FutureWarning silenced (:func:`genlab.compat.silence_lightning_noise`),
    each Lightning info line printed once (:class:`PrintedOnceFilter` on the root's console
    handlers). Warnings about the user's code or config are untouched. Idempotent."""
    silence_lightning_noise()
    for handler in logging.getLogger().handlers:
        if _writes_to_terminal(handler) and not any(
            isinstance(f, PrintedOnceFilter) for f in handler.filters
        ):
            handler.addFilter(PrintedOnceFilter())


def user_errors_exit(config_name: str) -> Callable[[Callable], Callable]:
    """Decorator of the task under ``@hydra.main``: applies :func:`_exit_on_user_error` inside
    the job (else Hydra prints its own "Error executing job" line first). Same rule, same
    function as :func:`run_hydra_cli`, which covers what fails before the task runs.

    Before the task it quiets the start (:func:`quiet_start`, after Hydra set up the job's
    logging) and refuses a key of the config that genlab does not read
    (:func:`genlab.checks.known_keys.check_config_keys`: ``+foo=bar``, ``+metrics.x=1``)."""

    def decorate(task: Callable) -> Callable:
        @functools.wraps(task)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from genlab.checks.known_keys import check_config_keys

            quiet_start()
            try:
                if args:
                    check_config_keys(args[0], config_name)
                return task(*args, **kwargs)
            except Exception as err:
                if os.environ.get(USER_FULL_ERROR_ENV) != "1":
                    _exit_on_user_error(err, config_name)
                raise

        return wrapper

    return decorate


def run_hydra_cli(hydra_main: Callable[[], Any], config_name: str) -> Any:
    """Call a ``@hydra.main`` function and turn user errors into one line on stderr.

    Exit 2 for bad input (config key, value and what is allowed), 3 for a diverged run, 128 +
    signal for SIGTERM/SIGINT. Any other exception (a bug) keeps its traceback, as does every
    error with ``HYDRA_FULL_ERROR=1``.
    """
    from genlab.checks.trainer_schema import register_trainer_schema

    register_trainer_schema()  # also done by the hydra_plugins.genlab_trainer_schema plugin
    user_full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let Hydra's own errors reach us (restored below)
    os.environ[USER_FULL_ERROR_ENV] = "1" if user_full else "0"
    help_requested = bool({"--help", "-h", "--hydra-help"} & set(sys.argv[1:]))
    try:
        if help_requested:  # Hydra rebuilds its config repository per group otherwise
            with one_config_repository_for_help():
                return hydra_main()
        return hydra_main()
    except RunInterrupted as err:
        print(f"genlab: {err.message}", file=sys.stderr)
        raise SystemExit(err.code) from None
    except SystemExit:
        raise
    except Exception as err:
        if not user_full:
            _exit_on_user_error(err, config_name)
        raise
    finally:
        os.environ.pop(USER_FULL_ERROR_ENV, None)
        if not user_full:
            os.environ.pop("HYDRA_FULL_ERROR", None)

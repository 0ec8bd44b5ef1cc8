"""Load finished runs from their run directories, as data.

A run directory is what ``python -m genlab.train`` writes (a sweep writes one per job,
``<sweep dir>/<job num>/``):

* ``.hydra/config.yaml`` (composed config, interpolations unresolved), ``.hydra/overrides.yaml``
  (the command-line overrides) and ``.hydra/hydra.yaml`` (``hydra.runtime.choices``: the option
  chosen for each config group, e.g. ``model: gan``);
* ``env.json`` (``config``: the resolved config), ``status.json`` (the run's status; a sweep
  job's number and swept overrides too);
* ``csv/metrics.csv`` (:mod:`genlab.report.series`), ``samples/epoch=NNN.png`` and
  ``samples/last.png`` (sample grids), ``sample_quality.json`` (:mod:`genlab.report.protocol`);
* ``checkpoints/eval.json``, what ``python -m genlab.eval`` wrote for the run's checkpoint
  (:func:`read_evaluation`): its numbers (``test/nll``, ``test/fid``, ``test/mig``, ...) join
  the run's metrics as one point each at the evaluated step (:func:`add_evaluations`), named as
  in the file (a name the training also logged gets the prefix ``eval/``).

Everything is read as data: YAML with a safe loader (interpolations left as text), JSON with
:mod:`json`; nothing named in a run directory is imported, instantiated, resolved or called.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genlab.report.protocol import run_protocols
from genlab.report.series import COUNTERS, Series, read_metrics_csv
from genlab.runs.naming import run_name
from genlab.runs.records import read_status

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: genlab.eval's default output, relative to the run directory.
EVAL_FILE = Path("checkpoints") / "eval.json"
#: The splits genlab.eval names its numbers by (``<split>/<metric>``).
EVAL_SPLITS = ("test/", "val/", "train/")
#: Prefix of eval.json's sample-quality protocol keys (``sample_quality_network``, ...).
EVAL_PROTOCOL_PREFIX = "sample_quality_"
SAMPLE_FILE = re.compile(r"epoch=(\d+)\.png")
#: Statuses that mean a run did not finish normally (flagged in the report).
UNFINISHED = ("failed", "diverged", "interrupted", "running", "unknown")
_MISSING = object()
#: libyaml's safe loader when available (fast), else PyYAML's: plain data, no python tags.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Run:
    """One training run, as read from its run directory."""

    path: Path
    config: dict[str, Any]  # .hydra/config.yaml, interpolations as text
    resolved: dict[str, Any] | None  # env.json's resolved config (None: no env.json)
    overrides: list[str]  # .hydra/overrides.yaml
    choices: dict[str, Any]  # hydra.yaml's hydra.runtime.choices: config group -> option
    #: Every logged series (counters such as ``train/g_step`` too, for scripts that need
    #: them); the report shows :attr:`report_metrics`.
    metrics: dict[str, Series]
    has_csv: bool  # False: no csv/metrics.csv (logged without the csv logger)
    samples: dict[int, Path]  # epoch -> samples/epoch=NNN.png (not yet checked to be a PNG)
    last_sample: Path | None  # samples/last.png, if it is a PNG inside the run dir
    status: str  # completed | failed | diverged | interrupted | running | unknown
    error: str | None = None
    swept: list[str] | None = None  # a sweep job's swept overrides (None: not a sweep job)
    num: int | None = None  # a sweep job's number
    #: Sample-quality protocols of ``sample_quality.json`` (None: the run has no such file).
    protocols: list[dict[str, Any]] | None = None
    #: genlab.eval's numbers (``checkpoints/eval.json``, :func:`read_evaluation`) by their
    #: name in the file; :func:`add_evaluations` adds them to :attr:`metrics`.
    evaluation: dict[str, Series] = field(default_factory=dict)
    #: The names those numbers have in :attr:`metrics` (set by :func:`add_evaluations`).
    evaluated: list[str] = field(default_factory=list)
    #: The sample-quality protocol of those numbers (None: eval.json scored no samples).
    eval_protocol: dict[str, Any] | None = None
    name: str = ""  # genlab.runs.naming.run_name, made unique among the compared runs
    uid: str = ""  # r0, r1, ...: the run's id in the page
    values: dict[str, str] = field(default_factory=dict)  # differing config key -> value text

    @functools.cached_property
    def report_metrics(self) -> dict[str, Series]:
        """The run's metrics: every logged series but the counters (:data:`COUNTERS`)."""
        return {name: s for name, s in self.metrics.items() if name not in COUNTERS}

    @property
    def optimized_metric(self) -> str | None:
        """The config's ``optimized_metric`` (resolved if known), if it is a metric name."""
        value = lookup(self.resolved, "optimized_metric")
        if not isinstance(value, str):
            value = lookup(self.config, "optimized_metric")
        return value if isinstance(value, str) and value else None

    def config_value(self, key: str) -> Any:
        """The value the run used for an override ``key``: the chosen option of a config group
        (hydra.yaml), else the resolved config's value, else the composed config's (text)."""
        if key in self.choices:
            return self.choices[key]
        value = lookup(self.resolved, key)
        return lookup(self.config, key) if value is _MISSING else value


def lookup(tree: Any, dotted: str) -> Any:
    """``tree["a"]["b"]`` for ``"a.b"`` (list items by index); a sentinel when absent."""
    node = tree
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def is_missing(value: Any) -> bool:
    return value is _MISSING


def _yaml_data(path: Path) -> Any:
    """A YAML file as plain data, interpolations left as text (None: no such file, or not YAML
    that a safe loader reads as plain data, e.g. a python tag: the run is shown unread)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader: data only
    except yaml.YAMLError as err:
        log.warning(f"{path}: not read ({type(err).__name__})")
        return None


def _hydra_choices(path: Path) -> dict[str, Any]:
    """``hydra.runtime.choices`` of ``.hydra/hydra.yaml`` ({} when absent or unreadable)."""
    choices = lookup(_yaml_data(path), "hydra.runtime.choices")
    if not isinstance(choices, dict):
        return {}
    return {str(k): v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
            for k, v in choices.items()}  # fmt: skip


def _env_json(path: Path) -> dict[str, Any]:
    """``env.json`` as a dict ({} when absent or not a JSON object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _resolved_config(env: dict[str, Any]) -> dict[str, Any] | None:
    """``env.json``'s ``config`` (the resolved config), None when absent or not a dict."""
    config = env.get("config")
    return config if isinstance(config, dict) else None


def _env_overrides(env: dict[str, Any]) -> list[str]:
    """``env.json``'s ``overrides`` (the command line's), [] when absent or not a list."""
    overrides = env.get("overrides")
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def _choices_from_overrides(overrides: list[str], resolved: dict[str, Any]) -> dict[str, Any]:
    """``model=vae`` -> ``{"model": "vae"}`` when ``model`` is a node of the resolved config
    (a config group), as hydra.yaml's ``hydra.runtime.choices`` would say."""
    choices = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.isidentifier() and isinstance(resolved.get(key), dict):
            choices[key] = value
    return choices


def is_png_inside(file: Path, run_dir: Path) -> bool:
    """``file`` is a PNG that really lies inside ``run_dir`` (not a link to a file elsewhere):
    only such a file is embedded into report.html."""
    try:
        if not file.resolve().is_relative_to(run_dir.resolve()) or not file.is_file():
            return False
        with file.open("rb") as f:
            return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def png_bytes(file: Path | None, run_dir: Path) -> bytes | None:
    """The bytes of ``file`` when it is a PNG inside ``run_dir`` (:func:`is_png_inside`)."""
    if file is None or not is_png_inside(file, run_dir):
        return None
    try:
        return file.read_bytes()
    except OSError:
        return None


def _sample_grids(samples_dir: Path) -> dict[int, Path]:
    """``samples/epoch=NNN.png`` by epoch (file names only; checked when embedded)."""
    try:
        names = os.listdir(samples_dir)
    except OSError:
        return {}
    found = {}
    for name in names:
        match = SAMPLE_FILE.fullmatch(name)
        if match:
            found[int(match.group(1))] = samples_dir / name
    return dict(sorted(found.items()))


def load_run(path: Path) -> Run:
    """Read one run directory (:func:`is_run_dir`). Without ``.hydra/`` the config and the
    overrides are ``env.json``'s (resolved) and each ``group=option`` override whose group is a
    config node counts as that group's choice."""
    hydra_dir = path / ".hydra"
    config = _yaml_data(hydra_dir / "config.yaml")
    overrides = _yaml_data(hydra_dir / "overrides.yaml")
    env = _env_json(path / "env.json")
    resolved = _resolved_config(env)
    choices = _hydra_choices(hydra_dir / "hydra.yaml")
    if config is None and not hydra_dir.is_dir():
        config, overrides = resolved, _env_overrides(env)
        choices = _choices_from_overrides(overrides, resolved or {})
    recorded = read_status(path) or {}  # <run dir>/status.json: single runs and sweep jobs
    swept = recorded.get("swept")
    num = recorded.get("num")
    metrics = read_metrics_csv(path / "csv" / "metrics.csv")
    evaluation, eval_protocol = read_evaluation(path)
    last = path / "samples" / "last.png"
    return Run(
        path=path,
        config=config if isinstance(config, dict) else {},
        resolved=resolved,
        overrides=[str(o) for o in overrides] if isinstance(overrides, list) else [],
        choices=choices,
        metrics=metrics or {},
        has_csv=metrics is not None,
        samples=_sample_grids(path / "samples"),
        last_sample=last if is_png_inside(last, path) else None,
        status=str(recorded.get("status", "unknown")),
        error=None if recorded.get("error") is None else str(recorded["error"]),
        swept=[str(s) for s in swept] if isinstance(swept, list) else None,
        num=num if isinstance(num, int) and not isinstance(num, bool) else None,
        protocols=run_protocols(path),
        evaluation=evaluation,
        eval_protocol=eval_protocol,
    )


def read_evaluation(path: Path) -> tuple[dict[str, Series], dict[str, Any] | None]:
    """genlab.eval's numbers in ``<run dir>/checkpoints/eval.json`` as one-point series at the
    evaluated checkpoint's ``global_step`` and ``epoch``, and their sample-quality protocol
    (``sample_quality_*`` keys, prefix removed; None when absent). Only finite numbers under
    ``test/``, ``val/`` or ``train/`` are read; standard errors (``*_stderr``) are left out.
    ({}, None) when the file is missing or not a JSON object."""
    try:
        data = json.loads((path / EVAL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, None
    if not isinstance(data, dict):
        return {}, None

    def number(value: Any) -> float | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok and math.isfinite(value) else None

    step, epoch = number(data.get("global_step")), number(data.get("epoch"))
    series: dict[str, Series] = {}
    for key, value in data.items():
        value = number(value)
        if not isinstance(key, str) or not key.startswith(EVAL_SPLITS) or value is None:
            continue
        if key.endswith("_stderr") or key in COUNTERS:
            continue
        series[key] = Series(
            steps=[step if step is not None else 0.0],
            values=[value],
            epochs=[int(epoch) if epoch is not None else None],
            times=[None],
        )
    protocol = {
        key[len(EVAL_PROTOCOL_PREFIX) :]: value
        for key, value in data.items()
        if isinstance(key, str) and key.startswith(EVAL_PROTOCOL_PREFIX)
    }
    return series, protocol if "network" in protocol else None


def evaluated_names(runs: list[Run]) -> set[str]:
    """The metric names that genlab.eval's numbers have in any of ``runs``
    (:func:`add_evaluations`): one value per run, so table columns, never curves."""
    return {name for run in runs for name in run.evaluated}


def add_evaluations(runs: list[Run]) -> None:
    """Add each run's genlab.eval numbers to its metrics, named as in eval.json; a name that
    any of the runs' training also logged (e.g. ``val/fid`` of an eval with ``split=val``)
    becomes ``eval/<name>`` in every run, so one column never mixes the two."""
    logged = {name for run in runs for name in run.metrics}
    for run in runs:
        names = {key: f"eval/{key}" if key in logged else key for key in run.evaluation}
        run.metrics.update({names[key]: series for key, series in run.evaluation.items()})
        run.evaluated = list(names.values())
        run.__dict__.pop("report_metrics", None)  # recomputed with the added series


def is_run_dir(path: Path) -> bool:
    """A run directory: Hydra's (``.hydra/config.yaml``) or genlab's output dir (``env.json`` and
    ``status.json``: a run written with ``paths.output_dir=...`` keeps ``.hydra`` in Hydra's own
    run dir and everything else there)."""
    if (path / ".hydra" / "config.yaml").is_file():
        return True
    return (path / "env.json").is_file() and (path / "status.json").is_file()


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Run directories in ``paths`` (each a run dir, or a dir with run dirs below it)."""
    found: list[Path] = []
    for path in paths:
        if is_run_dir(path):
            found.append(path)
            continue
        for config in sorted(path.rglob(".hydra/config.yaml")):
            if "wandb" not in config.parts:
                found.append(config.parent.parent)
        for env in sorted(path.rglob("env.json")):
            if "wandb" not in env.parts and is_run_dir(env.parent):
                found.append(env.parent)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return sorted(unique, key=_natural_key)


def name_runs(runs: list[Run]) -> None:
    """Name each run as TensorBoard and wandb do (:func:`genlab.runs.naming.run_name`: a sweep
    job by its swept overrides, else its overrides); runs that would share a name are prefixed
    with their path relative to the runs' common parent (``sweepA/0: model=gan``)."""
    if not runs:
        return
    for i, run in enumerate(runs):
        run.uid = f"r{i}"
        if run.swept is not None:
            run.name = run_name(run.swept, f"job{run.num if run.num is not None else i}")
        else:
            run.name = run_name(run.overrides, run.path.name)
    common = Path(os.path.commonpath([str(run.path) for run in runs]))
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.name] = counts.get(run.name, 0) + 1
    for run in runs:
        if counts[run.name] > 1:
            relative = run.path.relative_to(common).as_posix()
            run.name = f"{run.path.name if relative == '.' else relative}: {run.name}"


def _natural_key(path: Path) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)

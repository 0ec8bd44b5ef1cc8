"""Load finished runs from their run directories: config, overrides, CSV metrics, sample grid.

A run directory is what ``python -m genlab.train`` writes: ``.hydra/config.yaml``,
``.hydra/overrides.yaml``, ``csv/metrics.csv`` (one row per logging step, empty cells for
metrics not logged at that step), ``samples/last.png``, ``sample_quality.json`` (what the FIDs
measured, :mod:`genlab.report.protocol`) and ``status.json`` (the run's status; a sweep job's
number and overrides too).

Everything is read as data: YAML through OmegaConf without resolving interpolations, JSON with
:mod:`json`; nothing named in a run directory is imported, instantiated or called.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from genlab.report.protocol import run_protocols
from genlab.runs.records import read_status

log = logging.getLogger(__name__)

INDEX_COLUMNS = ("step", "epoch")
TIME_COLUMN = "time/elapsed"
LOWER_IS_BETTER = {"fid", "kid", "nll", "bpd", "loss"}
HIGHER_IS_BETTER = {"is", "precision", "recall", "acc", "accuracy", "elbo"}


def metric_direction(name: str) -> str | None:
    """``min`` | ``max`` | None (no notion of best, e.g. ``train/d_real``) for a metric name."""
    leaf = name.rsplit("/", 1)[-1]
    if leaf in LOWER_IS_BETTER or leaf.startswith("loss"):
        return "min"
    if leaf in HIGHER_IS_BETTER:
        return "max"
    return None


@dataclass
class Series:
    """One metric of one run: values with the step (and wall time, if known) they were logged at."""

    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds; empty without time/elapsed

    @property
    def final(self) -> float | None:
        return self.values[-1] if self.values else None

    def best(self, direction: str | None) -> float | None:
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite or direction is None:
            return None
        return min(finite) if direction == "min" else max(finite)


@dataclass
class Run:
    """A finished (or failed) training run."""

    path: Path
    config: dict[str, Any]
    overrides: list[str]
    metrics: dict[str, Series]
    sample_grid: Path | None
    status: str  # completed | failed | diverged | interrupted | running | unknown
    error: str | None = None
    name: str = ""  # path relative to the runs' common parent (tables)
    label: str = ""  # name + the overrides that differ between runs (plot legends)
    #: Sample-quality protocols of ``sample_quality.json`` (None: the run has no such file).
    protocols: list[dict[str, Any]] | None = None

    @property
    def optimized_metric(self) -> str | None:
        value = self.config.get("optimized_metric")
        return value if isinstance(value, str) and value else None


def read_metrics_csv(path: Path) -> dict[str, Series]:
    """``metrics.csv`` -> {metric name: Series}; wall time interpolated from ``time/elapsed``."""
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    clock: list[tuple[float, float]] = []
    series: dict[str, Series] = {}
    for row in rows:
        step = _number(row.get("step"))
        if step is None:
            continue
        elapsed = _number(row.get(TIME_COLUMN))
        if elapsed is not None:
            clock.append((step, elapsed))
        for name, cell in row.items():
            value = _number(cell)
            if name in INDEX_COLUMNS or name == TIME_COLUMN or value is None:
                continue
            entry = series.setdefault(name, Series())
            entry.steps.append(step)
            entry.values.append(value)
    if clock:
        clock.sort()
        for entry in series.values():
            entry.times = [_interpolate(clock, s) for s in entry.steps]
    return series


def _number(cell: str | None) -> float | None:
    if cell is None or cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return None


def _interpolate(clock: list[tuple[float, float]], step: float) -> float:
    """Wall time at ``step`` from (step, seconds) pairs sorted by step (clamped at the ends)."""
    if step <= clock[0][0]:
        return clock[0][1]
    for (s0, t0), (s1, t1) in zip(clock, clock[1:]):
        if s0 <= step <= s1:
            return t0 if s1 == s0 else t0 + (t1 - t0) * (step - s0) / (s1 - s0)
    return clock[-1][1]


def _yaml_data(path: Path) -> Any:
    """A YAML file as plain containers, interpolations left as text (None: no such file, or
    not YAML that OmegaConf reads as plain data, e.g. a python tag: the run is shown unread)."""
    if not path.is_file():
        return None
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except (yaml.YAMLError, ValueError, TypeError, OSError) as err:
        log.warning(f"{path}: not read ({type(err).__name__})")
        return None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def load_run(path: Path) -> Run:
    """Read one run directory (must contain ``.hydra/config.yaml``)."""
    hydra_dir = path / ".hydra"
    config = _yaml_data(hydra_dir / "config.yaml")
    config = config if isinstance(config, dict) else {}
    overrides = _yaml_data(hydra_dir / "overrides.yaml")
    overrides = overrides if isinstance(overrides, list) else []
    recorded = read_status(path) or {}  # <run dir>/status.json: single runs and sweep jobs
    status = str(recorded.get("status", "unknown"))
    error = None if recorded.get("error") is None else str(recorded["error"])
    grid = path / "samples" / "last.png"
    return Run(
        path=path,
        config=config,
        overrides=[str(o) for o in overrides],
        metrics=read_metrics_csv(path / "csv" / "metrics.csv"),
        sample_grid=grid if is_png_inside(grid, path) else None,
        status=status,
        error=error,
        protocols=run_protocols(path),
    )


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Run directories in ``paths`` (each a run dir, or a dir with run dirs below it)."""
    found: list[Path] = []
    for path in paths:
        if (path / ".hydra" / "config.yaml").is_file():
            found.append(path)
            continue
        for config in sorted(path.rglob(".hydra/config.yaml")):
            if "wandb" not in config.parts:
                found.append(config.parent.parent)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return sorted(unique, key=_natural_key)


def label_runs(runs: list[Run]) -> None:
    """Name each run by its path relative to the common parent of all runs (``0``, ``1`` for
    one sweep; ``sweepA/0``, ``sweepB/0`` for two)."""
    if not runs:
        return
    common = Path(os.path.commonpath([str(run.path) for run in runs]))
    for run in runs:
        relative = run.path.relative_to(common).as_posix()
        run.name = run.path.name if relative == "." else relative


def _natural_key(path: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in path.parts)


def override_table(runs: list[Run]) -> tuple[list[str], list[dict[str, str]]]:
    """The override keys whose value differs between runs, and each run's values for them."""
    parsed = []
    for run in runs:
        values = {}
        for override in run.overrides:
            key, _, value = override.partition("=")
            values[key.lstrip("+~")] = value
        parsed.append(values)
    keys = list(dict.fromkeys(k for values in parsed for k in values))
    differing = [k for k in keys if len({values.get(k, "") for values in parsed}) > 1]
    return differing, [{k: values.get(k, "") for k in differing} for values in parsed]


def sort_runs(runs: list[Run], metric: str | None) -> list[Run]:
    """Completed runs by ``metric``'s final value (best first), then runs without it/failed."""
    if not metric:
        return runs
    sign = -1.0 if metric_direction(metric) == "max" else 1.0

    def key(run: Run) -> tuple:
        value = run.metrics[metric].final if metric in run.metrics else None
        ok = value is not None and math.isfinite(value) and run.status not in ("failed", "diverged")
        return (0 if ok else 1, sign * value if ok else 0.0)

    return sorted(runs, key=key)

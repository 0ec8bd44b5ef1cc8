"""A run's logged metrics: ``csv/metrics.csv`` (Lightning's CSVLogger) as one :class:`Series`
per column, each point at its true step, epoch and wall time.

The CSV has one row per logging call (``epoch``, ``step``, ``time/elapsed`` and the metrics,
empty cells where a metric was not logged at that row). ``epoch``, ``step`` and
``time/elapsed`` index the rows; they and the GAN's optimizer-step counters (:data:`COUNTERS`,
whose series are kept for scripts) are not metrics and never shown as such. A point's wall time
is its row's own ``time/elapsed`` when the row has one, else it is interpolated by step between
the nearest rows before and after it that have one (extrapolated at the ends with the run's
seconds per step): a point is never put at a time earlier than an earlier point's.
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

TIME_COLUMN = "time/elapsed"
#: The columns every row is indexed by: not series of their own.
INDEX_COLUMNS = frozenset({"epoch", "step", TIME_COLUMN})
#: Columns that count or time the run rather than measure it: never shown as metrics.
COUNTERS = INDEX_COLUMNS | {"train/d_step", "train/g_step"}
LOWER_IS_BETTER = {"fid", "kid", "nll", "bpd", "loss", "recon", "kl"}
LOWER_IS_BETTER |= {"coverage_kl", "coverage_kl_uniform", "class_fid", "class_fid_max"}
HIGHER_IS_BETTER = {"is", "precision", "recall", "acc", "accuracy", "elbo"}
HIGHER_IS_BETTER |= {"classes_covered", "modes_covered", "mig", "factor_vae_score"}
HIGHER_IS_BETTER |= {"dci_disentanglement", "dci_completeness", "dci_informativeness_test"}


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
    """One metric of one run: each value with the step, epoch and wall time (seconds since the
    run started; None when the run logged no ``time/elapsed``) it was logged at."""

    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    epochs: list[int | None] = field(default_factory=list)
    times: list[float | None] = field(default_factory=list)

    @property
    def final(self) -> float | None:
        """The last logged value."""
        return self.values[-1] if self.values else None

    def best(self, direction: str | None) -> float | None:
        """The best finite value (min or max by ``direction``; None without a direction)."""
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite or direction is None:
            return None
        return min(finite) if direction == "min" else max(finite)

    def at_epoch(self, epoch: int) -> float | None:
        """The value logged last in ``epoch`` (None: not logged in that epoch)."""
        found = None
        for value, logged in zip(self.values, self.epochs):
            if logged == epoch:
                found = value
        return found


def read_metrics_csv(path: Path) -> dict[str, Series] | None:
    """``metrics.csv`` -> {column name: Series} for every column but the index columns (the
    GAN's step counters included); None when the file does not exist."""
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle))
    except (OSError, csv.Error):
        return None
    if not rows:
        return {}
    header = rows[0]
    column = {name: i for i, name in enumerate(header)}
    if "step" not in column:
        return {}
    at_step, at_epoch, at_time = (column.get(n, -1) for n in ("step", "epoch", TIME_COLUMN))
    metrics = [(i, name) for i, name in enumerate(header) if name not in INDEX_COLUMNS]
    clock = Clock()
    parsed = []
    for row in rows[1:]:
        step = _cell(row, at_step)
        if step is None or not math.isfinite(step):
            continue
        epoch = _cell(row, at_epoch)
        elapsed = _cell(row, at_time)
        if elapsed is not None and math.isfinite(elapsed):
            clock.add(step, elapsed)
        else:
            elapsed = None
        epoch = int(epoch) if epoch is not None and math.isfinite(epoch) else None
        parsed.append((step, epoch, elapsed, row))
    series: dict[str, Series] = {}
    for step, epoch, elapsed, row in parsed:
        when = elapsed if elapsed is not None else clock.at(step)
        for i, name in metrics:
            value = _cell(row, i)
            if value is None:
                continue
            entry = series.get(name)
            if entry is None:
                entry = series[name] = Series()
            entry.steps.append(step)
            entry.values.append(value)
            entry.epochs.append(epoch)
            entry.times.append(when)
    return series


class Clock:
    """Wall time by step, from the rows that logged ``time/elapsed``."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []
        self._steps: list[float] | None = None

    def add(self, step: float, seconds: float) -> None:
        if math.isfinite(seconds):
            self.points.append((step, seconds))
            self._steps = None

    def at(self, step: float) -> float | None:
        """Seconds at ``step``: interpolated between the nearest timed steps around it, or
        extrapolated with the run's seconds per step (None: no row logged a time)."""
        points = self.points
        if not points:
            return None
        if self._steps is None:
            points.sort()
            self._steps = [s for s, _ in points]
        i = bisect.bisect_left(self._steps, step)
        if i < len(points) and points[i][0] == step:
            return points[i][1]
        if 0 < i < len(points):
            (s0, t0), (s1, t1) = points[i - 1], points[i]
            return t0 + (t1 - t0) * (step - s0) / (s1 - s0)
        rate = self.seconds_per_step()
        if i == 0:  # before the first timed row: back towards (step 0, 0 s), never below 0
            s0, t0 = points[0]
            return max(0.0, t0 - rate * (s0 - step))
        s1, t1 = points[-1]  # after the last timed row: later, never clamped onto it
        return t1 + rate * (step - s1)

    def seconds_per_step(self) -> float:
        """Average seconds per step over the timed rows (from step 0 when only one)."""
        (s0, t0), (s1, t1) = self.points[0], self.points[-1]
        if s1 > s0 and t1 >= t0:
            return (t1 - t0) / (s1 - s0)
        return t0 / s0 if s0 > 0 else 0.0


def _cell(row: list[str], index: int) -> float | None:
    """The number in ``row[index]`` (None: no such column, an empty cell or not a number)."""
    if index < 0 or index >= len(row) or not row[index]:
        return None
    try:
        return float(row[index])
    except ValueError:
        return None

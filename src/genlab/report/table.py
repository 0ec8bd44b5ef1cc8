"""The comparison's rows: the config values that differ between runs, seed groups, the ranking,
the metric columns and the notes on what cannot be compared or is missing.

Runs whose differing config values agree on everything but ``seed`` form one :class:`Entry`
(a seed group), shown as mean ± std (n) and ranked by the group mean of the ranked metric's
final values; runs that failed or diverged are left out of those statistics.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from genlab.report.protocol import protocol_groups
from genlab.report.runs import UNFINISHED, Run, evaluated_names, is_missing
from genlab.report.series import metric_direction
from genlab.runs.naming import run_name

SEED_KEY = "seed"
#: Sample-quality metrics shown in the first view (by the last part of their name).
QUALITY_LEAVES = ("fid", "kid", "is", "precision", "recall")
#: Statuses whose numbers are not used for ranking or group statistics.
NOT_RANKED = ("failed", "diverged")


def is_quality(metric: str) -> bool:
    """FID, KID, IS, precision or recall (numbers that depend on the sample-quality protocol)."""
    return metric.rsplit("/", 1)[-1] in QUALITY_LEAVES


def override_key(override: str) -> str:
    """``+trainer.limit_train_batches=20`` -> ``trainer.limit_train_batches``;
    ``~callbacks.x`` -> ``callbacks.x``; ``model@pkg=gan`` -> ``model``."""
    key = override.lstrip("+~").split("=", 1)[0].strip()
    return key.split("@", 1)[0]


def value_text(value) -> str:
    """A config value as short text: YAML-like scalars, JSON for lists and dicts."""
    if is_missing(value):
        return "(not set)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def differing_values(runs: list[Run]) -> list[str]:
    """The override keys any run used whose value (resolved) differs between runs; each run's
    values for them are stored in ``run.values``."""
    keys = dict.fromkeys(
        override_key(o) for run in runs for o in [*run.overrides, *(run.swept or [])]
    )
    keys.pop("", None)
    table = [{k: value_text(run.config_value(k)) for k in keys} for run in runs]
    differing = [k for k in keys if len({values[k] for values in table}) > 1]
    for run, values in zip(runs, table):
        run.values = {k: values[k] for k in differing}
    return differing


@dataclass
class Stat:
    """Mean, sample standard deviation (None for one value) and count of finite values."""

    mean: float
    std: float | None
    n: int

    def text(self, group: bool = True) -> str:
        if self.std is None:
            return fmt(self.mean) + (f" (n={self.n})" if group and self.n > 1 else "")
        return f"{fmt(self.mean)} ± {fmt(self.std, 3)} (n={self.n})"


def stat(values: list[float | None]) -> Stat | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return Stat(statistics.fmean(finite), std, len(finite))


def fmt(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits ("" for None, ``nan``/``inf`` as such)."""
    if value is None:
        return ""
    return f"{value:.{digits}g}" if math.isfinite(value) else str(value)


@dataclass
class Entry:
    """A row of the first view: one run, or the runs that differ only by seed (a group)."""

    uid: str  # g0, g1, ...: the entry's id in the page
    name: str
    runs: list[Run]
    values: dict[str, str] = field(default_factory=dict)  # differing key -> value(s)
    rank: int = 0

    @property
    def is_group(self) -> bool:
        return len(self.runs) > 1

    def stat(self, metric: str | None) -> Stat | None:
        """The metric's final value over the entry's runs that did not fail or diverge."""
        if not metric:
            return None
        return stat(
            [
                run.report_metrics[metric].final
                for run in self.runs
                if metric in run.report_metrics and run.status not in NOT_RANKED
            ]
        )

    def status(self) -> str:
        """``completed``, or for a group ``3 completed, 1 failed``."""
        if not self.is_group:
            return self.runs[0].status
        counts = Counter(run.status for run in self.runs)
        return ", ".join(f"{n} {status}" for status, n in counts.most_common())


def group_by_seed(runs: list[Run], keys: list[str]) -> list[Entry]:
    """One entry per set of differing values other than ``seed`` (in run order)."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.values[k] for k in keys if k != SEED_KEY), []).append(run)
    entries = []
    for i, members in enumerate(groups.values()):
        entry = Entry(uid=f"g{i}", name=members[0].name, runs=members)
        entry.values = dict(members[0].values)
        if entry.is_group:
            source = members[0].swept if members[0].swept is not None else members[0].overrides
            kept = [o for o in source if override_key(o) != SEED_KEY]
            by_values = ",".join(f"{k}={v}" for k, v in entry.values.items() if k != SEED_KEY)
            entry.name = run_name(kept, by_values or "all runs")
            if SEED_KEY in keys:
                seeds = sorted({run.values[SEED_KEY] for run in members}, key=_numeric_first)
                entry.values[SEED_KEY] = ", ".join(seeds)
        entries.append(entry)
    names = Counter(e.name for e in entries)
    for entry in entries:  # two groups with one name: name them by their values
        if names[entry.name] > 1 and entry.is_group:
            entry.name = ",".join(f"{k}={v}" for k, v in entry.values.items() if k != SEED_KEY)
    return entries


def _numeric_first(text: str) -> tuple:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def rank_entries(entries: list[Entry], metric: str | None) -> list[Entry]:
    """Entries by the (group mean of the) metric's final value, best first; entries without it
    last, in their order. Sets each entry's ``rank`` (1-based)."""
    sign = -1.0 if metric and metric_direction(metric) == "max" else 1.0

    def key(entry: Entry) -> tuple:
        value = entry.stat(metric)
        return (1, 0.0) if value is None else (0, sign * value.mean)

    ranked = sorted(entries, key=key)
    for rank, entry in enumerate(ranked, 1):
        entry.rank = rank
    return ranked


def choose_metric(runs: list[Run], requested: str | None) -> tuple[str | None, list[str]]:
    """The ranked metric: ``--metric``, else the runs' ``optimized_metric``, else val/fid, else
    val/loss (when logged); and notes when the runs disagree or nobody logged it."""
    notes = []
    names = {name for run in runs for name in run.report_metrics}
    optimized = Counter(run.optimized_metric for run in runs if run.optimized_metric)
    metric = requested
    if not metric and optimized:
        metric = optimized.most_common(1)[0][0]
        if len(optimized) > 1:
            notes.append(
                "The runs optimize different metrics ("
                + ", ".join(optimized)
                + f"); ranked by the most common, {metric}."
            )
    if not metric:
        metric = next((m for m in ("val/fid", "val/loss") if m in names), None)
    if metric and metric not in names and any(run.has_csv for run in runs):
        notes.append(f"No run logged {metric}: the runs are not ranked.")
    return metric, notes


def quality_columns(runs: list[Run], metric: str | None) -> list[str]:
    """The logged FID, KID, IS, precision and recall metrics (``val/`` first), not ``metric``."""
    evaluated = evaluated_names(runs)  # genlab.eval's numbers: columns of their own
    names = sorted(
        {n for run in runs for n in run.report_metrics} - evaluated,
        key=lambda n: (n[:4] != "val/", n),
    )
    columns = []
    for leaf in QUALITY_LEAVES:
        found = next((n for n in names if n.rsplit("/", 1)[-1] == leaf), None)
        if found and found != metric:
            columns.append(found)
    return columns


def all_metrics(runs: list[Run], metric: str | None) -> list[str]:
    """Every logged metric: the ranked one, FID & co., then ``val/``, then the rest, by name."""
    names = {n for run in runs for n in run.report_metrics}
    quality = {n for n in names if n.rsplit("/", 1)[-1].split("_")[0] in QUALITY_LEAVES}

    def key(name: str) -> tuple:
        leaf = name.rsplit("/", 1)[-1]
        order = QUALITY_LEAVES.index(leaf.split("_")[0]) if name in quality else 9
        return (name != metric, name not in quality, order, not name.startswith("val/"), name)

    return sorted(names, key=key)


def protocol_labels(runs: list[Run]) -> tuple[dict[str, str] | None, list[str]]:
    """Each run's sample-quality protocol letter by uid (None when no run logged FID & co. or
    recorded a protocol), and the notes on which numbers are not comparable."""
    logged = any(  # genlab.eval's numbers carry their own protocol (eval_notes)
        run.protocols is not None
        or any(is_quality(n) for n in run.report_metrics if n not in run.evaluated)
        for run in runs
    )
    if not logged:
        return None, []
    labels, notes = protocol_groups([r.name for r in runs], [r.protocols for r in runs])
    if all(label == "?" for label in labels):
        return None, [
            "No run recorded its sample-quality protocol (sample_quality.json): whether their "
            "FID/KID/IS/precision/recall are comparable cannot be told."
        ]
    return {run.uid: label for run, label in zip(runs, labels)}, notes


def evaluated_columns(runs: list[Run], metric: str | None) -> list[str]:
    """The numbers of genlab.eval (``checkpoints/eval.json``) any run has, but ``metric``: the
    ones with a direction first (they rank), in file order."""
    names = list(dict.fromkeys(n for run in runs for n in run.evaluated if n != metric))
    return sorted(names, key=lambda n: metric_direction(n) is None)


def eval_notes(runs: list[Run]) -> list[str]:
    """Where the genlab.eval columns come from, and whether their sample-quality numbers were
    computed with one protocol (:func:`genlab.report.protocol.protocol_groups`)."""
    evaluated = [run for run in runs if run.evaluated]
    if not evaluated:
        return []
    notes = [
        "Columns from genlab.eval (checkpoints/eval.json, one value at the evaluated step): "
        + ", ".join(evaluated_columns(runs, None))
        + (
            f"; not evaluated: {', '.join(r.name for r in runs if not r.evaluated)}."
            if len(evaluated) < len(runs)
            else "."
        )
    ]
    scored = [run for run in evaluated if run.eval_protocol is not None]
    if len(scored) > 1:
        _, protocol_notes = protocol_groups(
            [r.name for r in scored], [[r.eval_protocol] for r in scored]
        )
        notes += ["genlab.eval: " + note for note in protocol_notes]
    return notes


def run_notes(runs: list[Run]) -> list[str]:
    """What is missing: runs without metrics, unfinished runs, runs without wall time."""
    notes = []
    no_csv = [run.name for run in runs if not run.has_csv]
    if no_csv:
        notes.append(
            "No metrics: logged without the csv logger (no csv/metrics.csv), so not ranked and "
            "without curves: " + ", ".join(no_csv) + "."
        )
    empty = [run.name for run in runs if run.has_csv and not run.report_metrics]
    if empty:
        notes.append("No metrics in csv/metrics.csv: " + ", ".join(empty) + ".")
    for status in UNFINISHED:
        flagged = [run for run in runs if run.status == status]
        if flagged:
            described = [
                run.name + (f" ({_short(run.error, 160)})" if run.error else "") for run in flagged
            ]
            what = "no status.json" if status == "unknown" else status
            tail = " (left out of ranking)" if status in NOT_RANKED else ""
            notes.append(f"{what.capitalize()}{tail}: " + "; ".join(described) + ".")
    untimed = [run.name for run in runs if run.report_metrics and not _timed(run)]
    if untimed:
        notes.append(
            "No wall time (time/elapsed) logged, absent from the wall-time view: "
            + ", ".join(untimed)
            + "."
        )
    return notes


def _timed(run: Run) -> bool:
    return any(t is not None for s in run.report_metrics.values() for t in s.times[:1])


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Summary:
    """Everything the page and the terminal table show, computed once."""

    runs: list[Run]
    entries: list[Entry]  # ranked
    keys: list[str]  # differing config keys
    metric: str | None  # the ranked metric
    quality: list[str]  # FID & co. columns
    evaluated: list[str]  # genlab.eval's numbers (checkpoints/eval.json) columns
    metrics: list[str]  # every logged metric (full table, charts)
    protocols: dict[str, str] | None  # run uid -> protocol letter
    comparability: list[str]  # which sample-quality numbers are not comparable
    notes: list[str]  # what is missing: metrics, unfinished runs, wall time

    @property
    def columns(self) -> list[str]:
        """The metric columns of the ranked table: the ranked metric, FID & co., then the
        numbers of genlab.eval."""
        return ([self.metric] if self.metric else []) + self.quality + self.evaluated

    def has_protocol_letter(self, metric: str) -> bool:
        """Whether the column shows the training's protocol letter: FID & co. logged during
        training, not genlab.eval's (their protocol is judged apart, :func:`eval_notes`)."""
        return is_quality(metric) and metric not in self.eval_names

    @functools.cached_property
    def eval_names(self) -> set[str]:
        """:func:`genlab.report.runs.evaluated_names` of the runs (the ranked metric too)."""
        return evaluated_names(self.runs)

    @property
    def grouped(self) -> bool:
        return any(entry.is_group for entry in self.entries)

    def protocol(self, entry: Entry) -> str:
        if self.protocols is None:
            return ""
        return ",".join(dict.fromkeys(self.protocols[run.uid] for run in entry.runs))


def summarize(runs: list[Run], requested_metric: str | None = None) -> Summary:
    """Differing values, seed groups, ranking, columns and notes of the named ``runs``."""
    metric, notes = choose_metric(runs, requested_metric)
    keys = differing_values(runs)
    entries = rank_entries(group_by_seed(runs, keys), metric)
    protocols, protocol_notes = protocol_labels(runs)
    return Summary(
        runs=runs,
        entries=entries,
        keys=keys,
        metric=metric,
        quality=quality_columns(runs, metric),
        evaluated=evaluated_columns(runs, metric),
        metrics=all_metrics(runs, metric),
        protocols=protocols,
        comparability=protocol_notes,
        notes=notes + eval_notes(runs) + run_notes(runs),
    )

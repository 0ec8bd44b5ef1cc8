"""Plots (matplotlib, Agg) and the HTML page of ``genlab.compare``."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from genlab.report.runs import Run, metric_direction


def plotted_metrics(runs: list[Run]) -> list[str]:
    """``val/fid`` (when logged) and every loss, in a stable order."""
    names = list(dict.fromkeys(name for run in runs for name in run.metrics))
    chosen = [n for n in names if n.rsplit("/", 1)[-1] == "fid"]
    chosen += sorted(n for n in names if "loss" in n.rsplit("/", 1)[-1])
    return chosen


def plot_metric(runs: list[Run], metric: str, path: Path) -> Path:
    """One PNG: ``metric`` of every run against step (left) and wall time (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for run in runs:
        series = run.metrics.get(metric)
        if series is None or not series.values:
            continue
        style = {"marker": "o" if len(series.values) < 20 else None, "markersize": 3}
        label = run.label or run.name
        by_step.plot(series.steps, series.values, label=label, **style)
        if series.times:
            by_time.plot(series.times, series.values, label=label, **style)
    by_step.set_xlabel("step (training batches, as logged)")
    by_time.set_xlabel("wall time (s)")
    for axis in (by_step, by_time):
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    handles, labels = by_step.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8
        )
    fig.suptitle(metric)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def summary_rows(
    runs: list[Run], metrics: list[str], keys: list[str], values: list[dict[str, str]]
) -> list[list[str]]:
    """Table rows: run, status, differing overrides, then final and best of each metric."""
    rows = []
    for run, overrides in zip(runs, values):
        row = [run.name, run.status] + [overrides[k] for k in keys]
        for metric in metrics:
            series = run.metrics.get(metric)
            final = series.final if series else None
            best = series.best(metric_direction(metric)) if series else None
            row += [_fmt(final), _fmt(best)]
        rows.append(row)
    return rows


def write_html(
    path: Path,
    runs: list[Run],
    header: list[str],
    rows: list[list[str]],
    plots: list[Path],
    sort_metric: str | None,
    notes: list[str] | None = None,
) -> Path:
    """A self-contained-ish page: the table, the comparability ``notes`` of the sample-quality
    protocols, the plot PNGs (relative links) and each run's last sample grid (embedded)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>genlab comparison</title>',
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
        "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}.failed{background:#fdd}"
        "figure{display:inline-block;margin:6px;text-align:center}"
        ".not-comparable{background:#fff3cd;border:1px solid #e0c36a;padding:6px}"
        "</style></head><body>",
        f"<h1>genlab comparison: {len(runs)} runs</h1>",
        f"<p>Sorted by <code>{esc(sort_metric or 'run directory')}</code>"
        + (" (final value, best first)." if sort_metric else ".")
        + " Columns: the overrides that differ between runs, then final and best (min for"
        " losses/FID/KID/NLL, max for IS/precision/recall) of every logged metric."
        + (
            " <code>protocol</code>: one letter per sample-quality protocol (feature network,"
            " reference data and split, N real, N fake; <code>?</code> = not recorded)."
            if "protocol" in header
            else ""
        )
        + "</p>",
        *(f'<p class="not-comparable">{esc(note)}</p>' for note in notes or []),
        '<table id="runs"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in header),
        "</tr></thead><tbody>",
    ]
    for run, row in zip(runs, rows):
        css = ' class="failed"' if run.status in ("failed", "diverged") else ""
        title = f' title="{esc(run.error)}"' if run.error else ""
        cells = "".join(f"<td>{esc(c)}</td>" for c in row)
        parts.append(f"<tr{css}{title}>{cells}</tr>")
    parts.append("</tbody></table><h2>Curves</h2>")
    for plot in plots:
        rel = plot.relative_to(path.parent).as_posix()
        parts.append(f'<div><img class="plot" src="{esc(rel)}" alt="{esc(plot.stem)}"></div>')
    parts.append("<h2>Last sample grids</h2>")
    for run in runs:
        if run.sample_grid is None:
            continue
        data = base64.b64encode(run.sample_grid.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img class="samples" src="data:image/png;base64,{data}" width="256"'
            f' alt="samples of {esc(run.name)}"><figcaption>{esc(run.name)}<br>'
            f"<small>{esc(str(run.path))}</small></figcaption></figure>"
        )
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

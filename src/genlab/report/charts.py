"""The report's charts: one Plotly figure per metric, every run overlaid.

Figures are plain Plotly figure dicts (``{"data": [...], "layout": {...}}``, valid input of
``plotly.graph_objects.Figure``), serialized with :func:`plotly.io.to_json`. Each trace is one
run: ``x`` its steps, ``y`` the values, ``customdata`` the wall time of each point (seconds; the
page switches the x axis between the two), all three as Plotly typed arrays, ``meta`` the run's
and its seed group's ids and the run's name. A run's seed group shares
one colour and one legend entry. Every text Plotly renders (names, titles) goes through
:func:`plotly_text`, so a name is shown as written, never as markup or LaTeX.
"""

from __future__ import annotations

import base64
import colorsys

from genlab.report.table import Entry, Summary
from genlab.report.text import compact_name, plotly_text

#: Plotly's default colours, then evenly spread hues for more groups.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
#: Points get markers when each run has few and the chart is small (SVG markers are slow).
MARKERS_PER_RUN, MARKERS_PER_CHART = 60, 1500
LEGEND_CHARS = 36  # longer names are shortened in legends (the hover shows the full name)
#: Hover label (the page swaps in a wall-time one): names come from ``meta``, never from here.
HOVER = "%{meta.name}<br>step %{x}: <b>%{y:.4~g}</b><extra></extra>"


def colour(index: int) -> str:
    """The colour of the ``index``-th entry (group)."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index * 0.618034) % 1.0
    red, green, blue = colorsys.hls_to_rgb(hue, 0.45, 0.65)
    return f"#{int(red * 255):02x}{int(green * 255):02x}{int(blue * 255):02x}"


def typed_array(values: list[float | None], dtype: str = "f4") -> dict:
    """``values`` as a Plotly typed array (``{"dtype", "bdata"}``: base64 of little-endian
    numbers, ~5 characters per float32 in the page instead of ~10 as decimal text); missing
    and non-finite values become NaN, a gap in the line."""
    import numpy as np

    array = np.array([np.nan if v is None else v for v in values], dtype="<" + dtype)
    array[~np.isfinite(array)] = np.nan
    return {"dtype": dtype, "bdata": base64.b64encode(array.tobytes()).decode("ascii")}


def _step_dtype(steps: list[float]) -> str:
    """float32 when it holds every step exactly (whole numbers below 2**24), else float64."""
    exact = all(s.is_integer() and abs(s) < 2**24 for s in steps)
    return "f4" if exact else "f8"


def metric_figure(summary: Summary, metric: str, entries: list[Entry]) -> dict | None:
    """The figure of ``metric``: one line per run that logged it (None: no run did)."""
    lengths = [
        len(r.report_metrics[metric].values)
        for e in entries
        for r in e.runs
        if metric in r.report_metrics
    ]
    markers = max(lengths, default=0) <= MARKERS_PER_RUN and sum(lengths) <= MARKERS_PER_CHART
    traces = []
    for entry in entries:
        shown = False
        for run in entry.runs:
            series = run.report_metrics.get(metric)
            if series is None or not series.values:
                continue
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers" if markers else "lines",
                    "x": typed_array(series.steps, _step_dtype(series.steps)),
                    "y": typed_array(series.values),
                    "customdata": typed_array(series.times),
                    "name": plotly_text(compact_name(entry.name, LEGEND_CHARS)),
                    "legendgroup": entry.uid,
                    "showlegend": not shown,
                    "line": {"color": colour(entry.rank - 1), "width": 1.5},
                    "marker": {"size": 4},
                    "opacity": 0.85,
                    "meta": {"run": run.uid, "group": entry.uid, "name": plotly_text(run.name)},
                    "hovertemplate": HOVER,
                }
            )
            shown = True
    if not traces:
        return None
    return {
        "data": traces,
        "layout": {
            "title": {"text": plotly_text(metric), "font": {"size": 14}},
            "xaxis": {"title": {"text": "step"}, "zeroline": False},
            "yaxis": {"zeroline": False},
            "legend": {"font": {"size": 10}, "groupclick": "togglegroup"},
            "margin": {"l": 55, "r": 10, "t": 36, "b": 40},
            "height": 340,
            "hovermode": "closest",
            "plot_bgcolor": "#fafafa",
            "uirevision": "keep",
        },
    }


def metric_figures(summary: Summary) -> list[tuple[str, dict]]:
    """``(metric, figure)`` for every logged metric, in :attr:`Summary.metrics` order (not the
    numbers of genlab.eval: one value per run, shown in the tables)."""
    figures = []
    evaluated = summary.eval_names  # one value per run: no curve
    for metric in summary.metrics:
        if metric in evaluated:
            continue
        figure = metric_figure(summary, metric, summary.entries)
        if figure is not None:
            figures.append((metric, figure))
    return figures


def figures_json(figures: list[tuple[str, dict]]) -> str:
    """The figures as one JSON list, safe inside an HTML ``<script>`` element."""
    import plotly.io

    text = "[" + ",".join(plotly.io.to_json(f, validate=False) for _, f in figures) + "]"
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")

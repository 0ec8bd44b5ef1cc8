"""The report's charts: one Plotly figure per metric, every run overlaid.

Figures are plain Plotly figure dicts (``{"data": [...], "layout": {...}}``, valid input of
``plotly.graph_objects.Figure``), serialized with :func:`plotly.io.to_json`. Each trace is one
run: ``x`` its steps, ``customdata`` the wall time of each point (seconds; the page switches the
x axis between the two), ``meta`` the run's and its seed group's ids. A run's seed group shares
one colour and one legend entry. Every text Plotly renders (names, titles) goes through
:func:`plotly_text`, so a name is shown as written, never as markup or LaTeX.
"""

from __future__ import annotations

import colorsys
import html
import math

from genlab.report.table import Entry, Summary

#: Plotly's default colours, then evenly spread hues for more groups.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
LEGEND_CHARS = 32  # longer names are shortened in legends (the hover shows the full name)
HOVER = "%{meta.name}<br>%{x}: <b>%{y:.4g}</b><extra></extra>"


def plotly_text(text: str) -> str:
    """``text`` for a Plotly string shown as is: ``<``, ``>``, ``&`` as entities (Plotly renders
    some HTML tags) and ``$`` as ``&#36;`` (``$...$`` would be typeset as LaTeX)."""
    return html.escape(str(text), quote=False).replace("$", "&#36;")


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis in the middle."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def colour(index: int) -> str:
    """The colour of the ``index``-th entry (group)."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index * 0.618034) % 1.0
    red, green, blue = colorsys.hls_to_rgb(hue, 0.45, 0.65)
    return f"#{int(red * 255):02x}{int(green * 255):02x}{int(blue * 255):02x}"


def _compact(value: float | None) -> float | int | None:
    """6 significant digits (smaller JSON); None for missing or non-finite values (a gap)."""
    if value is None or not math.isfinite(value):
        return None
    rounded = float(f"{value:.6g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def metric_figure(summary: Summary, metric: str, entries: list[Entry]) -> dict | None:
    """The figure of ``metric``: one line per run that logged it (None: no run did)."""
    traces = []
    for index, entry in enumerate(entries):
        shown = False
        for run in entry.runs:
            series = run.metrics.get(metric)
            if series is None or not series.values:
                continue
            sparse = len(series.values) <= 60
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers" if sparse else "lines",
                    "x": [_compact(s) for s in series.steps],
                    "y": [_compact(v) for v in series.values],
                    "customdata": [_compact(t) for t in series.times],
                    "name": plotly_text(shorten(entry.name, LEGEND_CHARS)),
                    "legendgroup": entry.uid,
                    "showlegend": not shown,
                    "line": {"color": colour(index), "width": 1.5},
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
    """``(metric, figure)`` for every logged metric, in :attr:`Summary.metrics` order."""
    figures = []
    for metric in summary.metrics:
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

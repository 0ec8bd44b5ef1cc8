"""report.html: one self-contained page (plotly.js, the figures and every image inlined).

Sections: the controls (filter box, smoothing, x axis), the notes on what cannot be compared or
is missing, the ranked table (one row per run or seed group, the group's runs folded below it),
every metric of every run (folded away), one chart per metric, the sample grids of each run over
time and the run directories. Every run-supplied string is HTML-escaped here (and made
Plotly-safe by :func:`genlab.report.text.plotly_text` in the figures): names are text, never
markup.
"""

from __future__ import annotations

import base64
import html
import json

from genlab.report.charts import colour
from genlab.report.page_script import CSS, JS
from genlab.report.runs import Run, png_bytes
from genlab.report.series import metric_direction
from genlab.report.table import NOT_RANKED, Entry, Stat, Summary, fmt, stat
from genlab.report.text import compact_name, shorten

esc = html.escape
NAME_CHARS = 48  # longer run names are shortened in the tables (full name in the tooltip)
VALUE_CHARS = 24


def _td(text: str, sort: float | str | None = None, title: str | None = None, css: str = "") -> str:
    attrs = f' class="{css}"' if css else ""
    if sort is not None:
        attrs += f' data-v="{esc(str(sort))}"'
    if title:
        attrs += f' title="{esc(title)}"'
    return f"<td{attrs}>{text}</td>"


def _short_td(text: str, limit: int, css: str = "text") -> str:
    """A cell with ``text`` (a run name when ``css`` is ``name``) shortened to ``limit``
    characters, the whole text as its tooltip."""
    short = compact_name(text, limit) if css == "name" else shorten(text, limit)
    return _td(esc(short), sort=text, title=text if short != text else None, css=css)


def _stat_td(value: Stat | None, group: bool, protocol: str = "") -> str:
    if value is None:
        return _td("", sort="")
    letter = f'<span class="proto" title="sample-quality protocol">{esc(protocol)}</span>'
    return _td(esc(value.text(group)) + (letter if protocol else ""), sort=repr(value.mean))


def _status_td(status: str, error: str | None = None) -> str:
    words = {w for w in status.replace(",", " ").split() if not w.isdigit()}  # "3 completed"
    css = "text bad" if words & set(NOT_RANKED) else "text"
    if css == "text" and words - {"completed"}:
        css = "text warn"
    return _td(esc(status), title=error, css=css)


def _entry_rows(summary: Summary, entry: Entry) -> str:
    """The tbody of one entry: its row, then (folded) one row per run of a seed group."""
    group = entry.is_group
    best = entry.rank == 1 and entry.stat(summary.metric) is not None
    name = esc(compact_name(entry.name, NAME_CHARS))
    swatch = f'<span class="swatch" style="background:{colour(entry.rank - 1)}"></span>'
    toggle = ""
    if group:
        label = f"{len(entry.runs)} seeds"
        toggle = f'<button class="toggle" data-label="{label}">&#9656; {label}</button>'
    cells = [
        _td(str(entry.rank) + (" &#9733;" if best else ""), sort=entry.rank),
        _td(swatch + name + toggle, sort=entry.name, title=entry.name, css="name"),
        *(_short_td(entry.values.get(k, ""), VALUE_CHARS) for k in summary.keys),
    ]
    letter = summary.protocol(entry)
    for metric in summary.columns:
        shown = letter if summary.has_protocol_letter(metric) else ""
        cells.append(_stat_td(entry.stat(metric), group, shown))
    cells.append(_status_td(entry.status(), None if group else entry.runs[0].error))
    rows = [f'<tr class="entry{" best" if best else ""}">{"".join(cells)}</tr>']
    for run in entry.runs if group else []:
        cells = [
            _td("", sort=""),
            _short_td(run.name, NAME_CHARS, css="name"),
            *(_short_td(run.values.get(k, ""), VALUE_CHARS) for k in summary.keys),
        ]
        letter = summary.protocols.get(run.uid, "") if summary.protocols else ""
        for metric in summary.columns:
            series = run.report_metrics.get(metric)
            value = stat([series.final]) if series else None
            shown = letter if summary.has_protocol_letter(metric) else ""
            cells.append(_stat_td(value, False, shown))
        cells.append(_status_td(run.status, run.error))
        rows.append(f'<tr class="member" data-run="{run.uid}">{"".join(cells)}</tr>')
    runs = " ".join(run.uid for run in entry.runs)
    return f'<tbody data-runs="{runs}" data-entry="{entry.uid}">{"".join(rows)}</tbody>'


def summary_table(summary: Summary) -> str:
    """The ranked table: rank, name, differing values, ranked metric, FID & co., status."""
    head = ["#", "run" + (" (seed group)" if summary.grouped else ""), *summary.keys]
    if summary.metric:
        head.append(summary.metric + (" (mean ± std)" if summary.grouped else ""))
    head += [*summary.quality, *summary.evaluated, "status"]
    ths = "".join(
        f'<th class="{"name" if i == 1 else ""}" title="sort by {esc(h)}">{esc(h)}</th>'
        for i, h in enumerate(head)
    )
    bodies = "".join(_entry_rows(summary, entry) for entry in summary.entries)
    return (
        f'<div class="scroll"><table id="summary" class="sortable"><thead><tr>{ths}</tr></thead>'
        f"{bodies}</table></div>"
    )


def every_metric_table(summary: Summary) -> str:
    """Final and best (min or max, when the metric has a direction) of every metric, per run."""
    head = ["run", "status"]
    columns = []
    for metric in summary.metrics:
        direction = metric_direction(metric)
        columns.append((metric, None))
        head.append(f"{metric} final")
        if direction:
            columns.append((metric, direction))
            head.append(f"{metric} {direction}")
    ths = "".join(f"<th>{esc(h)}</th>" for h in head)
    bodies = []
    for run in summary.runs:
        cells = [_short_td(run.name, NAME_CHARS, css="name"), _status_td(run.status, run.error)]
        for metric, direction in columns:
            series = run.report_metrics.get(metric)
            value = (
                None if series is None else series.best(direction) if direction else series.final
            )
            cells.append(_td(fmt(value), sort="" if value is None else repr(value)))
        bodies.append(f'<tbody data-runs="{run.uid}"><tr>{"".join(cells)}</tr></tbody>')
    return (
        "<details><summary>Every metric of every run: final value, and best (min or max)"
        f'</summary><div class="scroll"><table id="every" class="sortable"><thead><tr>{ths}'
        f"</tr></thead>{''.join(bodies)}</table></div></details>"
    )


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def sample_strip(summary: Summary, entry: Entry) -> str:
    """The first run's sample grids at its first, middle and last logged epoch, captioned with
    the run's name, the epoch and the FID (or ranked metric) logged in that epoch."""
    run = entry.runs[0]
    epochs = list(run.samples)
    chosen = (
        list(dict.fromkeys([epochs[0], epochs[len(epochs) // 2], epochs[-1]])) if epochs else []
    )
    caption_metric = next((m for m in summary.quality if m.endswith("/fid")), summary.metric)
    figures = []
    for epoch in chosen:
        data = png_bytes(run.samples[epoch], run.path)
        if data is None:
            continue
        series = run.report_metrics.get(caption_metric) if caption_metric else None
        value = series.at_epoch(epoch) if series else None
        said = f"{caption_metric} {fmt(value) if value is not None else 'not logged'}"
        figures.append(_figure(run, data, f"epoch {epoch}", said if caption_metric else ""))
    if not figures:
        data = png_bytes(run.last_sample, run.path)
        if data is None:
            return ""
        figures.append(_figure(run, data, "last", ""))
    title = esc(compact_name(run.name, 80))
    more = f" (first of {len(entry.runs)} seeds)" if entry.is_group else ""
    runs = " ".join(r.uid for r in entry.runs)
    return (
        f'<div class="strip" data-runs="{runs}"><h3 title="{esc(run.name)}">{entry.rank}. '
        f"{title}{more}</h3>{''.join(figures)}</div>"
    )


def _figure(run: Run, data: bytes, when: str, metric: str) -> str:
    name = esc(compact_name(run.name, 40))
    return (
        f'<figure><img class="samples" src="{_png_uri(data)}" alt="samples of {esc(run.name)}, '
        f'{esc(when)}"><figcaption title="{esc(run.name)}">{name}<br>{esc(when)}'
        f"{'<br>' + esc(metric) if metric else ''}</figcaption></figure>"
    )


def _runs_json(summary: Summary) -> str:
    """Per run: its seed group and the text the filter box searches (name, values, status)."""
    data = {}
    for entry in summary.entries:
        for run in entry.runs:
            words = [run.name, entry.name, run.status, *(f"{k}={v}" for k, v in run.values.items())]
            data[run.uid] = {"group": entry.uid, "search": " ".join(words).lower()}
    return _script_json(json.dumps(data, ensure_ascii=False))


def _script_json(text: str) -> str:
    """JSON text safe inside ``<script>``: no ``<``, ``>`` or ``&`` characters left."""
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text


def _lead(summary: Summary) -> str:
    metric = summary.metric
    if not metric:
        return "<p class=lead>No metric to rank by: runs in directory order.</p>"
    direction = "higher" if metric_direction(metric) == "max" else "lower"
    over = "; seed groups by their mean over seeds" if summary.grouped else ""
    return (
        f'<p class="lead">Ranked by <code>{esc(metric)}</code> (final value, {direction} is '
        f"better{over}; failed and diverged runs not counted). Click a column header to sort, "
        "click a legend entry to hide a run in every chart.</p>"
    )


def render_page(summary: Summary, figures: list[tuple[str, dict]], figures_json: str) -> str:
    """The whole page; ``figures`` are ``(metric, _)`` pairs in the order of ``figures_json``."""
    import plotly.offline

    runs = len(summary.runs)
    groups = sum(entry.is_group for entry in summary.entries)
    title = f"genlab comparison: {runs} runs" + (f", {groups} seed groups" if groups else "")
    notes = "".join(f'<p class="note not-comparable">{esc(n)}</p>' for n in summary.comparability)
    notes += "".join(f'<p class="note missing">{esc(n)}</p>' for n in summary.notes)
    charts = "".join(
        f'<div class="chart" id="chart-{i}" data-metric="{esc(metric)}"></div>'
        for i, (metric, _) in enumerate(figures)
    )
    strips = "".join(sample_strip(summary, entry) for entry in summary.entries)
    dirs = "".join(
        f"<li>{esc(run.name)}: <code>{esc(str(run.path))}</code></li>" for run in summary.runs
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
            f'<header class="controls"><h1>{esc(title)}</h1>',
            '<label>Filter runs <input id="filter" type="search" placeholder="e.g. model=gan"'
            f' autocomplete="off"></label> <span><span id="shown">{runs} of {runs}</span> runs'
            " shown</span>",
            '<label>Smoothing <input id="smoothing" type="range" min="0" max="0.99" step="0.01"'
            ' value="0"> <output id="smoothing-value">0.00</output></label>',
            '<label>x axis <select id="xaxis"><option value="step">step</option>'
            '<option value="time">wall time</option></select></label></header><main>',
            _lead(summary),
            notes,
            summary_table(summary),
            every_metric_table(summary),
            f"<h2>Curves ({len(figures)} metrics)</h2>",
            f'<div class="charts">{charts}</div>' if charts else "<p>No metrics logged.</p>",
            "<h2>Samples over time</h2>",
            strips or "<p>No sample grids.</p>",
            f"<details><summary>Run directories</summary><ul>{dirs}</ul></details>",
            "</main>",
            f'<script type="application/json" id="genlab-figures">{figures_json}</script>',
            f'<script type="application/json" id="genlab-runs">{_runs_json(summary)}</script>',
            f"<script>{plotly.offline.get_plotlyjs()}</script>",
            f"<script>{JS}</script>",
            "</body></html>",
        ]
    )

"""The style sheet and the small vanilla script of report.html (inlined into the page).

The script renders the figures of ``<script id="genlab-figures">`` with Plotly (inlined before
it), then wires the page's controls: sorting a table by a header click, the filter box (runs
filtered out disappear from the tables, the sample strips and every chart), the smoothing slider
(TensorBoard's debiased exponential moving average, re-applied to every chart), the x axis (step
or wall time) and legend clicks, which hide or show a run's (seed group's) curves in every chart
at once. When every chart is drawn it sets ``document.body.dataset.ready``.
"""

CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;font-size:14px}
main{padding:0 1.2em 2em}
header.controls{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid #ddd;
 padding:.5em 1.2em;display:flex;flex-wrap:wrap;gap:.4em 1.6em;align-items:center}
header h1{font-size:1.15em;margin:0;flex-basis:100%}
header label{white-space:nowrap}
#filter{width:18em}
.lead{margin:.6em 0}
.note{margin:.3em 0;padding:.4em .6em;border-radius:3px}
.not-comparable{background:#fff3cd;border:1px solid #e0c36a}
.missing{background:#fde2e1;border:1px solid #e8a09a}
.info{background:#eef3fb;border:1px solid #b7c9e6}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:.4em 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;user-select:none;position:relative}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:9px}
th[aria-sort=descending]::after{content:" \\25BC";font-size:9px}
td.name,th.name,td.text{text-align:left}
tr.best td{background:#e3f6e3;font-weight:600}
tr.member td{background:#fafafa;font-size:12px}
tbody tr.member{display:none}
tbody.open tr.member{display:table-row}
tbody.open tr.member.filtered,.filtered{display:none!important}
td.bad{color:#b00020;font-weight:600}
td.warn{color:#a15c00;font-weight:600}
.proto{display:inline-block;margin-left:4px;padding:0 3px;border-radius:2px;background:#e8e8e8;
 color:#444;font-size:11px;font-weight:400}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
button.toggle{font-size:11px;border:1px solid #bbb;background:#fff;border-radius:3px;
 margin-left:6px;cursor:pointer}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:10px}
.chart{min-height:340px;border:1px solid #eee}
.strip{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;margin:.4em 0 .9em;
 padding-bottom:.5em;border-bottom:1px solid #eee}
.strip h3{flex-basis:100%;font-size:13px;margin:0}
figure{margin:0;text-align:center;font-size:12px}
img.samples{width:auto;min-width:120px;max-width:240px;height:auto;image-rendering:pixelated;
 border:1px solid #ddd}
details{margin:.6em 0}
summary{cursor:pointer;font-weight:600}
code{background:#f3f3f3;padding:0 3px}
"""

JS = r"""
(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("genlab-figures").textContent);
  var runs = JSON.parse(document.getElementById("genlab-runs").textContent);
  var HOVER = {
    step: "%{meta.name}<br>step %{x}: <b>%{y:.4~g}</b><extra></extra>",
    time: "%{meta.name}<br>%{x:.1f} s: <b>%{y:.4~g}</b><extra></extra>"
  };
  var state = {smooth: 0, xmode: "step", hidden: new Set(), filtered: new Set()};
  var charts = [];

  function ema(ys, w) {  // TensorBoard's smoothing: debiased exponential moving average
    if (!w) return ys.slice();
    var last = 0, n = 0, out = new Array(ys.length);
    for (var i = 0; i < ys.length; i++) {
      var y = ys[i];
      if (y === null || !isFinite(y)) { out[i] = y; continue; }
      last = last * w + (1 - w) * y;
      n += 1;
      out[i] = last / (1 - Math.pow(w, n));
    }
    return out;
  }

  function decode(spec) {  // a Plotly typed array spec -> a plain array, NaN as null (a gap)
    if (!spec || typeof spec.bdata !== "string") return spec;
    var text = atob(spec.bdata), bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    var numbers = spec.dtype === "f8" ? new Float64Array(bytes.buffer) :
      new Float32Array(bytes.buffer);
    return Array.from(numbers, function (v) { return isNaN(v) ? null : v; });
  }

  function restyleData(chart) {
    var xs = chart.raw.map(function (r) { return state.xmode === "time" ? r.time : r.step; });
    var ys = chart.raw.map(function (r) { return ema(r.y, state.smooth); });
    return Plotly.restyle(chart.div, {x: xs, y: ys, hovertemplate: HOVER[state.xmode]});
  }

  function restyleVisibility(chart) {
    var seen = new Set(), visible = [], legend = [];
    chart.div.data.forEach(function (trace) {
      var meta = trace.meta;
      if (state.filtered.has(meta.run)) { visible.push(false); legend.push(false); return; }
      visible.push(state.hidden.has(meta.group) ? "legendonly" : true);
      legend.push(!seen.has(meta.group));
      seen.add(meta.group);
    });
    return Plotly.restyle(chart.div, {visible: visible, showlegend: legend});
  }

  function relabel(chart) {
    return Plotly.relayout(chart.div, {
      "xaxis.title.text": state.xmode === "time" ? "wall time (s)" : "step",
      "xaxis.autorange": true, "yaxis.autorange": true
    });
  }

  var DOUBLE_CLICK_MS = 300, pendingClick = null;

  function legendClick(event) {  // acts after the double-click delay, as Plotly's own does
    var group = event.data[event.curveNumber].meta.group;
    if (pendingClick !== null) {  // the second click of a double click
      clearTimeout(pendingClick);
      pendingClick = null;
      return false;
    }
    pendingClick = setTimeout(function () {
      pendingClick = null;
      if (state.hidden.has(group)) state.hidden.delete(group); else state.hidden.add(group);
      charts.forEach(restyleVisibility);
    }, DOUBLE_CLICK_MS);
    return false;
  }

  function legendDoubleClick(event) {  // show only this group; again: show all
    var group = event.data[event.curveNumber].meta.group;
    var groups = new Set(Object.keys(runs).map(function (uid) { return runs[uid].group; }));
    var alone = state.hidden.size === groups.size - 1 && !state.hidden.has(group);
    state.hidden = new Set();
    if (!alone) groups.forEach(function (g) { if (g !== group) state.hidden.add(g); });
    charts.forEach(restyleVisibility);
    return false;
  }

  function drawChart(index) {
    var figure = figures[index];
    var div = document.getElementById("chart-" + index);
    figure.data.forEach(function (t) {
      t.x = decode(t.x); t.y = decode(t.y); t.customdata = decode(t.customdata);
    });
    var raw = figure.data.map(function (t) { return {step: t.x, time: t.customdata, y: t.y}; });
    var config = {displaylogo: false, responsive: true, doubleClickDelay: DOUBLE_CLICK_MS};
    return Plotly.newPlot(div, figure.data, figure.layout, config).then(function () {
      var chart = {div: div, raw: raw};
      charts.push(chart);
      div.on("plotly_legendclick", legendClick);
      div.on("plotly_legenddoubleclick", legendDoubleClick);
      var work = [];
      if (state.smooth || state.xmode !== "step") work.push(restyleData(chart), relabel(chart));
      if (state.hidden.size || state.filtered.size) work.push(restyleVisibility(chart));
      return Promise.all(work);
    });
  }

  function drawAll() {
    var next = 0;
    function step() {
      if (next >= figures.length) { document.body.dataset.ready = "1"; return; }
      drawChart(next++).then(function () { setTimeout(step, 0); });
    }
    step();
  }

  function applyFilter(text) {
    var terms = text.toLowerCase().split(/\s+/).filter(Boolean);
    state.filtered = new Set();
    Object.keys(runs).forEach(function (uid) {
      var search = runs[uid].search;
      if (!terms.every(function (t) { return search.indexOf(t) >= 0; })) state.filtered.add(uid);
    });
    document.querySelectorAll("[data-run]").forEach(function (el) {
      el.classList.toggle("filtered", state.filtered.has(el.dataset.run));
    });
    document.querySelectorAll("[data-runs]").forEach(function (el) {
      var all = el.dataset.runs.split(" ").every(function (uid) { return state.filtered.has(uid); });
      el.classList.toggle("filtered", all);
    });
    var shown = Object.keys(runs).length - state.filtered.size;
    document.getElementById("shown").textContent = shown + " of " + Object.keys(runs).length;
    charts.forEach(restyleVisibility);
  }

  function cellKey(tbody, column) {
    var cell = tbody.rows[0].cells[column];
    return cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim();
  }

  function compareKeys(a, b) {  // numbers as numbers, other text by code point
    var x = Number(a), y = Number(b);
    if (!isNaN(x) && !isNaN(y)) return x - y;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function sortBy(table, th) {
    var column = th.cellIndex;
    var descending = th.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var bodies = Array.prototype.slice.call(table.tBodies);
    bodies.sort(function (p, q) {
      var a = cellKey(p, column), b = cellKey(q, column);
      if ((a === "") !== (b === "")) return a === "" ? 1 : -1;  // empty cells last
      return descending ? compareKeys(b, a) : compareKeys(a, b);
    });
    bodies.forEach(function (tbody) { table.appendChild(tbody); });
  }

  document.querySelectorAll("table.sortable th").forEach(function (th) {
    var table = th.closest("table");
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(table, th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(table, th); });
  });
  document.querySelectorAll("button.toggle").forEach(function (button) {
    button.addEventListener("click", function (e) {
      e.stopPropagation();
      var tbody = button.closest("tbody");
      tbody.classList.toggle("open");
      button.textContent = (tbody.classList.contains("open") ? "\u25BE " : "\u25B8 ") +
        button.dataset.label;
    });
  });
  document.getElementById("filter").addEventListener("input", function (e) {
    applyFilter(e.target.value);
  });
  var pending = false;
  document.getElementById("smoothing").addEventListener("input", function (e) {
    state.smooth = Math.min(0.99, Math.max(0, parseFloat(e.target.value) || 0));
    document.getElementById("smoothing-value").textContent = state.smooth.toFixed(2);
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; charts.forEach(restyleData); });
  });
  document.getElementById("xaxis").addEventListener("change", function (e) {
    state.xmode = e.target.value === "time" ? "time" : "step";
    charts.forEach(function (chart) { restyleData(chart).then(function () { relabel(chart); }); });
  });
  drawAll();
})();
"""

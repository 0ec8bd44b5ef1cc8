"""Compare finished runs locally: ``python -m genlab.compare <sweep dir | run dirs ...>``.

Reads each run's ``.hydra/config.yaml``, ``.hydra/overrides.yaml``, ``csv/metrics.csv``,
``sample_quality.json`` and ``samples/last.png`` (as data: nothing named in them is imported or
instantiated) and writes ``report.html`` plus ``plots/*.png`` (curves of ``val/fid`` and the
losses against step and wall time) into ``--out`` (default: the sweep dir when one directory is
given). Prints a short table. No account or network needed.

FIDs (and KID, IS, precision, recall) are comparable only when computed with the same feature
network, reference data and split, N real and N fake: each run's protocol gets a letter (column
``protocol``; ``?`` = not recorded) and a note says which runs' numbers are not comparable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genlab.report.protocol import protocol_groups
from genlab.report.render import plot_metric, plotted_metrics, summary_rows, write_html
from genlab.report.runs import (
    find_run_dirs,
    label_runs,
    load_run,
    metric_direction,
    override_table,
    sort_runs,
)


def choose_sort_metric(runs, requested: str | None) -> str | None:
    """``--metric``, else the runs' ``optimized_metric``, else val/fid, val/loss if logged."""
    if requested:
        return requested
    names = {name for run in runs for name in run.metrics}
    for run in runs:
        if run.optimized_metric:
            return run.optimized_metric
    return next((m for m in ("val/fid", "val/loss") if m in names), None)


def short_names(keys: list[str]) -> list[str]:
    """``model.optimizer_g.lr`` -> ``optimizer_g.lr``: the last two parts of each dotted key."""
    return [".".join(k.split(".")[-2:]) for k in keys]


def short_value(text: str) -> str:
    try:
        return f"{float(text):.3g}" if "." in text or "e" in text else text
    except ValueError:
        return text[:14]


SAMPLE_QUALITY_LEAVES = {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"}


def has_sample_quality(runs) -> bool:
    """Whether any run logged FID & co. or recorded a sample-quality protocol."""
    return any(
        run.protocols is not None
        or any(name.rsplit("/", 1)[-1] in SAMPLE_QUALITY_LEAVES for name in run.metrics)
        for run in runs
    )


def print_table(
    runs,
    keys,
    values,
    metric: str | None,
    max_columns: int = 5,
    protocols: list[str] | None = None,
    notes: list[str] | None = None,
) -> None:
    """A short terminal table: the first ``max_columns`` differing overrides, ``metric`` and the
    protocol letter of each run, then the comparability ``notes``."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    keys = keys[:max_columns]
    table = Table(title=Text(f"{len(runs)} runs" + (f", sorted by {metric}" if metric else "")))
    table.add_column("#")
    table.add_column("run", no_wrap=True)
    table.add_column("ok")
    for name in short_names(keys):
        table.add_column(Text(name), overflow="fold")
    if metric:
        table.add_column(Text(f"{metric} final"), justify="right", overflow="fold")
        table.add_column("best", justify="right")
    if protocols is not None:
        table.add_column("protocol")
    for rank, (run, overrides) in enumerate(zip(runs, values), 1):
        ok = {"completed": "yes", "failed": "FAILED", "diverged": "DIVERGED"}.get(run.status, "")
        row = [str(rank), run.name, ok, *(short_value(overrides[k]) for k in keys)]
        if metric:
            series = run.metrics.get(metric)
            final = series.final if series else None
            best = series.best(metric_direction(metric)) if series else None
            row += ["" if final is None else f"{final:.4g}", "" if best is None else f"{best:.4g}"]
        if protocols is not None:
            row.append(protocols[rank - 1])
        table.add_row(*(Text(cell) for cell in row))  # cells are data, never markup
    console = Console()
    console.print(table)
    for note in notes or []:
        console.print(Text.assemble(("Note: ", "bold"), note))  # text, never markup


def compare(paths: list[Path], out: Path | None = None, metric: str | None = None) -> Path:
    """Write the comparison of the runs under ``paths``; returns the report.html path."""
    run_dirs = find_run_dirs(paths)
    if not run_dirs:
        print(
            "genlab: error: no run directories (with .hydra/config.yaml) under "
            + ", ".join(str(p) for p in paths),
            file=sys.stderr,
        )
        raise SystemExit(2)
    runs = [load_run(path) for path in run_dirs]
    label_runs(runs)
    sort_metric = choose_sort_metric(runs, metric)
    runs = sort_runs(runs, sort_metric)
    keys, values = override_table(runs)
    for run, overrides in zip(runs, values):
        run.label = " ".join([f"{run.name}:"] + [f"{k}={v}" for k, v in overrides.items()])
    if out is None:
        out = paths[0] if len(paths) == 1 and paths[0] not in run_dirs else Path("compare_report")
    out.mkdir(parents=True, exist_ok=True)

    names = list(dict.fromkeys(name for run in runs for name in run.metrics))
    if sort_metric in names:
        names.remove(sort_metric)
        names.insert(0, sort_metric)
    header = ["run", "status", *keys] + [f"{m} {kind}" for m in names for kind in ("final", "best")]
    rows = summary_rows(runs, names, keys, values)
    protocols, notes = None, []
    if has_sample_quality(runs):
        protocols, notes = protocol_groups([r.name for r in runs], [r.protocols for r in runs])
        header.append("protocol")
        for row, label in zip(rows, protocols):
            row.append(label)
    plots = [
        plot_metric(runs, m, out / "plots" / (m.replace("/", "_") + ".png"))
        for m in plotted_metrics(runs)
    ]
    report = write_html(out / "report.html", runs, header, rows, plots, sort_metric, notes)
    print_table(runs, keys, values, sort_metric, protocols=protocols, notes=notes)
    print(f"report: {report}  ({len(plots)} plots in {out / 'plots'})")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="genlab-compare", description=__doc__.split("\n\n")[0].strip()
    )
    parser.add_argument("paths", nargs="+", type=Path, help="a sweep dir and/or run dirs")
    parser.add_argument("--out", type=Path, default=None, help="where report.html goes")
    parser.add_argument("--metric", default=None, help="sort by this metric (optimized_metric)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"genlab: error: no such directory: {', '.join(missing)}", file=sys.stderr)
        raise SystemExit(2)
    compare(args.paths, out=args.out, metric=args.metric)


if __name__ == "__main__":
    main()

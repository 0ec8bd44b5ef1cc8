"""Compare finished runs locally: ``python -m genlab.compare <sweep dir | run dirs ...>``.

Reads each run directory as data (nothing named in it is imported or instantiated; see
:mod:`genlab.report.runs`) and writes one self-contained ``report.html`` into ``--out``
(default: the sweep dir when one directory is given): a ranked table of the runs (runs that
differ only by ``seed`` as one group, mean ± std), every metric's curves against step or wall
time (Plotly, inlined), the sample grids over time, and notes on what cannot be compared or is
missing. A run's ``checkpoints/eval.json`` (``python -m genlab.eval``) adds its numbers
(``test/nll``, ``test/fid``, ``train/mig``, ...) as columns; ``--metric train/mig`` ranks by
one. Prints a short table. No account or network needed.

FIDs (and KID, IS, precision, recall) are comparable only when computed with the same feature
network, reference data and split, N real and N fake: each run's protocol gets a letter
(``?`` = not recorded) and a note says which runs' numbers are not comparable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genlab.report.runs import Run, add_evaluations, find_run_dirs, load_run, name_runs
from genlab.report.series import metric_direction
from genlab.report.table import Summary, summarize
from genlab.report.text import compact_name

#: genlab.eval columns the terminal table shows at most (report.html has them all).
TERMINAL_EVAL_COLUMNS = 4


def terminal_eval_columns(summary: Summary) -> list[str]:
    """The genlab.eval columns of the terminal table: those with a direction (they rank), the
    ones that share the ranked metric's split first (``train/mig`` -> ``train/dci_*``), at most
    :data:`TERMINAL_EVAL_COLUMNS`."""
    ranked = [n for n in summary.evaluated if metric_direction(n)]
    if summary.metric and "/" in summary.metric:
        split = summary.metric.rsplit("/", 1)[0] + "/"
        ranked.sort(key=lambda n: not n.startswith(split))  # stable: file order otherwise
    return ranked[:TERMINAL_EVAL_COLUMNS]


def print_table(summary: Summary, max_rows: int = 30) -> None:
    """A short terminal table (rank, run or seed group, n, the ranked metric, up to
    :data:`TERMINAL_EVAL_COLUMNS` numbers of genlab.eval, protocol, status) and the notes; long
    names are shortened (report.html has them in full)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    metric = summary.metric
    title = f"{len(summary.runs)} runs" + (f", sorted by {metric}" if metric else "")
    table = Table(title=Text(title))
    table.add_column("#", justify="right")
    table.add_column("run (seed group)" if summary.grouped else "run", overflow="fold")
    table.add_column("n", justify="right")
    if metric:
        table.add_column(Text(metric + (" mean ± std" if summary.grouped else "")), justify="right")
    evaluated = terminal_eval_columns(summary)
    for name in evaluated:
        table.add_column(Text(name), justify="right")
    if summary.protocols is not None:
        table.add_column("protocol")
    table.add_column("status")
    for entry in summary.entries[:max_rows]:
        value = entry.stat(metric)
        row = [str(entry.rank), compact_name(entry.name, 48), str(len(entry.runs))]
        if metric:
            row.append(value.text(group=False) if value else "")
        for name in evaluated:
            scored = entry.stat(name)
            row.append(scored.text(group=False) if scored else "")
        if summary.protocols is not None:
            row.append(summary.protocol(entry))
        row.append(entry.status())
        table.add_row(*(Text(cell) for cell in row))  # cells are data, never markup
    console = Console()
    console.print(table)
    if len(summary.entries) > max_rows:
        console.print(Text(f"... {len(summary.entries) - max_rows} more rows in report.html"))
    if summary.grouped and metric:
        console.print(Text(f"ranked by group mean over seeds of {metric}"))
    hidden = len(summary.evaluated) - len(evaluated)
    if hidden > 0:
        console.print(Text(f"{hidden} more genlab.eval columns in report.html"))
    for note in summary.comparability + summary.notes:
        console.print(Text.assemble(("Note: ", "bold"), note))  # text, never markup


def load_runs(paths: list[Path]) -> list[Run]:
    """The named runs below ``paths``; exits with status 2 when there are none."""
    run_dirs = find_run_dirs(paths)
    if not run_dirs:
        print(
            "genlab: error: no run directories (with .hydra/config.yaml, or env.json and "
            "status.json) under " + ", ".join(str(p) for p in paths),
            file=sys.stderr,
        )
        raise SystemExit(2)
    runs = [load_run(path) for path in run_dirs]
    add_evaluations(runs)
    name_runs(runs)
    return runs


def compare(paths: list[Path], out: Path | None = None, metric: str | None = None) -> Path:
    """Write the comparison of the runs under ``paths``; returns the report.html path."""
    from genlab.report.charts import figures_json, metric_figures
    from genlab.report.page import render_page

    paths = [Path(p) for p in paths]
    runs = load_runs(paths)
    summary = summarize(runs, metric)
    if out is None:
        single = len(paths) == 1 and paths[0].resolve() not in [run.path for run in runs]
        out = paths[0] if single else Path("compare_report")
    out.mkdir(parents=True, exist_ok=True)
    figures = metric_figures(summary)
    report = out / "report.html"
    report.write_text(render_page(summary, figures, figures_json(figures)), encoding="utf-8")
    print_table(summary)
    size = report.stat().st_size / 1e6
    print(f"report: {report}  ({size:.1f} MB, {len(figures)} charts; self-contained)")
    return report


class OneLineErrors(argparse.ArgumentParser):
    """argparse whose usage errors are genlab's one ``genlab: error: ...`` line and exit 2."""

    def error(self, message: str):
        print(
            f"genlab: error: {message} (usage: {self.format_usage().strip()[7:]})", file=sys.stderr
        )
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineErrors(prog="genlab-compare", description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("paths", nargs="+", type=Path, help="a sweep dir and/or run dirs")
    parser.add_argument("--out", type=Path, default=None, help="where report.html goes")
    parser.add_argument(
        "--metric", default=None, help="rank by this metric (default: the runs' optimized_metric)"
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"genlab: error: no such directory: {', '.join(missing)}", file=sys.stderr)
        raise SystemExit(2)
    compare(args.paths, out=args.out, metric=args.metric)


if __name__ == "__main__":
    main()

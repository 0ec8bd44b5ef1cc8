"""genlab.compare: the one-file report (parsed), its figures and the terminal table, from
synthetic run directories written the way ``genlab.train`` writes them."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from PIL import Image

from genlab.compare import main
from genlab.report.series import read_metrics_csv


class ReportParser(HTMLParser):
    """The cells of each table (by id), every element's src/href, images, chart divs, notes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.row_attrs: dict[str, list[dict[str, str]]] = {}
        self.cell_attrs: dict[str, list[list[dict[str, str]]]] = {}
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []  # every src= and href=
        self.charts: list[str] = []  # data-metric of each chart div
        self.notes: list[tuple[str, str]] = []  # (class, text)
        self.captions: list[str] = []
        self._table: str | None = None
        self._text: list[str] | None = None
        self._where: tuple | None = None

    @property
    def rows(self) -> list[list[str]]:
        """The ranked table's rows, header first."""
        return self.tables.get("summary", [])

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "table":
            self._table = attrs.get("id", "")
            for store in (self.tables, self.row_attrs, self.cell_attrs):
                store[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
            self.row_attrs[self._table].append(attrs)
            self.cell_attrs[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._text, self._where = [], ("cell",)
            self.cell_attrs[self._table][-1].append(attrs)
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "div" and "chart" in attrs.get("class", "").split():
            self.charts.append(attrs["data-metric"])
        elif tag == "p" and "note" in attrs.get("class", ""):
            self._text, self._where = [], ("note", attrs["class"])
        elif tag == "figcaption":
            self._text, self._where = [], ("caption",)

    def handle_endtag(self, tag):
        if self._text is None:
            if tag == "table":
                self._table = None
            return
        text = " ".join(" ".join(self._text).split())
        if tag in ("td", "th") and self._where == ("cell",):
            self.tables[self._table][-1].append(text)
        elif tag == "p" and self._where[0] == "note":
            self.notes.append((self._where[1], text))
        elif tag == "figcaption":
            self.captions.append(text)
        else:
            return
        self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


def parse_report(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def figures_of(path: Path) -> list[dict]:
    """The Plotly figures embedded in report.html, typed arrays (x, y, customdata) as lists."""
    text = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="genlab-figures">(.*?)</script>', text)
    figures = json.loads(found.group(1))
    for trace in (t for f in figures for t in f["data"]):
        for key in ("x", "y", "customdata"):
            spec = trace[key]  # {"dtype": "f4", "bdata": base64 of little-endian numbers}
            array = np.frombuffer(base64.b64decode(spec["bdata"]), "<" + spec["dtype"])
            trace[key] = [None if np.isnan(v) else v.item() for v in array]
    return figures


def figure(path: Path, metric: str) -> dict:
    (found,) = [
        f for f in figures_of(path) if html.unescape(f["layout"]["title"]["text"]) == metric
    ]
    return found


def png(value: int = 40, size: int = 8) -> Image.Image:
    return Image.fromarray(np.full((size, size, 3), value % 256, np.uint8))


def fake_run(
    run_dir: Path,
    overrides: list[str],
    fids: list[float] = (50.0,),
    *,
    status: str = "completed",
    swept: list[str] | None = None,
    num: int | None = None,
    metrics_csv: bool = True,
    val_time: bool = True,
    extra: dict[str, float] | None = None,
    error: str | None = None,
) -> Path:
    """A run dir as genlab.train writes it: .hydra/{config,overrides,hydra}.yaml, env.json
    (resolved config: defaults seed 42, lr 0.0002), status.json, csv/metrics.csv (two train
    rows and one validation row per epoch), samples/epoch=NNN.png and last.png."""
    choices = {"model": "gan", "trainer": "cpu", "logger": "csv", "experiment": None}
    resolved = {"seed": 42, "optimized_metric": "val/fid", "trainer": {"max_epochs": 3},
                "model": {"optimizer_g": {"lr": 0.0002}, "latent_dim": 64}}  # fmt: skip
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in choices:
            choices[key] = value
            continue
        *parents, leaf = key.split(".")
        node = resolved
        for part in parents:
            node = node.setdefault(part, {})
        try:
            node[leaf] = yaml.safe_load(value)
        except yaml.YAMLError:
            node[leaf] = value
    (run_dir / ".hydra").mkdir(parents=True)
    composed = {**resolved, "paths": {"output_dir": "${hydra:runtime.output_dir}"}}
    OmegaConf.save(composed, run_dir / ".hydra/config.yaml")
    OmegaConf.save(list(overrides), run_dir / ".hydra/overrides.yaml")
    hydra = {"hydra": {"runtime": {"choices": choices, "output_dir": str(run_dir)}}}
    (run_dir / ".hydra/hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run_dir / "env.json").write_text(json.dumps({"config": resolved, "overrides": overrides}))
    record = {"status": status, "error": error}
    if swept is not None:
        record.update(num=num, swept=swept, overrides=overrides, value=None)
    (run_dir / "status.json").write_text(json.dumps(record))
    if metrics_csv:
        (run_dir / "csv").mkdir()
        names = ["train/loss_d", "train/d_step", "val/fid", *(extra or {})]
        with (run_dir / "csv" / "metrics.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", "step", "time/elapsed", *names])
            for epoch, fid in enumerate(fids):
                for step in (10 * epoch + 4, 10 * epoch + 9):
                    writer.writerow([epoch, step, 2.0 * step, 1 / (step + 1), step, ""])
                t = 2.0 * (10 * epoch + 9) + 1 if val_time else ""
                row = [epoch, 10 * epoch + 9, t, "", "", fid, *(extra or {}).values()]
                writer.writerow(row)
    (run_dir / "samples").mkdir()
    for epoch in range(len(fids)):
        png(epoch * 50).save(run_dir / f"samples/epoch={epoch:03d}.png")
    png(200).save(run_dir / "samples/last.png")
    return run_dir


def sweep_job(sweep: Path, num: int, swept: list[str], fids, **kwargs) -> Path:
    """Job ``num`` of a sweep that varied ``swept`` (its other overrides: max_epochs=3)."""
    overrides = [*swept, "trainer.max_epochs=3"]
    return fake_run(sweep / str(num), overrides, fids, swept=swept, num=num, **kwargs)


def by_name(parser: ReportParser) -> dict[str, list[str]]:
    """Ranked table rows by run name (header included under its own name)."""
    return {row[1]: row for row in parser.rows}


# -- 2: compact first view ------------------------------------------------------------------
def test_report_ranks_by_optimized_metric_with_resolved_differing_values(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    sweep_job(sweep, 0, ["model=gan", "model.optimizer_g.lr=0.001", "seed=1"], [90.0, 70, 80])
    sweep_job(sweep, 1, ["model=gan", "model.optimizer_g.lr=0.0002"], [60.0, 50])  # seed 42
    sweep_job(sweep, 2, ["model=vae", "model.optimizer_g.lr=0.1", "seed=1"], [9.0], status="failed")
    main([str(sweep)])

    report = parse_report(sweep / "report.html")
    header, *rows = report.rows
    assert header == ["#", "run", "model", "model.optimizer_g.lr", "seed", "val/fid", "status"]
    assert "trainer.max_epochs" not in header  # same in every run: no column
    names = [row[1] for row in rows]
    assert names == [
        "model=gan,model.optimizer_g.lr=0.0002",  # final 50: ranks first
        "model=gan,model.optimizer_g.lr=0.001,seed=1",  # final 80
        "model=vae,model.optimizer_g.lr=0.1,seed=1",  # failed: last, whatever its FID
    ]
    assert [row[2:5] for row in rows] == [
        ["gan", "0.0002", "42"],  # the default seed, resolved from env.json
        ["gan", "0.001", "1"],
        ["vae", "0.1", "1"],  # group key: the option chosen in hydra.yaml
    ]
    assert rows[0][0].startswith("1") and rows[2][-1] == "failed"
    assert rows[1][header.index("val/fid")] == "80"  # final value
    best = [attrs.get("class", "") for attrs in report.row_attrs["summary"][1:]]
    assert "best" in best[0] and not any("best" in c for c in best[1:])

    printed = capsys.readouterr().out
    assert printed.index("lr=0.0002") < printed.index("lr=0.001") < printed.index("failed")
    assert "sorted by val/fid" in printed and "seed group" not in printed


def test_report_of_run_dirs_goes_to_out_and_duplicate_names_get_paths(tmp_path):
    sweep_job(tmp_path / "A", 0, ["model.latent_dim=32"], [9.0])
    sweep_job(tmp_path / "B", 0, ["model.latent_dim=8"], [8.0])
    fake_run(tmp_path / "single", [], [7.0])  # no overrides: named after its directory
    main([str(tmp_path / "A" / "0"), str(tmp_path / "B"), str(tmp_path / "single"),
          "--out", str(tmp_path / "cmp")])  # fmt: skip
    header, *rows = parse_report(tmp_path / "cmp" / "report.html").rows
    assert [row[1] for row in rows] == ["single", "model.latent_dim=8", "model.latent_dim=32"]

    sweep_job(tmp_path / "C", 0, ["model.latent_dim=32"], [5.0])  # the same name as A's job 0
    main([str(tmp_path / "A"), str(tmp_path / "C"), str(tmp_path / "B"),
          "--out", str(tmp_path / "two")])  # fmt: skip
    header, *rows = parse_report(tmp_path / "two" / "report.html").rows
    # A/0 and C/0 differ by nothing: one group of two, its runs named by their paths
    assert [row[1] for row in rows] == [
        "model.latent_dim=32 ▸ 2 seeds",  # mean FID 7 ranks before 8
        "A/0: model.latent_dim=32",
        "C/0: model.latent_dim=32",
        "model.latent_dim=8",
    ]


def test_bad_input_exits_2_with_one_error_line(tmp_path, capsys):
    for argv in ([str(tmp_path / "missing")], [str(tmp_path)]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("genlab: error: ")


def test_long_names_are_shortened_with_the_full_name_as_tooltip(tmp_path):
    long = "model.optimizer_g.lr=" + "0" * 60 + "1"
    sweep_job(tmp_path / "s", 0, [long], [5.0])
    sweep_job(tmp_path / "s", 1, ["model.optimizer_g.lr=0.5"], [6.0])
    main([str(tmp_path / "s")])
    report = parse_report(tmp_path / "s" / "report.html")
    cell = report.rows[1][1]
    title = report.cell_attrs["summary"][1][1]["title"]
    assert len(cell) < 60 and "…" in cell and title == long


# -- 3: seed groups ---------------------------------------------------------------------------
def test_seed_groups_show_mean_std_and_rank_by_group_mean(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for num, (seed, fid) in enumerate([(1, 10.0), (2, 12.0), (3, 14.0)]):  # mean 12
        sweep_job(sweep, num, ["model.optimizer_g.lr=0.001", f"seed={seed}"], [99.0, fid])
    for num, (seed, fid) in enumerate([(1, 5.0), (2, 30.0)], 3):  # mean 17.5, best run 5
        sweep_job(sweep, num, ["model.optimizer_g.lr=0.1", f"seed={seed}"], [99.0, fid])
    main([str(sweep)])

    report = parse_report(sweep / "report.html")
    header, *rows = report.rows
    assert header[1:] == ["run (seed group)", "model.optimizer_g.lr", "seed",
                          "val/fid (mean ± std)", "status"]  # fmt: skip
    entries = [row for row, attrs in zip(rows, report.row_attrs["summary"][1:])
               if "entry" in attrs.get("class", "")]  # fmt: skip
    assert [row[1] for row in entries] == [
        "model.optimizer_g.lr=0.001 ▸ 3 seeds",
        "model.optimizer_g.lr=0.1 ▸ 2 seeds",
    ]
    assert entries[0][2:5] == ["0.001", "1, 2, 3", "12 ± 2 (n=3)"]
    assert entries[1][4] == "17.5 ± 17.7 (n=2)"
    members = [row for row in rows if row not in entries]
    assert len(members) == 5 and members[0][1] == "model.optimizer_g.lr=0.001,seed=1"
    printed = capsys.readouterr().out
    assert "ranked by group mean over seeds" in printed
    assert printed.index("lr=0.001") < printed.index("lr=0.1")
    assert "12 ± 2" in printed and "17.5 ± 17.7" in printed


# -- 4: every metric family, true step and wall time ------------------------------------------
def test_every_metric_is_plotted_and_counters_are_not_metrics(tmp_path):
    vae = {"val/loss": 3.0, "val/elbo": -3.0, "val/nll": 2.5, "val/bpd": 1.2, "val/kid": 0.1,
           "val/kid_std": 0.01, "val/is": 2.0, "val/precision": 0.5, "val/recall": 0.4}  # fmt: skip
    fake_run(tmp_path / "a", ["model=vae"], [7.0, 6.0], extra=vae)
    fake_run(tmp_path / "b", ["model=gan"], [8.0], extra={"val/d_real": 0.7, "val/d_fake": 0.3})
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")])
    report = parse_report(tmp_path / "cmp" / "report.html")
    expected = {"val/fid", "train/loss_d", "val/d_real", "val/d_fake", *vae}
    assert set(report.charts) == expected and report.charts[0] == "val/fid"
    from genlab.report.runs import load_run

    run = load_run(tmp_path / "b")
    assert "train/d_step" in run.metrics and "train/d_step" not in run.report_metrics
    every = report.tables["every"][0]  # run, status, then "<metric> final" and best of each
    assert {h.removesuffix(" final") for h in every if h.endswith(" final")} == expected
    assert "val/fid min" in every and "val/is max" in every and "val/d_real min" not in every
    header = report.rows[0]
    for column in ("val/kid", "val/is", "val/precision", "val/recall"):
        assert column in header
    titles = {
        html.unescape(f["layout"]["title"]["text"]) for f in figures_of(report_path(tmp_path))
    }
    assert titles == expected


def report_path(tmp_path: Path) -> Path:
    return tmp_path / "cmp" / "report.html"


def test_validation_points_sit_at_their_true_step_and_wall_time(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,time/elapsed,train/loss,val/fid\n"
        "0,19,,,50\n"  # epoch-0 validation before the first timed row (log every 50 steps)
        "1,39,,,40\n"
        "2,49,100,0.5,\n"  # the first timed row
        "2,59,,,30\n"  # validation between two timed rows
        "3,69,140,0.4,\n"
        "3,79,161,,20\n"  # validation with its own time/elapsed (written now)
        "4,89,,,10\n"  # after the last timed row
    )
    fid = read_metrics_csv(path)["val/fid"]
    assert fid.steps == [19, 39, 59, 79, 89] and fid.epochs == [0, 1, 2, 3, 4]
    times = fid.times
    assert times[2] == pytest.approx(120.0) and times[3] == 161.0
    assert 0 < times[0] < times[1] < 100.0  # not clamped onto the first timestamp
    assert times[4] > 161.0  # after the last timed row: later, never clamped onto it
    assert times == sorted(times)

    fake_run(tmp_path / "a", [], [50.0, 40.0], val_time=False)
    fake_run(tmp_path / "b", ["seed=3"], [30.0, 20.0])
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")])
    traces = {t["meta"]["run"]: t for t in figure(report_path(tmp_path), "val/fid")["data"]}
    assert traces["r0"]["x"] == [9, 19] and traces["r1"]["x"] == [9, 19]
    assert traces["r0"]["customdata"] == [18, 38]  # from the train rows at those steps
    assert traces["r1"]["customdata"] == [19, 39]  # each row's own time/elapsed


# -- 5: samples over time ---------------------------------------------------------------------
def test_sample_strip_shows_first_middle_last_epoch_with_its_fid(tmp_path):
    fake_run(tmp_path / "a", ["seed=1"], [50.0, 40.0, 30.0, 20.0, 10.0])
    fake_run(tmp_path / "b", ["seed=2"], [45.0])
    (tmp_path / "b" / "samples" / "epoch=000.png").unlink()  # only last.png: shown as "last"
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")])
    report = parse_report(report_path(tmp_path))
    assert report.captions[:3] == [
        "seed=1 epoch 0 val/fid 50",
        "seed=1 epoch 2 val/fid 30",
        "seed=1 epoch 4 val/fid 10",
    ]
    grids = [img for img in report.images if img.get("class") == "samples"]
    assert len(grids) == 3  # the seed group (a, b) shows its first run's strip
    for img, value in zip(grids, (0, 100, 200)):
        data = base64.b64decode(img["src"].removeprefix("data:image/png;base64,"))
        assert Image.open(io.BytesIO(data)).getpixel((0, 0)) == (value, value, value)


# -- 1: one self-contained file ---------------------------------------------------------------
def test_report_is_one_self_contained_file(tmp_path):
    import plotly.graph_objects as go
    import plotly.offline

    fake_run(tmp_path / "runs" / "a", ["seed=1"], [5.0, 4.0])
    fake_run(tmp_path / "runs" / "b", ["model.latent_dim=8"], [6.0, 3.0])
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "cmp")])
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == ["report.html"]
    text = report_path(tmp_path).read_text(encoding="utf-8")
    assert text.count(plotly.offline.get_plotlyjs()[:2000]) == 1  # plotly.js inlined, once
    report = parse_report(report_path(tmp_path))
    assert report.links and all(link.startswith("data:image/png;base64,") for link in report.links)
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=", text)
    figures = figures_of(report_path(tmp_path))
    assert len(report.charts) == 2 and len(figures) == 2
    for fig in figures:  # valid Plotly figures (plotly validates every attribute)
        go.Figure(fig)


# -- 6: loud about what cannot be compared or is missing ---------------------------------------
def test_runs_without_metrics_and_unfinished_runs_are_flagged(tmp_path, capsys):
    fake_run(tmp_path / "ok", ["seed=1"], [5.0])
    fake_run(tmp_path / "nocsv", ["seed=2"], [5.0], metrics_csv=False)
    fake_run(tmp_path / "broke", ["seed=3"], [1.0], status="failed", error="RuntimeError: <boom>")
    fake_run(tmp_path / "nan", ["seed=4"], [2.0], status="diverged")
    fake_run(tmp_path / "stopped", ["seed=5"], [3.0], status="interrupted")
    fake_run(tmp_path / "busy", ["seed=6"], [4.0], status="running")
    main([str(tmp_path), "--out", str(tmp_path / "cmp")])
    notes = [text for css, text in parse_report(report_path(tmp_path)).notes if "missing" in css]
    printed = " ".join(capsys.readouterr().out.split())
    for words in (
        "No metrics: logged without the csv logger",
        "Failed (left out of ranking): seed=3 (RuntimeError: <boom>)",
        "Diverged (left out of ranking): seed=4",
        "Interrupted: seed=5",
        "Running: seed=6",
    ):
        assert any(words in note for note in notes), words
        assert words in printed, words
    assert any("seed=2" in n for n in notes if n.startswith("No metrics"))
    assert "RuntimeError: &lt;boom&gt;" in report_path(tmp_path).read_text()


def test_metric_and_run_names_are_text_never_markup(tmp_path, capsys):
    names = {"$\\foo{$_loss": 1.0, "<b>x</b>": 2.0, "train/[red]rich[/red]": 3.0}
    fake_run(tmp_path / "a", ["+tag=<i>$a$</i>"], [5.0], extra=names)
    fake_run(tmp_path / "b", ["+tag=&amp;"], [6.0], extra=names)
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")])
    text = report_path(tmp_path).read_text(encoding="utf-8")
    assert "<b>x</b>" not in text and "<i>" not in text
    report = parse_report(report_path(tmp_path))
    assert {"$\\foo{$_loss", "<b>x</b>", "train/[red]rich[/red]"} <= set(report.charts)
    assert [row[1] for row in report.rows[1:]] == ["tag=<i>$a$</i>", "tag=&amp;"]
    for fig in figures_of(report_path(tmp_path)):
        shown = [fig["layout"]["title"]["text"]] + [t["name"] for t in fig["data"]]
        shown += [t["meta"]["name"] for t in fig["data"]]
        for label in shown:  # Plotly renders tags and typesets $...$: neither may be left
            assert "<" not in label and ">" not in label and "$" not in label
            assert "&" not in label.replace("&lt;", "").replace("&gt;", "").replace(
                "&amp;", ""
            ).replace("&#36;", "")
    assert figure(report_path(tmp_path), "$\\foo{$_loss")["layout"]["title"]["text"] == (
        "&#36;\\foo{&#36;_loss"
    )
    printed = capsys.readouterr().out
    assert "tag=<i>$a$</i>" in printed


# -- sample-quality protocols (issue 11) -------------------------------------------------------
def protocol(
    num_fake: int = 1000, split: str = "train", network: str = "classifier-x-1a2b"
) -> dict:
    return {
        "metrics": ["fid", "kid"], "features": "classifier", "network": network,
        "reference_data": "fashion_mnist_mini", "reference_split": split,
        "reference_fingerprint": f"fp-{split}", "num_real": 10000, "num_fake": num_fake,
        "seed": 0, "kid_subsets": 10, "kid_subset_size": num_fake // 2,
    }  # fmt: skip


def with_protocol(run_dir: Path, *protocols: dict) -> None:
    """``<run dir>/sample_quality.json`` as SampleQualityCallback writes it."""
    from genlab.report.protocol import record_protocol

    for epoch, p in enumerate(protocols):
        record_protocol(run_dir / "sample_quality.json", p, epoch, ["val/fid", "val/kid"])


def notes_of(report: Path) -> list[str]:
    return [text for css, text in parse_report(report).notes if "not-comparable" in css]


def protocol_letters(report: Path) -> dict[str, str]:
    """Run name -> the protocol letter shown next to its FID in the ranked table."""
    parser = parse_report(report)
    header, *rows = parser.rows
    column = next(i for i, name in enumerate(header) if name.startswith("val/fid"))
    return {row[1]: row[column].rsplit(" ", 1)[-1] for row in rows if row[column]}


def test_fids_with_different_n_split_or_network_are_marked_not_comparable(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for i, fid in enumerate([5.0, 6.0, 7.0, 8.0]):
        sweep_job(sweep, i, [f"model.optimizer_g.lr=0.{i + 1}"], [fid], extra={"val/kid": 0.1})
    with_protocol(sweep / "0", protocol())
    with_protocol(sweep / "1", protocol())  # same protocol as run 0: comparable
    with_protocol(sweep / "2", protocol(num_fake=5000, split="test"))
    with_protocol(sweep / "3", protocol(network="inception-fid_helper-7ff4a85c3a63-q8"))
    main([str(sweep)])

    letters = protocol_letters(sweep / "report.html")
    assert list(letters.values()) == ["A", "A", "B", "C"]
    (note,) = notes_of(sweep / "report.html")
    assert note.startswith("Not comparable") and "N fake" in note and "split" in note
    assert "network" in note and "N fake 5000" in note and "inception-fid_helper" in note
    printed = capsys.readouterr().out
    assert "Not comparable" in printed and "protocol" in printed


def test_one_protocol_gives_no_note_and_unknown_ones_are_said(tmp_path, capsys):
    kid = {"extra": {"val/kid": 0.1}}
    fake_run(tmp_path / "a", ["+name=a"], [9.0], **kid)
    fake_run(tmp_path / "b", ["+name=b"], [8.0], **kid)
    with_protocol(tmp_path / "a", protocol())
    with_protocol(tmp_path / "b", protocol())
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "same")])
    assert notes_of(tmp_path / "same" / "report.html") == []
    assert "Not comparable" not in capsys.readouterr().out

    fake_run(tmp_path / "c", ["+name=c"], [7.0], **kid)  # an older run: no sample_quality.json
    with_protocol(tmp_path / "a", protocol(num_fake=2000))  # changed within run a
    main([*(str(tmp_path / n) for n in "abc"), "--out", str(tmp_path / "mixed")])
    letters = protocol_letters(tmp_path / "mixed" / "report.html")
    assert letters == {"name=a": "A→B", "name=b": "A", "name=c": "?"}
    notes = notes_of(tmp_path / "mixed" / "report.html")
    assert any(n.startswith("Not comparable") and "N fake" in n for n in notes)
    assert any("changed during run(s) name=a" in n for n in notes)
    assert any("No recorded protocol" in n and "name=c" in n for n in notes)


def test_compare_reads_run_dirs_as_data_only(tmp_path, monkeypatch, capsys):
    """Crafted run dirs: _target_s, interpolations and markup in config, overrides, status and
    sample_quality.json are shown as text; nothing is imported, instantiated or run."""
    import importlib

    import hydra.utils

    marker = tmp_path / "marker"
    run = fake_run(tmp_path / "evil", ["seed=1"], [3.0])
    attack = {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w')"]}
    OmegaConf.save(
        {"optimized_metric": {"_target_": "os.getcwd"}, "data": attack,
         "callbacks": {"x": {"_target_": "genlab_h2_crafted.module.Callback"}},
         "paths": {"output_dir": "${oc.env:HOME}"}, "seed": "${oc.env:HOME}"},
        run / ".hydra/config.yaml",
    )  # fmt: skip
    (run / "env.json").unlink()  # values fall back to config.yaml: as text, unresolved
    OmegaConf.save(["seed=${oc.env:HOME}", "x=[red]markup[/red]"], run / ".hydra/overrides.yaml")
    (run / "status.json").write_text(
        json.dumps({"status": {"_target_": "os.getcwd"}, "error": "${oc.env:HOME}"})
    )
    (run / "sample_quality.json").write_text(
        json.dumps({"protocols": [{"network": attack, "num_fake": [1, {"_target_": "os.getcwd"}],
                                   "reference_split": "[bold]x[/bold]"}], "logged_as": "val/fid"})
    )  # fmt: skip
    fake_run(tmp_path / "plain", ["seed=2"], [4.0])
    plain = {"version": 1, "logged_as": ["val/fid"], "protocols": [protocol()]}
    (tmp_path / "plain" / "sample_quality.json").write_text(json.dumps(plain))

    imported: list[str] = []
    real_import = importlib.import_module
    monkeypatch.setattr(
        importlib,
        "import_module",
        lambda name, *a: (imported.append(name), real_import(name, *a))[1],
    )

    def forbidden(*args, **kwargs):
        raise AssertionError("compare must not instantiate or resolve anything from a run dir")

    for name in ("instantiate", "call", "get_method", "get_class", "get_object"):
        monkeypatch.setattr(hydra.utils, name, forbidden, raising=False)
    monkeypatch.setenv("HOME", "/should/not/be/read")
    main([str(run), str(tmp_path / "plain"), "--out", str(tmp_path / "cmp")])

    assert not marker.exists()
    assert not [n for n in imported if "genlab_h2_crafted" in n or n in ("os", "builtins")]
    report = report_path(tmp_path).read_text(encoding="utf-8")
    assert "/should/not/be/read" not in report and "${oc.env:HOME}" in report
    rows = {row[1]: row for row in parse_report(report_path(tmp_path)).rows[1:]}
    assert rows["seed=${oc.env:HOME},x=[red]markup[/red]"][2] == "${oc.env:HOME}"
    assert protocol_letters(report_path(tmp_path)) == {
        "x=[red]markup[/red] ▸ 2 seeds": "A,B",  # x is in neither config: only seed differs
        "seed=${oc.env:HOME},x=[red]markup[/red]": "A",
        "seed=2": "B",
    }
    (note,) = notes_of(report_path(tmp_path))
    assert "builtins.exec" in note  # the crafted value, as text
    printed = capsys.readouterr().out
    assert "Not comparable" in printed and "/should/not/be/read" not in printed


def test_compare_imports_neither_torch_nor_lightning(tmp_path):
    """``genlab.compare`` stays light: reading runs and writing the page needs no torch."""
    import subprocess
    import sys

    fake_run(tmp_path / "a", ["seed=1"], [5.0])
    code = (
        "import sys; from pathlib import Path; from genlab.compare import compare; "
        f"compare([Path({str(tmp_path / 'a')!r})], out=Path({str(tmp_path / 'out')!r})); "
        "print(sorted(m for m in ('torch', 'lightning', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_scale_benchmark_runs_on_a_small_sweep():
    """benchmarks/compare_scale.py builds its synthetic sweep and reports time and size (no
    timing is asserted)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_scale.py"
    argv = ["--configs", "2", "--seeds", "2", "--epochs", "3", "--repeats", "1"]
    result = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert re.search(r"genlab.compare, 4 runs: [\d.]+ s .*report.html [\d.]+ MB", result.stdout)


# -- genlab.eval's numbers (checkpoints/eval.json) ---------------------------------------------
def with_eval(run_dir: Path, scores: dict[str, float], **protocol_keys) -> None:
    """The eval.json ``python -m genlab.eval`` writes next to the run's checkpoint."""
    record = {"ckpt_path": str(run_dir / "checkpoints/last.ckpt"), "global_step": 29, "epoch": 2}
    record.update(scores)
    record.update({f"sample_quality_{k}": v for k, v in protocol_keys.items()})
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / "eval.json").write_text(json.dumps(record))


def test_eval_numbers_compare_model_variants_with_seeds(tmp_path, capsys):
    """Three VAE variants x 2 seeds scored by genlab.eval: one report ranks them by MIG."""
    sweep = tmp_path / "sweep"
    variants = {"beta_vae": (0.05, 0.07), "beta_tcvae": (0.20, 0.30), "factor_vae": (0.10, 0.12)}
    num = 0
    for model, migs in variants.items():
        for seed, mig in enumerate(migs):
            job = sweep_job(sweep, num, [f"model={model}", f"seed={seed}"], [50.0])
            scores = {"test/mig": mig, "test/dci_disentanglement": 2 * mig, "test/nll_stderr": 0.1}
            with_eval(job, {**scores, "test/note": "text", "test/bad": float("nan")})
            num += 1
    main([str(sweep), "--metric", "test/mig"])

    report = parse_report(sweep / "report.html")
    header, *rows = report.rows
    assert header[-4:] == ["test/mig (mean ± std)", "val/fid", "test/dci_disentanglement", "status"]
    entries = [row for row, attrs in zip(rows, report.row_attrs["summary"][1:])
               if "entry" in attrs.get("class", "")]  # fmt: skip
    assert [row[1].split(" ")[0] for row in entries] == [
        "model=beta_tcvae", "model=factor_vae", "model=beta_vae"]  # fmt: skip
    assert entries[0][-4] == "0.25 ± 0.0707 (n=2)" and entries[0][-2] == "0.5 ± 0.141 (n=2)"
    assert "test/mig" not in report.charts  # one value per run: a table column, not a curve
    notes = [text for _, text in report.notes]
    assert any(n.startswith("Columns from genlab.eval") and "test/mig" in n for n in notes)
    printed = capsys.readouterr().out
    assert "test/dci_disentanglement" in printed and "beta_tcvae" in printed
    assert "nll_stderr" not in printed and "test/bad" not in printed


def test_eval_fids_of_other_protocols_are_said_and_do_not_shadow_logged_series(tmp_path):
    a = fake_run(tmp_path / "a", ["+name=a"], [9.0], extra={"test/fid": 1.0})
    b = fake_run(tmp_path / "b", ["+name=b"], [8.0])
    with_eval(a, {"test/fid": 30.0}, network="classifier-x", num_fake=1000, num_real=10)
    with_eval(b, {"test/fid": 20.0}, network="classifier-x", num_fake=5000, num_real=10)
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")])

    report = parse_report(tmp_path / "out" / "report.html")
    header = report.rows[0]
    assert "eval/test/fid" in header and "test/fid" not in header
    rows = by_name(report)
    assert rows["name=a"][header.index("eval/test/fid")] == "30"
    assert rows["name=b"][header.index("eval/test/fid")] == "20"  # one name in every run
    every_header, *every_rows = report.tables["every"]
    logged = {row[0]: row[every_header.index("test/fid final")] for row in every_rows}
    assert logged == {"name=a": "1", "name=b": ""}  # a's own test/fid is kept apart
    notes = [text for _, text in report.notes]
    assert any(n.startswith("genlab.eval: Not comparable") and "N fake" in n for n in notes)


def test_runs_scored_only_by_genlab_eval_are_not_said_to_lack_a_protocol(tmp_path):
    """metrics.every_n_epochs=0 during training, FD from genlab.eval (the scarce-data grid)."""
    for name, fid in (("a", 30.0), ("b", 20.0)):
        run = fake_run(tmp_path / name, [f"+name={name}"], [9.0])
        (run / "csv" / "metrics.csv").write_text("epoch,step,train/loss_d\n0,9,0.5\n")
        with_eval(run, {"test/fid": fid}, network="classifier-x", num_fake=1000, num_real=10)
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")])
    notes = [text for _, text in parse_report(tmp_path / "out" / "report.html").notes]
    assert not any("protocol" in n for n in notes), notes  # one eval protocol, recorded


def test_the_terminal_shows_a_few_eval_columns_of_the_ranked_split(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich's width: whole column names
    run = fake_run(tmp_path / "a", ["+name=a"], [9.0])
    scores = {"test/elbo": -95.0, "test/nll": 90.0, "test/recon_mse": 0.1}
    scores.update({f"train/{k}": 0.5 for k in ("mig", "dci_disentanglement", "dci_completeness")})
    scores.update({"train/factor_vae_score": 0.4, "train/dci_informativeness_test": 0.3})
    with_eval(run, scores)
    main([str(run), "--out", str(tmp_path / "out"), "--metric", "train/mig"])
    printed = capsys.readouterr().out
    header = printed.split("name=a")[0]  # the table's head, above the first row
    for name in ("dci_disentan", "dci_complet", "factor_vae", "dci_informat"):
        assert name in printed  # the ranked metric's split first
    assert "test/elbo" not in header and "test/nll" not in header
    assert "3 more genlab.eval columns in report.html" in printed  # elbo, nll, recon_mse
    head = parse_report(tmp_path / "out" / "report.html").rows[0]
    assert {"test/elbo", "test/nll", "test/recon_mse", "train/factor_vae_score"} <= set(head)


def test_runs_written_with_paths_output_dir_are_found_without_hydra_dir(tmp_path, capsys):
    """``paths.output_dir=X`` keeps .hydra/ in Hydra's run dir; X has env.json, status.json,
    csv/ and checkpoints/: genlab.compare X finds the run and reads its overrides and choices."""
    for model, fid in (("gan", 30.0), ("vae", 20.0)):
        run = fake_run(tmp_path / "runs" / model, [f"model={model}", "seed=1"], [50.0, fid])
        env = json.loads((run / "env.json").read_text())
        env["config"]["model"] = {"latent_dim": 64}  # a config group: a node of the config
        (run / "env.json").write_text(json.dumps(env))
        for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
            (run / ".hydra" / name).unlink()
        (run / ".hydra").rmdir()
    main([str(tmp_path / "runs")])
    header, *rows = parse_report(tmp_path / "runs" / "report.html").rows
    assert header[2] == "model" and [row[2] for row in rows] == ["vae", "gan"]  # by val/fid
    assert "no run directories" not in capsys.readouterr().err


def test_an_eval_fid_ranked_first_carries_no_training_protocol_letter(tmp_path):
    for name, fid in (("a", 30.0), ("b", 20.0)):
        run = fake_run(tmp_path / name, [f"+name={name}"], [9.0])
        with_protocol(run, protocol())  # the training's val/fid: protocol A
        with_eval(run, {"test/fid": fid}, network="classifier-x", num_fake=1000, num_real=10)
    main(
        [
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--out",
            str(tmp_path / "o"),
            "--metric",
            "test/fid",
        ]
    )
    header, *rows = parse_report(tmp_path / "o" / "report.html").rows
    ranked, logged = header.index("test/fid"), header.index("val/fid")
    assert [row[ranked] for row in rows] == ["20", "30"]  # no letter: not the training's protocol
    assert all(row[logged].endswith(" A") for row in rows)  # the training's FID keeps its letter

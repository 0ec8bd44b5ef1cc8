"""genlab.compare: report.html (parsed), plots, and the terminal table from run directories."""

from __future__ import annotations

import csv
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from genlab.compare import main


class ReportParser(HTMLParser):
    """Table cells by row, and the src of every <img>."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[dict[str, str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse_report(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def fake_run(run_dir: Path, lr: str, fids: list[float], status: str = "completed") -> None:
    """A run dir as genlab.train writes it: config, overrides, metrics.csv, last.png."""
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save({"optimized_metric": "val/fid", "seed": 1}, run_dir / ".hydra/config.yaml")
    OmegaConf.save(["seed=1", f"model.optimizer_g.lr={lr}"], run_dir / ".hydra/overrides.yaml")
    (run_dir / "status.json").write_text(json.dumps({"status": status, "num": 0}))
    (run_dir / "csv").mkdir()
    with (run_dir / "csv" / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "step", "time/elapsed", "train/loss_d", "val/fid"])
        for epoch, fid in enumerate(fids):
            step = 10 * (epoch + 1)
            writer.writerow([epoch, step - 1, 2.0 * step, 1.0 / (epoch + 1), ""])
            writer.writerow([epoch, step - 1, "", "", fid])
    (run_dir / "samples").mkdir()
    Image.fromarray(np.full((8, 8, 3), 40 * len(fids), np.uint8)).save(run_dir / "samples/last.png")


def test_report_sorts_by_optimized_metric_and_shows_differing_overrides(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    fake_run(sweep / "0", "0.001", [90.0, 70.0, 80.0])  # best 70, final 80
    fake_run(sweep / "1", "0.0002", [60.0, 50.0])  # final 50: ranks first
    fake_run(sweep / "2", "0.1", [300.0], status="failed")
    main([str(sweep)])

    report = parse_report(sweep / "report.html")
    header, *rows = report.rows
    assert header[:3] == ["run", "status", "model.optimizer_g.lr"]  # seed=1 everywhere: no column
    fid_final, fid_best = header.index("val/fid final"), header.index("val/fid best")
    assert [row[0] for row in rows] == ["1", "0", "2"]  # by final val/fid, failed run last
    assert [row[2] for row in rows] == ["0.0002", "0.001", "0.1"]
    assert (rows[1][fid_final], rows[1][fid_best]) == ("80", "70")
    assert rows[2][1] == "failed"
    plots = [img["src"] for img in report.images if img.get("class") == "plot"]
    assert sorted(plots) == ["plots/train_loss_d.png", "plots/val_fid.png"]
    for plot in plots:
        assert Image.open(sweep / plot).size[0] > 400
    grids = [img for img in report.images if img.get("class") == "samples"]
    assert len(grids) == 3 and all(g["src"].startswith("data:image/png;base64,") for g in grids)

    table = capsys.readouterr().out
    assert table.index(" 1 ") < table.index(" 0 ") and "FAILED" in table


def test_report_of_run_dirs_goes_to_out(tmp_path):
    fake_run(tmp_path / "a", "0.001", [9.0])
    fake_run(tmp_path / "b", "0.002", [8.0])
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")])
    header, *rows = parse_report(tmp_path / "cmp" / "report.html").rows
    assert [row[0] for row in rows] == ["b", "a"]


# ------------------------------------------------------------ sample-quality protocols (issue 11)
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
    text = report.read_text(encoding="utf-8")
    return [html.unescape(n) for n in re.findall(r'<p class="not-comparable">(.*?)</p>', text)]


def test_fids_with_different_n_split_or_network_are_marked_not_comparable(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for i, (lr, fids) in enumerate(
        [("0.1", [5.0]), ("0.2", [6.0]), ("0.3", [7.0]), ("0.4", [8.0])]
    ):
        fake_run(sweep / str(i), lr, fids)
    with_protocol(sweep / "0", protocol())
    with_protocol(sweep / "1", protocol())  # same protocol as run 0: comparable
    with_protocol(sweep / "2", protocol(num_fake=5000, split="test"))
    with_protocol(sweep / "3", protocol(network="inception-fid_helper-7ff4a85c3a63-q8"))
    main([str(sweep)])

    header, *rows = parse_report(sweep / "report.html").rows
    column = header.index("protocol")
    assert {row[0]: row[column] for row in rows} == {"0": "A", "1": "A", "2": "B", "3": "C"}
    (note,) = notes_of(sweep / "report.html")
    assert note.startswith("Not comparable") and "N fake" in note and "split" in note
    assert "network" in note and "N fake 5000" in note and "inception-fid_helper" in note
    printed = capsys.readouterr().out
    assert "Not comparable" in printed and "protocol" in printed


def test_one_protocol_gives_no_note_and_unknown_ones_are_said(tmp_path, capsys):
    fake_run(tmp_path / "a", "0.001", [9.0])
    fake_run(tmp_path / "b", "0.002", [8.0])
    with_protocol(tmp_path / "a", protocol())
    with_protocol(tmp_path / "b", protocol())
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "same")])
    assert notes_of(tmp_path / "same" / "report.html") == []
    assert "Not comparable" not in capsys.readouterr().out

    fake_run(tmp_path / "c", "0.003", [7.0])  # an older run: no sample_quality.json
    with_protocol(tmp_path / "a", protocol(num_fake=2000))  # changed within run a
    runs = [str(tmp_path / n) for n in "abc"]
    main([*runs, "--out", str(tmp_path / "mixed")])
    header, *rows = parse_report(tmp_path / "mixed" / "report.html").rows
    labels = {row[0]: row[header.index("protocol")] for row in rows}
    assert labels == {"a": "A→B", "b": "A", "c": "?"}
    notes = notes_of(tmp_path / "mixed" / "report.html")
    assert any(n.startswith("Not comparable") and "N fake" in n for n in notes)
    assert any("changed during run(s) a" in n for n in notes)
    assert any("No recorded protocol" in n and "c" in n for n in notes)


def test_compare_reads_run_dirs_as_data_only(tmp_path, monkeypatch, capsys):
    """Crafted run dirs: _target_s, interpolations and markup in config, overrides, status and
    sample_quality.json are shown as text; nothing is imported, instantiated or run."""
    import importlib

    import hydra.utils

    marker = tmp_path / "marker"
    run = tmp_path / "evil"
    fake_run(run, "0.1", [3.0])
    attack = {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w')"]}
    OmegaConf.save(
        {"optimized_metric": {"_target_": "os.getcwd"}, "data": attack,
         "callbacks": {"x": {"_target_": "genlab_h2_crafted.module.Callback"}},
         "paths": {"output_dir": "${oc.env:HOME}"}},
        run / ".hydra/config.yaml",
    )  # fmt: skip
    OmegaConf.save(["seed=${oc.env:HOME}", "x=[red]markup[/red]"], run / ".hydra/overrides.yaml")
    (run / "status.json").write_text(
        json.dumps({"status": {"_target_": "os.getcwd"}, "error": "${oc.env:HOME}"})
    )
    (run / "sample_quality.json").write_text(
        json.dumps({"protocols": [{"network": attack, "num_fake": [1, {"_target_": "os.getcwd"}],
                                   "reference_split": "[bold]x[/bold]"}], "logged_as": "val/fid"})
    )  # fmt: skip
    fake_run(tmp_path / "plain", "0.2", [4.0])
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
    report = (tmp_path / "cmp" / "report.html").read_text(encoding="utf-8")
    assert "/should/not/be/read" not in report and "${oc.env:HOME}" in report
    header, *rows = parse_report(tmp_path / "cmp" / "report.html").rows
    labels = {row[0]: row[header.index("protocol")] for row in rows}
    assert labels == {"evil": "A", "plain": "B"}
    (note,) = notes_of(tmp_path / "cmp" / "report.html")
    assert "builtins.exec" in note  # the crafted value, as text
    printed = capsys.readouterr().out
    assert "Not comparable" in printed and "/should/not/be/read" not in printed

"""genlab.compare: report.html (parsed), plots, and the terminal table from run directories."""

from __future__ import annotations

import csv
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
    OmegaConf.save({"status": status, "num": 0}, run_dir / "job_status.yaml")
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

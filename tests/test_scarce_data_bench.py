"""benchmarks/scarce_data.py's report: the seed aggregation, the FD verdicts, the kept
hand-written findings and the figure, fed with made-up runs (no training)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import scarce_data as sd  # noqa: E402


def fake_cell(fraction, augment, seed, fd, d_train=0.9, d_held=0.6, ada=False):
    cell = {
        "fraction": fraction,
        "augment": augment,
        "seed": seed,
        "eval": {"test/fid": fd, "test/coverage_kl": 0.5, "test/classes_covered": 9.0},
        "train_d_real": d_train,
        "train_d_fake": 0.2,
        "val_d_real": d_held,
        "val_d_real_curve": [(99, 0.8), (199, d_held)],
        "train_d_real_curve": [(9, 0.7), (199, d_train)],
        "train_s": 60.0,
        "eval_s": 30.0,
    }
    if ada:
        curve = [(9, 0.0), (99, 0.4), (199, 0.6)]
        cell.update(ada_p_curve=[curve[0], *curve, curve[-1]], ada_p_max=0.6, ada_p_full=curve)
    return cell


def fake_args(**kw):
    args = dict(
        fractions=[0.01, 0.1],
        augments=["none", "diffaugment"],
        width=32,
        batch_size=64,
        steps=400,
        subset_seed=0,
        seeds=[0, 1],
        threads=1,
        ada_speed_kimg=10.0,
        val_batches=4,
        val_every=100,
        report_only=True,
        load_at_start="1.0 1.0 1.0",
        out=Path("outputs/scarce_data_fmnist"),
        findings_checked=False,
    )
    args.update(kw)
    return SimpleNamespace(**args)


def test_the_table_shows_mean_and_std_over_seeds_and_unrun_cells():
    cells = [
        fake_cell(0.01, "none", 0, 40.0, d_train=0.9, d_held=0.5),
        fake_cell(0.01, "none", 1, 44.0, d_train=0.8, d_held=0.7),
        fake_cell(0.01, "diffaugment", 0, 30.0),
        fake_cell(0.01, "diffaugment", 1, 32.0),
        fake_cell(0.1, "none", 0, 35.0),
        # its second seed is being scored: eval.json written, timing.json not yet
        {"fraction": 0.1, "augment": "none", "seed": 1, "eval": {"test/fid": 99.0}},
    ]
    page, _ = sd.render_page(fake_args(), cells, "fashion_mnist", "python benchmarks/x.py")
    rows: dict[str, str] = {}  # the main table's row per cell (the first row naming it)
    for ln in page.splitlines():
        if ln.startswith("| 1") and ln.count(" | ") > 2:
            rows.setdefault("".join(ln.split(" | ")[:2]), ln)
    assert "| 1% | none | 600 | 2 | 42.0 ± 2.8 |" in page  # FD mean ± sample std (n - 1)
    # D(train), D(held-out) and their gap per seed (0.4 and 0.1)
    assert "| 0.850 ± 0.071 | 0.600 ± 0.141 | 0.25 ± 0.21 |" in rows["| 1%none"]
    assert "| 10% | none | 6000 | 1 | 35.0 |" in page  # one seed: the value alone
    assert "not run" in rows["| 10%diffaugment"]
    assert "Wall time of the 5 scored runs: 8 minutes in all" in page  # 5 x 1.5 minutes
    summary = next(ln for ln in page.splitlines() if ln.startswith("- 1%:"))
    assert "DCGAN FD 42.0 ± 2.8 (seeds: 40.0, 44.0)" in summary
    assert "diffaugment 31.0 ± 1.4 (-26% in the mean; seeds: 30.0, 32.0)" in summary
    assert "lower in every seed" in summary


def test_fd_differences_within_the_seed_spread_are_not_called():
    assert "overlap: not told apart" in sd.compare_fd([40.0, 44.0], [39.0, 41.0])
    assert "higher in every seed" in sd.compare_fd([40.0, 41.0], [42.0, 45.0])
    assert "one seed" in sd.compare_fd([40.0], [30.0])


def test_a_rewrite_keeps_the_hand_written_findings_and_flags_changed_numbers():
    page, stale = sd.merge_hand_section("# gen\n", "aaa", None)
    assert not stale and "written against table aaa" in page
    page = page.replace(page.split("-->\n", 1)[1], "## Findings\n\nDiffAugment helps.\n")
    same, stale = sd.merge_hand_section("# gen\n", "aaa", page)
    assert same == page and not stale
    changed, stale = sd.merge_hand_section("# gen 2\n", "bbb", page)
    assert stale and changed.startswith("# gen 2\n") and "DiffAugment helps." in changed
    assert sd.STALE_NOTE in changed and "written against table aaa" in changed
    again, stale = sd.merge_hand_section("# gen 2\n", "bbb", changed)  # one note, not two
    assert stale and again.count(sd.STALE_NOTE) == 1
    checked, stale = sd.merge_hand_section("# gen 2\n", "bbb", again, accept=True)
    assert not stale and checked.split("-->\n", 1)[1] == "## Findings\n\nDiffAugment helps.\n"
    assert "written against table bbb" in checked
    # a note written without its blank line (an older version of the script): the heading stays
    marker = next(ln for ln in checked.split("\n") if ln.startswith(sd.HAND_MARKER))
    tight = f"# gen 2\n{marker}\n{sd.STALE_NOTE} old\n## Findings\n\nDiffAugment helps.\n"
    kept, _ = sd.merge_hand_section("# gen 2\n", "bbb", tight, accept=True)
    assert kept.split("-->\n", 1)[1].startswith("## Findings\n")


def write_run(run_dir: Path, seed: int, fd: float, ada: bool) -> None:
    (run_dir / "csv").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    keys = ["step", "train/d_real", "train/d_fake", "train/ada_p", "val/d_real"]
    with open(run_dir / "csv" / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for step in range(9, 200, 10):
            w.writerow(
                {
                    "step": step,
                    "train/d_real": 0.8,
                    "train/d_fake": 0.2,
                    "train/ada_p": (step - 9) / 190 if ada else "",
                    "val/d_real": 0.6 if step % 100 == 99 else "",
                }
            )
    ev = {"test/fid": fd, "sample_quality_reference_split": "test"}
    (run_dir / "checkpoints" / "eval.json").write_text(json.dumps(ev))
    (run_dir / "timing.json").write_text(json.dumps({"train_rc": 0, "train_s": 6, "eval_s": 3}))


def test_report_only_writes_the_page_and_the_figure_from_run_dirs(tmp_path, monkeypatch):
    out, page = tmp_path / "runs", tmp_path / "docs" / "scarce_data.md"
    for seed in (0, 1):
        for aug in ("none", "ada"):
            write_run(out / f"0.01_{aug}_s{seed}", seed, 40.0 + seed + (aug == "ada"), aug == "ada")
    argv = ["--fractions", "0.01", "--augments", "none", "ada", "--seeds", "0", "1"]
    argv += ["--out", str(out), "--page", str(page), "--report-only"]
    monkeypatch.setattr(sys, "argv", ["scarce_data.py", *argv])
    sd.main()
    text = page.read_text()
    assert "| 1% | ada |" in text and "| 2 | 41.5 ± 0.7 |" in text
    assert "probability 2/C(4,2) = 33.3%" in text  # chance non-overlap with 2 seeds each
    assert "--report-only" not in text  # the page's command trains: it reproduces the table
    assert "| 1% | 0.00 → 0.21 → 0.47 → 0.74 → 1.00 | 1.00 ± 0.00 |" in text  # ADA p samples
    png = page.parent / sd.FIGURE_REL
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "results.json").read_text())[0]["seed"] == 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))

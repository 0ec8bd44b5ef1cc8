#!/usr/bin/env python
"""genlab's benchmark suite: one command, a table on stdout, JSON on disk.

Usage (repository root)::

    python benchmarks/run.py [--json benchmarks/results.json] [--quick] [--sections 1,2,...]

Sections (framework and hand-loop runs alternate, so machine drift cancels in the ratios):

1. overhead: training images/s of ``genlab.train`` at default settings (default callbacks and
   loggers) / a hand-written loop doing the same math on in-memory data (``ratio_<model>``);
2. callbacks: the same with each default callback (and the loggers) switched off in turn;
3. start-up: ``--cfg job``, a config error, time to the first training step (whole processes);
4. data: images/s each datamodule delivers alone / images/s the model consumes;
5. scaling: ``trainer=ddp_cpu`` (2 processes) / 1 process, images/s of the whole run;
6. FLOPs: achieved GFLOP/s of each training step / this machine's fp32 matmul GFLOP/s;
7. inception: feature images/s per option, with the max feature difference to the baseline;
8. threads: genlab's thread choice vs fixed 1 and 2 threads, quiet and with one core busy;
9. options: images/s with ``model.channels_last``, ``trainer.precision=bf16-mixed`` and
   ``model.compile`` (full run only) on / off, default GAN and VAE.

Every figure is stored with the 1-minute load average at the time it was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPO = HERE.parent
if (REPO / "src" / "genlab").is_dir():
    sys.path.insert(0, str(REPO / "src"))

import sections  # noqa: E402

SECTIONS = {
    "1": ("overhead", sections.overhead),
    "2": ("callbacks", sections.callback_cost),
    "3": ("start-up", sections.startup),
    "4": ("data", sections.data_path),
    "5": ("scaling", sections.scaling),
    "6": ("flops", sections.flops),
    "7": ("inception", sections.inception),
    "8": ("threads", sections.threads),
    "9": ("options", sections.options),
}


def machine() -> dict:
    """Where and with what the numbers were measured."""
    import lightning
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def print_table(rows: list[dict]) -> None:
    """One line per figure: section, name, value, unit, what it is compared with, load."""
    print(f"\n{'section':10} {'figure':44} {'value':>10} {'unit':10} load  note")
    for r in rows:
        value = r["value"]
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        print(
            f"{r['section']:10} {r['name']:44} {text:>10} {r.get('unit', ''):10} "
            f"{r.get('load', float('nan')):4.1f}  {r.get('note', '')}"
        )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(HERE / "results.json"), help="where the JSON goes")
    p.add_argument("--quick", action="store_true", help="fewer rounds and models (~2-3 min)")
    p.add_argument("--sections", default=",".join(SECTIONS), help="e.g. 1,3,6")
    p.add_argument("--workdir", default=None, help="scratch directory (default: a temp dir)")
    args = p.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "offline")  # the default logger, never online here
    os.environ.setdefault("WANDB_SILENT", "true")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="genlab-bench-"))
    ctx = sections.Context(work=work, quick=args.quick)
    start = time.perf_counter()
    results: dict = {"machine": machine(), "command": " ".join(sys.argv), "rows": []}
    for key in args.sections.split(","):
        name, fn = SECTIONS[key.strip()]
        t0 = time.perf_counter()
        try:
            rows = fn(ctx)
        except Exception as err:  # noqa: BLE001 - one broken section must not lose the others
            rows = [sections.row(name, "error", f"{type(err).__name__}: {err}"[:200])]
        for r in rows:
            r["section"] = name
        results["rows"].extend(rows)
        print_table(rows)
        print(f"[{name}: {time.perf_counter() - t0:.0f} s]", flush=True)
    results["seconds"] = round(time.perf_counter() - start, 1)
    for r in results["rows"]:  # flat keys: ratio_vae, ...
        if r.get("key"):
            results[r["key"]] = r["value"]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print("\nAll figures:")
    print_table(results["rows"])
    print(
        f"\n{results['seconds']:.0f} s; JSON: {args.json}; load (1 min) now {os.getloadavg()[0]:.1f}"
    )
    return results


if __name__ == "__main__":
    main()

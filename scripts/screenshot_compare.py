"""Screenshots for the README's Compare section, from a real sweep: ``genlab.compare``'s
report and TensorBoard's HParams view (headless Chromium through Playwright).

    python scripts/screenshot_compare.py outputs/train/multirun/<date>_<time> [--out docs]

Needs Debian's ``chromium`` (or ``--chromium PATH``) and ``pip install playwright``; writes
``<out>/compare_report.png`` and ``<out>/tensorboard_hparams.png``. TensorBoard is served on
127.0.0.1 for the time it takes and stopped.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    report = args.sweep_dir / "report.html"
    if not report.is_file():
        subprocess.run([sys.executable, "-m", "genlab.compare", str(args.sweep_dir)], check=True)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(args.sweep_dir / "tensorboard"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(report.resolve().as_uri())
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out / "compare_report.png"), full_page=False)
            deadline = time.monotonic() + 60
            while True:  # TensorBoard needs a moment to start and read the event files
                try:
                    page.goto(f"http://127.0.0.1:{port}/?darkMode=false#hparams")
                    page.wait_for_selector("tf-hparams-table-view, .hparams-table", timeout=5000)
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(2)
            page.set_viewport_size({"width": 2000, "height": 560})  # the metric columns too
            page.wait_for_timeout(4000)
            page.screenshot(path=str(args.out / "tensorboard_hparams.png"), full_page=False)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out / 'compare_report.png'} and {args.out / 'tensorboard_hparams.png'}")


if __name__ == "__main__":
    main()

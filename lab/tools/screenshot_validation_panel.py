"""The README's screenshot of the dashboard's validation panel (docs/img/validation_panel.png), in Debian's
headless Chromium driven by Playwright, from the committed planner/data/evidence/validate_*.json.

    python -m lab.tools.screenshot_validation_panel [--out docs/img/validation_panel.png]
"""
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from lab.paths import ROOT

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main():
    from playwright import sync_api
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "validation_panel.png")
    a = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Debian's chromium is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "web" / "app.py"),
                             "--server.headless", "true", "--server.port", str(port), "--server.address",
                             "127.0.0.1", "--browser.gatherUsageStats", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("streamlit did not start within 60 s")
                time.sleep(0.5)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"http://127.0.0.1:{port}", wait_until="networkidle")
            panel = page.locator('[data-testid="stExpander"]').filter(has_text="How far to trust")
            panel.wait_for(timeout=120000)
            page.wait_for_timeout(5000)  # the page's first run
            if panel.locator("details").first.get_attribute("open") is None:  # collapsed: open it
                panel.get_by_text("How far to trust").click()
            panel.locator('[data-testid="stPlotlyChart"]').nth(1).wait_for(timeout=60000)
            page.add_style_tag(content='[data-testid="stHeader"] {display: none !important}')  # sticky header
            page.mouse.move(0, 0)  # no chart toolbar
            page.wait_for_timeout(3000)  # let the heatmaps draw
            panel.screenshot(path=str(a.out))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

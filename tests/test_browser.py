"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, on localhost only."""
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

pytest.importorskip("streamlit")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "web" / "app.py"),
                             "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start within 60 s")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


def test_load_scenario_change_replicas_run_and_see_the_latency_chart(server, tmp_path):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server, wait_until="networkidle")
        page.get_by_text("Analytic sizing").wait_for(timeout=60000)
        # load a built-in scenario
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name="seed-multi-tenant").click()
        page.get_by_text("premium / standard / budget tiers").wait_for(timeout=60000)
        page.wait_for_timeout(2000)  # let the rerun settle (stale elements linger during it)
        # one more replica, typed into the schema-generated number input
        box = page.get_by_label("replicas", exact=True)
        before = int(box.input_value())
        box.fill(str(before + 1))
        box.press("Enter")
        page.wait_for_timeout(2000)
        assert int(page.get_by_label("replicas", exact=True).input_value()) == before + 1
        page.get_by_role("button", name="Run simulation").click()
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=120000)
        page.get_by_text("latency CDF").first.wait_for(timeout=30000)
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):  # the README's picture, refreshed on request, not by every run
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, ROOT / "docs" / "img" / "dashboard.png")

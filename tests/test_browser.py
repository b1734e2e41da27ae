"""The dashboard in a real browser: `streamlit run app/main.py` driven by Debian's Chromium.

What AppTest cannot show: the URL in the address bar after a filter change (the link an
auditor pastes), a click on a table row opening the Detail page, and the pages as pixels.
Screenshots land in tests/screenshots/ (git-ignored) for a person to look at.

    .venv/bin/python -m pytest -q -m browser tests/test_browser.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import pytest

from store.schema.db import make_engine
from store.transfer.demo import load_demo

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
VIEWPORT = {"width": 1680, "height": 1050}
#: The Logs table's geometry (app/views/logs.py ROW_HEIGHT and Streamlit's header row).
ROW_HEIGHT, HEADER_HEIGHT = 56, 36


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(base_url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urlopen(f"{base_url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer on {base_url} within {timeout} s")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Iterator[str]:
    """`streamlit run app/main.py` on a free port, over a SQLite log of 400 demo calls."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'imagelog.db'}"
    engine = make_engine(url)
    load_demo(engine, count=400, seed=3)
    engine.dispose()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app/main.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env={**os.environ, "IMAGELOG_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, server)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def settle(page) -> None:
    """Wait until Streamlit has finished the script run the last action started."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=30_000
    )
    page.wait_for_timeout(500)


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def assert_no_error(page) -> None:
    for testid in ("stException", "stAlertContentError"):
        errors = page.locator(f"[data-testid={testid}]")
        assert errors.count() == 0, errors.first.inner_text()


def click_table_row(page, row: int) -> None:
    """Select row `row` of the Logs table (its row-marker cell; the grid is a canvas)."""
    box = page.locator("[data-testid=stDataFrame]").bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + HEADER_HEIGHT + ROW_HEIGHT * row + ROW_HEIGHT / 2)


def test_filter_by_provider_and_expired_then_open_a_call_shows_its_cached_copy(dashboard, page):
    page.goto(dashboard)
    page.wait_for_selector("[data-testid=stDataFrame]", timeout=30_000)
    settle(page)
    assert_no_error(page)
    shot(page, "1-logs")
    sidebar = page.locator("[data-testid=stSidebar]")

    sidebar.locator("[data-testid=stMultiSelect]").filter(has_text="Provider").click()
    page.keyboard.type("replicate")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    settle(page)
    sidebar.get_by_role("button", name="expired").click()
    settle(page)

    assert_no_error(page)
    assert "provider=replicate" in page.url
    assert "url_state=expired" in page.url
    grid = page.locator("[data-testid=stDataFrame] table[role=grid]")
    cells = set(grid.locator("td").all_inner_texts())
    assert "replicate" in cells
    assert cells & {"openai", "azure-openai", "together"} == set()
    shot(page, "2-logs-replicate-expired")
    filtered_link = page.url

    click_table_row(page, 0)
    page.wait_for_url("**/detail?**", timeout=30_000)
    settle(page)

    assert_no_error(page)
    assert "provider=replicate" in page.url  # the filters travel with the selected log
    marks = page.locator("[data-testid=stAlertContentWarning]").all_inner_texts()
    assert marks and all("cached copy" in mark for mark in marks)
    assert "Hosted URL expired on " in marks[0]
    thumbnail = page.locator("[data-testid=stImage] img").first
    assert thumbnail.get_attribute("src").startswith("data:image/webp;base64,")
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "3-detail-expired")
    page.locator("[data-testid=stImage]").first.scroll_into_view_if_needed()
    shot(page, "4-detail-images")

    page.goto(filtered_link)  # a colleague opens the pasted link
    page.wait_for_selector("[data-testid=stDataFrame]", timeout=30_000)
    settle(page)
    assert "replicate" in sidebar.locator("[data-testid=stMultiSelect]").first.inner_text()
    assert set(grid.locator("td").all_inner_texts()) & {"openai", "together"} == set()


def test_gallery_and_analytics_render_for_the_filtered_view(dashboard, page):
    page.goto(f"{dashboard}/gallery?provider=openai")
    page.wait_for_selector("[data-testid=stImage]", timeout=30_000)
    settle(page)

    assert_no_error(page)
    assert page.locator("[data-testid=stImage]").count() == 24  # one page of the grid
    shot(page, "5-gallery-openai")

    page.locator("[data-testid=stSidebarNav] a").filter(has_text="Analytics").click()
    page.wait_for_selector("[data-testid=stVegaLiteChart]", timeout=30_000)
    settle(page)

    assert_no_error(page)
    assert "provider=openai" in page.url  # the filter followed the user to Analytics
    assert page.locator("[data-testid=stMetric]").count() == 6
    assert page.locator("[data-testid=stVegaLiteChart]").count() == 4
    shot(page, "6-analytics-openai")

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
from contextlib import contextmanager
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from sqlalchemy import select

from store.queries import LogFilter, image_ids
from store.review import give_verdict
from store.schema.db import make_engine
from store.schema.models import IMAGES, REVIEWS
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


@contextmanager
def running_dashboard(url: str) -> Iterator[str]:
    """`streamlit run app/main.py` on a free port over the log at `url`; yields its address."""
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
def dashboard(tmp_path_factory) -> Iterator[str]:
    """The dashboard over a SQLite log of 400 demo calls."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'imagelog.db'}"
    engine = make_engine(url)
    load_demo(engine, count=400, seed=3)
    engine.dispose()
    with running_dashboard(url) as base_url:
        yield base_url


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
    warnings = page.locator("[data-testid=stAlertContentWarning]").all_inner_texts()
    marks = [text for text in warnings if "Hosted URL" in text]
    assert marks and all("cached copy" in mark for mark in marks)
    assert "Hosted URL expired on " in marks[0]
    # Replicate signs nothing: each image is flagged for its missing content credentials.
    assert len(warnings) == 2 * len(marks)
    assert all("no content credentials" in text for text in warnings if text not in marks)
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
    # Six totals, then the images per content-credentials state.
    assert page.locator("[data-testid=stMetric]").count() == 6 + 5
    assert page.locator("[data-testid=stVegaLiteChart]").count() == 4
    shot(page, "6-analytics-openai")


@pytest.mark.parametrize("width", (1440, 1024))
def test_detail_says_who_signed_an_image_and_shows_its_look_alikes(dashboard, browser, width):
    page = browser.new_context(viewport={"width": width, "height": 1050}).new_page()
    page.goto(f"{dashboard}/gallery?provider=openai&credentials=valid&group=true")
    page.wait_for_selector("[data-testid=stImage]", timeout=30_000)
    settle(page)
    assert_no_error(page)
    assert page.get_by_text("look-alike").count() > 0  # the demo repeats its drawings
    shot(page, f"7-gallery-grouped-{width}")

    page.get_by_role("link", name="Open").first.click()
    page.wait_for_url("**/detail?**", timeout=30_000)
    page.wait_for_selector("[data-testid=stAlertContentSuccess]", timeout=30_000)
    settle(page)

    assert_no_error(page)
    said = page.locator("[data-testid=stAlertContentSuccess]").first.inner_text()
    assert "Content credentials: signed by OpenAI, created by " in said  # after its icon
    assert said.endswith("(a generative model), valid")
    similar = page.get_by_text("Similar images across the log")
    similar.first.scroll_into_view_if_needed()
    assert similar.count() > 0
    shot(page, f"8-detail-credentials-lookalikes-{width}")
    page.context.close()


# --- review -------------------------------------------------------------------------------------

REVIEW_WIDTHS = (1440, 1024)


@pytest.fixture(scope="module")
def review_log(tmp_path_factory) -> str:
    """A log of its own (verdicts change it) with 120 demo calls."""
    url = f"sqlite:///{tmp_path_factory.mktemp('review') / 'imagelog.db'}"
    engine = make_engine(url)
    load_demo(engine, count=120, seed=11)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def review_dashboard(review_log) -> Iterator[str]:
    with running_dashboard(review_log) as base_url:
        yield base_url


def walk_position(page) -> tuple[int, int]:
    """(N, M) of the Review page's "N of M" progress."""
    text = page.locator("[data-testid=stProgress]").inner_text()
    shown, _, rest = text.partition(" of ")
    return int(shown.replace(",", "")), int(rest.split()[0].rstrip("+").replace(",", ""))


def walk_to(page, shown: int) -> tuple[int, int]:
    """Wait until the walk shows its `shown`-th image and the run is over; (N, M) then.

    A verdict is two script runs (the click's, then the rerun that shows the next image), so
    waiting for the status widget alone may stop between them."""
    page.wait_for_function(
        "n => (document.querySelector('[data-testid=stProgress]')?.innerText || '')"
        ".startsWith(n + ' of ')",
        arg=str(shown),
        timeout=30_000,
    )
    settle(page)
    return walk_position(page)


@pytest.mark.parametrize("width", REVIEW_WIDTHS)
def test_the_review_walk_judges_images_one_by_one(review_dashboard, review_log, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    main = page.locator("[data-testid=stMain]")
    try:
        page.goto(f"{review_dashboard}/review?provider=openai")
        page.get_by_role("textbox", name="Your name").wait_for(timeout=30_000)
        settle(page)
        shot(page, f"review-{width}-1-name")
        page.get_by_role("textbox", name="Your name").fill("Alice Martin")
        page.get_by_role("button", name="Start reviewing").click()
        page.locator("[data-testid=stProgress]").wait_for(timeout=30_000)
        settle(page)

        assert_no_error(page)
        assert "provider=openai" in page.url
        first, total = walk_position(page)
        assert first == 1 and total > 3
        shown = page.locator("[data-testid=stMain] [data-testid=stImage] img").first
        assert shown.get_attribute("src").startswith("data:image/webp;base64,")
        assert shown.evaluate("img => img.complete && img.naturalWidth > 0")
        assert page.get_by_text("Reviewing as Alice Martin").is_visible()
        shot(page, f"review-{width}-2-first-image")

        main.get_by_role("button", name="Approve", exact=True).click()
        settle(page)
        assert walk_to(page, 2) == (2, total)

        reasons = page.locator("[data-testid=stSelectbox]").filter(has_text="Reason (to flag)")
        reasons.scroll_into_view_if_needed()  # a list opened by a click that scrolls closes again
        settle(page)
        reasons.click()
        page.get_by_role("option", name="does not match the prompt").click()
        settle(page)
        page.get_by_role("textbox", name="Note").fill("the fox has five legs")
        page.get_by_role("textbox", name="Note").press("Enter")
        settle(page)
        shot(page, f"review-{width}-3-flag-with-reason")
        main.get_by_role("button", name="Flag", exact=True).click()
        settle(page)
        assert walk_to(page, 3) == (3, total)

        main.get_by_role("button", name="Skip", exact=True).click()
        settle(page)
        assert_no_error(page)
        assert walk_to(page, 4) == (4, total)
        shot(page, f"review-{width}-4-after-skip")
    finally:
        context.close()

    engine = make_engine(review_log)
    try:
        with engine.connect() as connection:
            log_hosts = set(connection.execute(select(IMAGES.c.url_host).distinct()).scalars())
            given = connection.execute(
                select(REVIEWS.c.verdict, REVIEWS.c.reason, REVIEWS.c.note, REVIEWS.c.reviewer)
                .order_by(REVIEWS.c.id.desc())
                .limit(2)
            ).all()
    finally:
        engine.dispose()
    # The browser never fetched an image from a host in the log (only a click would).
    assert log_hosts - {None}
    assert [url for url in fetched if urlsplit(url).hostname in log_hosts] == []
    assert [tuple(row) for row in reversed(given)] == [
        ("approved", None, None, "Alice Martin"),
        ("flagged", "does not match the prompt", "the fox has five legs", "Alice Martin"),
    ]


def test_flagged_images_show_on_logs_and_detail_with_their_trail(
    review_dashboard, review_log, browser
):
    engine = make_engine(review_log)
    try:
        [newest] = image_ids(engine, LogFilter(providers=("google",)), limit=1)
        with engine.connect() as connection:
            call, position = connection.execute(
                select(IMAGES.c.generation_id, IMAGES.c.position).where(IMAGES.c.id == newest)
            ).one()
        give_verdict(engine, call, position, "flagged", "Carol Wu", reason="violence or gore")
    finally:
        engine.dispose()
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{review_dashboard}/?verdict=flagged&provider=google")
        page.wait_for_selector("[data-testid=stDataFrame]", timeout=30_000)
        settle(page)
        assert_no_error(page)
        assert "flagged" in page.locator("[data-testid=stSidebar]").inner_text()
        grid = page.locator("[data-testid=stDataFrame] table[role=grid]")
        assert "flagged" in set(grid.locator("td").all_inner_texts())
        shot(page, "review-5-logs-flagged")

        click_table_row(page, 0)
        page.wait_for_url("**/detail?**", timeout=30_000)
        settle(page)
        assert_no_error(page)
        main = page.locator("[data-testid=stMain]")
        assert "flagged" in main.inner_text().split()  # the image's verdict chip
        page.get_by_role("button", name="Give verdicts").click()
        page.get_by_role("textbox", name="Your name").fill("Bob Stone")
        page.get_by_role("button", name="Start reviewing").click()
        main.get_by_role("button", name="Approve", exact=True).wait_for(timeout=30_000)
        settle(page)
        assert_no_error(page)
        page.get_by_text("Images (1)").scroll_into_view_if_needed()
        shot(page, "review-6-detail-verdict-and-buttons")
        page.get_by_text("Review of image 1").scroll_into_view_if_needed()
        settle(page)
        shot(page, "review-7-detail-trail")
    finally:
        context.close()

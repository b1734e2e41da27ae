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
from datetime import timedelta
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from sqlalchemy import func, select

from store import Recorder
from store.capture.writer import insert_calls
from store.media.thumbnails import make_thumbnail
from store.queries import LogFilter, image_ids
from store.review import give_verdict
from store.schema.db import make_engine
from store.schema.models import IMAGES, REVIEWS, utcnow
from store.schema.records import CallRecord, ImageRecord
from store.transfer.demo import load_demo
from tests.standins.image_host import draw_image
from tests.standins.s3 import S3StandIn
from tests.standins.server import LoopbackServer, Reply

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
#: The Logs table's geometry (app/components/log_table.py ROW_HEIGHT and the header row).
ROW_HEIGHT, HEADER_HEIGHT = 72, 36


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
def running_dashboard(url: str, **environment: str) -> Iterator[str]:
    """`streamlit run app/main.py` on a free port over the log at `url` (and `environment`
    added to this process's); yields its address."""
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
        env={**os.environ, **environment, "IMAGELOG_DATABASE_URL": url},
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


def wait_for_cell(page, text: str) -> None:
    """Wait until a cell of the Logs table reads `text`: the grid fills its accessible table
    a moment after it draws (raw values first, then formatted), later on a loaded machine."""
    page.wait_for_function(
        """text => [...document.querySelectorAll('[data-testid=stDataFrame] table[role=grid] td')]
            .some(cell => cell.innerText.trim() === text)""",
        arg=text,
        timeout=30_000,
    )


def shown_providers(grid) -> set[str]:
    """The providers of the Logs table's "provider · model" cells."""
    cells = grid.locator("td").all_inner_texts()
    return {cell.split(" · ")[0] for cell in cells} & DEMO_PROVIDERS


DEMO_PROVIDERS = {
    *("openai", "azure-openai", "replicate", "together", "bfl", "google", "stability", "xai"),
}


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
    assert shown_providers(grid) == {"replicate"}
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
    assert "Hosted URL expired · 404 at " in marks[0]  # the demo's probe found it gone
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
    assert shown_providers(grid) == {"replicate"}


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
    assert (
        page.locator("[data-testid=stMetric]").count() == 6 + 5
    )  # six totals, then images per content-credentials state
    # Calls, cost, cost by model, errors by type, latency, top models.
    assert page.locator("[data-testid=stVegaLiteChart]").count() == 6
    shot(page, "6-analytics-openai")


@pytest.mark.parametrize("width", (1440, 1024))
def test_analytics_keeps_its_per_choice_in_the_link_and_counts_unpriced_calls(
    dashboard, browser, width
):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{dashboard}/analytics?per=hour")
        page.wait_for_selector("[data-testid=stVegaLiteChart]", timeout=30_000)
        settle(page)

        assert_no_error(page)
        assert "unpriced calls" in page.locator("[data-testid=stMetric]").nth(2).inner_text()
        assert "histogram" in page.inner_text("body")
        page.locator("[data-testid=stButtonGroup] button").filter(has_text="day").click()
        settle(page)
        assert "per=day" in page.url  # the choice is in the link to share
        page.screenshot(path=str(SCREENSHOTS / f"6-analytics-{width}.png"))
        page.mouse.move(width * 0.6, 500)  # over the page's own scroll box
        page.mouse.wheel(0, 900)
        settle(page)
        page.screenshot(path=str(SCREENSHOTS / f"6-analytics-{width}-costs-errors.png"))
    finally:
        context.close()


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
    # At 1440 px the verdict is in view beside the sidebar (the grid draws only what is).
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{review_dashboard}/?verdict=flagged&provider=google")
        page.wait_for_selector("[data-testid=stDataFrame]", timeout=30_000)
        settle(page)
        assert_no_error(page)
        assert "flagged" in page.locator("[data-testid=stSidebar]").inner_text()
        wait_for_cell(page, "flagged")
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


# --- archived originals ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archived_call(tmp_path_factory, s3_server: S3StandIn) -> Iterator[tuple[str, str, str]]:
    """A log of one call whose 1200x800 original is archived on the S3 stand-in, and the
    dashboard over it reading that archive; yields (address, call id, bucket)."""
    bucket = s3_server.new_bucket()
    location = f"s3://{bucket}/originals"
    folder = tmp_path_factory.mktemp("archived")
    url = f"sqlite:///{folder / 'imagelog.db'}"
    record = CallRecord(
        provider="openai",
        model="gpt-image-1",
        prompt="a lighthouse at dusk, kept in full",
        images=[ImageRecord(data=draw_image(1200, 800, "png"))],
    )
    with Recorder(url, archive=location, spool_path=folder / "spool.jsonl") as recorder:
        recorder.record(record)
        assert recorder.flush(timeout=60)
    with running_dashboard(url, IMAGELOG_ARCHIVE=location) as base_url:
        yield base_url, record.id, bucket


@pytest.mark.parametrize("width", REVIEW_WIDTHS)
def test_detail_shows_the_archived_original_served_by_the_app(
    archived_call, browser, s3_server, width
):
    base_url, call_id, bucket = archived_call
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        page.goto(f"{base_url}/detail?log={call_id}")
        switch = page.locator("label").filter(has_text="Show original")
        switch.wait_for(timeout=60_000)
        settle(page)
        assert page.locator("[data-testid=stMain] [data-testid=stImage] img").count() == 1

        switch.click()
        page.locator("[data-testid=stImage] img").nth(1).wait_for(timeout=30_000)
        settle(page)

        assert_no_error(page)
        original = page.locator("[data-testid=stImage] img").nth(1)
        source = original.get_attribute("src")
        assert source.startswith("/media/") or source.startswith(f"{base_url}/media/")
        assert original.evaluate("img => img.complete && img.naturalWidth") == 1200
        assert page.get_by_text("sha256 checked").is_visible()
        page.get_by_role("button", name="Download original").wait_for()
        original.scroll_into_view_if_needed()
        shot(page, f"detail-{width}-archived-original")
        endpoint = s3_server.endpoint.removeprefix("http://")
        assert not [url for url in fetched if endpoint in url or bucket in url]
    finally:
        context.close()


# --- a signed URL that expires while the page is open -------------------------------------------

#: Seconds the signed URL lives after the page has been opened on it: long enough for a cold
#: page load on a busy machine, short enough for a test.
LIFETIME_SECONDS = 40


def lapsing_log(url: str, signed_host, expires_at) -> None:
    """A log of two calls: a live signed URL that expires at `expires_at`, and one that has
    hours left; both fetched (live, checked) when recorded."""
    now = utcnow()
    engine = make_engine(url)
    calls = []
    for name, expiry, minutes_ago in (
        ("soon", expires_at, 2),
        ("later", now + timedelta(hours=3), 5),
    ):
        facts = make_thumbnail(draw_image(512, 384, "png"))
        calls.append(
            CallRecord(
                provider="azure-openai",
                model="dall-e-3",
                created_at=now - timedelta(minutes=minutes_ago),
                prompt=f"a lighthouse at dusk, {name}",
                images=[
                    ImageRecord(
                        url=signed_host.azure_url(f"{name}.png", expires_at=expiry),
                        url_state="live",
                        last_checked_at=now,
                        last_http_status=200,
                        thumbnail=facts.thumbnail,
                        width=facts.width,
                        height=facts.height,
                    )
                ],
            )
        )
    insert_calls(engine, calls)
    engine.dispose()


def card_texts(page) -> list[str]:
    """The texts of the "soon" and "later" Gallery cards: the smallest block holding each
    prompt alone (the card's own)."""
    blocks = page.locator("[data-testid=stMain] [data-testid=stVerticalBlock]").all_inner_texts()
    return [
        min((text for text in blocks if mine in text and other not in text), key=len, default="")
        for mine, other in (("dusk, soon", "dusk, later"), ("dusk, later", "dusk, soon"))
    ]


def chip(card: str) -> str:
    """A card's URL-state chip: its first line, without the icon's ligature name."""
    return card.splitlines()[0].split(" ", 1)[-1] if card else ""


@pytest.mark.parametrize("width", REVIEW_WIDTHS)
def test_a_signed_url_that_expires_while_the_page_is_open_reads_expired_predicted(
    tmp_path, host_server, browser, width
):
    url = f"sqlite:///{tmp_path / 'imagelog.db'}"
    expires_at = utcnow() + timedelta(seconds=LIFETIME_SECONDS)
    lapsing_log(url, host_server, expires_at)
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    try:
        with running_dashboard(url) as base_url:
            page.goto(f"{base_url}/gallery")
            page.wait_for_selector("[data-testid=stImage]", timeout=30_000)
            settle(page)
            before = card_texts(page)
            shot(page, f"lapse-{width}-1-live")
            assert [chip(text) for text in before] == ["live", "live"], before
            assert "expires in" in before[0] and "predicted" not in before[0]

            # The signature lapses while the page stays open; the next run reads the truth.
            wait = (expires_at - utcnow()).total_seconds() + 1
            assert wait > 0, "the page took longer to open than the URL lived"
            page.wait_for_timeout(wait * 1000)
            page.reload()
            page.wait_for_selector("[data-testid=stImage]", timeout=30_000)
            settle(page)

            assert_no_error(page)
            soon, later = card_texts(page)
            shot(page, f"lapse-{width}-2-expired-predicted")
            assert "predicted · expiry passed" in soon
            assert (chip(soon), chip(later)) == ("expired", "live")

            page.goto(f"{base_url}/?url_state=live")
            page.wait_for_selector("[data-testid=stDataFrame]", timeout=30_000)
            settle(page)
            assert_no_error(page)
            assert "1 calls match" in page.locator("[data-testid=stMain]").inner_text()
            shot(page, f"lapse-{width}-3-logs-live-filter")
    finally:
        context.close()


# --- every page at both widths ------------------------------------------------------------------

WIDTHS = (1440, 1024)


def assert_inside(page, locator, container="[data-testid=stMain]") -> None:
    """`locator` is drawn whole inside `container` and its text is not cut."""
    frame = page.locator(container).bounding_box()
    box = locator.bounding_box()
    assert box["x"] >= frame["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
    assert locator.evaluate("e => e.scrollWidth <= e.clientWidth + 1")


def assert_every_picture_drawn(page) -> None:
    """Every <img> of the page has loaded (no broken-image icon) and comes from the log."""
    pictures = page.locator("[data-testid=stMain] img")
    assert pictures.count() > 0
    for index in range(pictures.count()):
        picture = pictures.nth(index)
        assert picture.evaluate("img => img.complete && img.naturalWidth > 0"), index
        assert picture.get_attribute("src").startswith("data:image/"), index


def multi_image_call(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(IMAGES.c.generation_id)
                .group_by(IMAGES.c.generation_id)
                .having(func.count() > 2)
                .limit(1)
            ).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def dashboard_log(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'imagelog.db'}"
    engine = make_engine(url)
    load_demo(engine, count=400, seed=3)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def pages_dashboard(dashboard_log) -> Iterator[str]:
    with running_dashboard(dashboard_log) as base_url:
        yield base_url


@pytest.mark.parametrize("width", WIDTHS)
def test_logs_shows_a_whole_page_with_actions_that_fit(pages_dashboard, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(pages_dashboard)
        page.wait_for_selector("[data-testid=stDataFrame]", timeout=60_000)
        settle(page)
        assert_no_error(page)
        shot(page, f"pages-{width}-1-logs")

        table = page.locator("[data-testid=stDataFrame]").bounding_box()
        assert table["height"] >= HEADER_HEIGHT + 50 * ROW_HEIGHT  # 50 rows, no inner scroll
        for label in ("Export CSV", "Export JSONL", "Check URLs now"):
            assert_inside(page, page.get_by_role("button", name=label))

        page.locator("[data-testid=stSidebar]").get_by_text("24h", exact=True).click()
        settle(page)
        page.get_by_role("textbox", name="Search prompts").fill("fox")
        page.get_by_role("textbox", name="Search prompts").press("Enter")
        settle(page)
        assert "range=24h" in page.url and "q=fox" in page.url
        shot(page, f"pages-{width}-2-logs-search")
        page.get_by_role("textbox", name="Search prompts").fill("nothing-matches-this")
        page.get_by_role("textbox", name="Search prompts").press("Enter")
        settle(page)
        assert page.get_by_text("No calls match these filters.").is_visible()
        assert page.get_by_role("button", name="Export CSV").count() == 0
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_gallery_and_detail_grid_with_steps_through_the_list(
    pages_dashboard, dashboard_log, browser, width
):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{pages_dashboard}/gallery?range=7d")
        page.wait_for_selector("[data-testid=stImage]", timeout=60_000)
        settle(page)
        assert_no_error(page)
        assert_every_picture_drawn(page)
        shot(page, f"pages-{width}-3-gallery")

        call = multi_image_call(dashboard_log)
        page.goto(f"{pages_dashboard}/detail?log={call}")
        page.wait_for_selector("[data-testid=stImage]", timeout=60_000)
        settle(page)
        assert_no_error(page)
        shot(page, f"pages-{width}-4-detail")
        cards = page.locator("[data-testid=stMain] [data-testid=stImage]")
        # The first image's neighbour in the grid sits beside it (each card also lists its
        # look-alikes, further down, so the page's second picture need not be the next card's).
        boxes = [cards.nth(index).bounding_box() for index in range(cards.count())]
        first = boxes[0]
        assert any(abs(box["y"] - first["y"]) < 2 and box["x"] > first["x"] for box in boxes[1:])
        cards.nth(0).scroll_into_view_if_needed()
        settle(page)
        shot(page, f"pages-{width}-5-detail-grid")
        assert_every_picture_drawn(page)

        page.get_by_role("button", name="Older").click()
        page.wait_for_url(lambda link: call not in link, timeout=30_000)
        settle(page)
        assert_no_error(page)
        assert "log=" in page.url
    finally:
        context.close()


# --- an image host that is down ------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_host_log(tmp_path_factory) -> Iterator[tuple[str, LoopbackServer, int]]:
    """A log whose images are hosted on a host that answers 500, and on a port nothing
    listens on; every image has its thumbnail in the log, and every URL reads "live"."""
    from datetime import timedelta

    from store.capture.writer import insert_calls
    from store.media.thumbnails import make_thumbnail
    from store.schema.models import utcnow
    from store.schema.records import CallRecord, ImageRecord

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with LoopbackServer(lambda request: Reply(500, b"down")) as host:
        url = f"sqlite:///{tmp_path_factory.mktemp('broken') / 'imagelog.db'}"
        engine = make_engine(url)
        demo = make_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}")
        load_demo(demo, count=12, seed=5)
        with demo.connect() as connection:
            thumbnails = connection.execute(
                select(IMAGES.c.thumbnail).where(IMAGES.c.thumbnail.is_not(None)).limit(6)
            ).scalars()
            facts = [make_thumbnail(thumbnail) for thumbnail in thumbnails]
        demo.dispose()
        now = utcnow()
        insert_calls(
            engine,
            [
                CallRecord(
                    provider="openai",
                    model="dall-e-3",
                    prompt=f"a lighthouse on a cliff, take {index}",
                    created_at=now - timedelta(minutes=index),
                    images=[
                        ImageRecord(
                            url=host.url(f"/img-{index}.png")
                            if index % 2
                            else f"http://127.0.0.1:{closed_port}/img-{index}.png",
                            url_state="live",
                            expires_at=now + timedelta(hours=1),
                            sha256=fact.sha256,
                            width=fact.width,
                            height=fact.height,
                            format=fact.format,
                            byte_size=fact.byte_size,
                            thumbnail=fact.thumbnail,
                        )
                    ],
                )
                for index, fact in enumerate(facts)
            ],
        )
        engine.dispose()
        yield url, host, closed_port


@pytest.mark.parametrize("width", WIDTHS)
def test_a_host_that_is_down_breaks_no_picture_on_any_page(broken_host_log, browser, width):
    url, host, closed_port = broken_host_log
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        with running_dashboard(url) as base_url:
            for name, path, drawn in (
                ("logs", "/", "[data-testid=stDataFrame]"),
                ("gallery", "/gallery", "[data-testid=stImage]"),
            ):
                page.goto(base_url + path)
                page.wait_for_selector(drawn, timeout=60_000)
                settle(page)
                assert_no_error(page)
                if name != "logs":  # the table draws its thumbnails on a canvas
                    assert_every_picture_drawn(page)
                shot(page, f"broken-host-{width}-{name}")
            page.locator("[data-testid=stMain]").get_by_role("link", name="Open").first.click()
            page.wait_for_url("**/detail?**", timeout=30_000)
            page.wait_for_selector("[data-testid=stImage]", timeout=60_000)
            settle(page)
            assert_every_picture_drawn(page)
            shot(page, f"broken-host-{width}-detail")
            page.goto(f"{base_url}/review")
            page.get_by_role("textbox", name="Your name").fill("Dana")
            page.get_by_role("button", name="Start reviewing").click()
            page.locator("[data-testid=stProgress]").wait_for(timeout=60_000)
            settle(page)
            assert_every_picture_drawn(page)
            shot(page, f"broken-host-{width}-review")
    finally:
        context.close()
    hosts = {f"127.0.0.1:{urlsplit(host.base_url).port}", f"127.0.0.1:{closed_port}"}
    assert [link for link in fetched if urlsplit(link).netloc in hosts] == []
    assert host.requests == []  # nothing asked the host: every picture came from the log


# --- the installed package ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel of this checkout installed (without dependencies) into a folder of its own."""
    from tests.test_packaging import build_wheel

    folder = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(folder / "wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(folder / "site"),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder


def test_imagelog_dashboard_serves_the_installed_app_and_nothing_leaves_the_machine(
    installed, dashboard_log, browser
):
    port = free_port()
    elsewhere = installed / "cwd"  # no .streamlit/ here: the bundled config must apply
    elsewhere.mkdir(exist_ok=True)
    env = {**os.environ, "IMAGELOG_DATABASE_URL": dashboard_log}
    env["PYTHONPATH"] = str(installed / "site")
    script = subprocess.run(
        [sys.executable, "-c", "from store.cli import dashboard_script; print(dashboard_script())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert script == str(installed / "site" / "imagelog_app" / "main.py")
    server = subprocess.Popen(
        [sys.executable, "-m", "store", "dashboard", "--port", str(port), "--address", "127.0.0.1"],
        cwd=elsewhere,
        env={
            **os.environ,
            "IMAGELOG_DATABASE_URL": dashboard_log,
            "PYTHONPATH": str(installed / "site"),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        wait_until_healthy(base_url, server)
        page.goto(base_url)
        page.wait_for_selector("[data-testid=stDataFrame]", timeout=60_000)
        settle(page)
        assert_no_error(page)
        for path in ("/gallery", "/analytics"):
            page.goto(base_url + path)
            page.wait_for_selector("[data-testid=stMain] h1", timeout=60_000)
            settle(page)
        shot(page, "installed-1440-analytics")
        icon = page.locator("link[rel~=icon]").first.get_attribute("href")
        sidebar = page.locator("[data-testid=stSidebar]").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
    finally:
        context.close()
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert "Error" not in output, output
    assert sidebar == "rgb(244, 246, 250)"  # the bundled config's secondaryBackgroundColor
    assert not icon.startswith("http") or urlsplit(icon).hostname == "127.0.0.1"
    assert fetched and {urlsplit(link).hostname for link in fetched} <= {"127.0.0.1"}

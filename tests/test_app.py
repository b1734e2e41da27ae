"""The dashboard's pages under Streamlit's AppTest, on a real database (SQLite and PostgreSQL).

Each test writes a handful of known calls through store.capture.writer (the way the recorder does),
points IMAGELOG_DATABASE_URL at the database and runs app/main.py as Streamlit would.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from PIL import Image
from sqlalchemy import Engine, select, update
from streamlit.testing.v1 import AppTest

from store.capture.writer import IMAGES, insert_calls
from store.media.archive import Archive
from store.media.thumbnails import make_thumbnail
from store.schema.models import UrlState, utcnow
from store.schema.records import CallRecord, ImageRecord
from tests.standins.server import LoopbackServer, Reply, Request

APP_DIR = Path(__file__).resolve().parents[1] / "app"
sys.path.insert(0, str(APP_DIR))  # the pages import `components` the way `streamlit run` does

from components import data, export, image_cards  # noqa: E402

from store.queries import LogFilter  # noqa: E402

NOW = utcnow()
EXPIRED_ID = "e" * 32
LIVE_ID = "a" * 32
B64_ID = "b" * 32
ERROR_ID = "c" * 32
UNKNOWN_ID = "d" * 32
TRICKY_PROMPT = "a red fox in **deep** snow <b>not bold</b> [link](http://x.test)"


def picture(color: str) -> bytes:
    """A real PNG, so the thumbnail is what the recorder would have stored."""
    out = io.BytesIO()
    Image.new("RGB", (512, 384), color).save(out, "PNG")
    return out.getvalue()


def image(color: str, *, url: str | None, state: str, expires_in: timedelta | None) -> ImageRecord:
    original = picture(color)
    facts = make_thumbnail(original)
    return ImageRecord(
        url=url,
        url_state=state,
        expires_at=NOW + expires_in if expires_in is not None else None,
        sha256=facts.sha256,
        width=facts.width,
        height=facts.height,
        format=facts.format,
        byte_size=facts.byte_size,
        thumbnail=facts.thumbnail,
    )


def known_calls() -> list[CallRecord]:
    """Five calls: three OpenAI (expired URL, base64, error), two elsewhere (live, unknown)."""
    return [
        CallRecord(
            id=EXPIRED_ID,
            created_at=NOW - timedelta(hours=3),
            provider="openai",
            model="dall-e-3",
            prompt=TRICKY_PROMPT,
            revised_prompt="A red fox stands in deep snow.",
            params={"size": "1024x1024", "quality": "hd", "n": 1},
            latency_ms=8100,
            request_id="req_expired",
            user="alice",
            metadata={"team": "ads"},
            request={"model": "dall-e-3", "prompt": TRICKY_PROMPT},
            response={"created": 1, "data": [{"url": "https://oaidalle.blob.test/img.png"}]},
            images=[
                image(
                    "red",
                    url="https://oaidalle.blob.test/img.png",
                    state=UrlState.expired.value,
                    expires_in=timedelta(hours=-2),
                )
            ],
        ),
        CallRecord(
            id=B64_ID,
            created_at=NOW - timedelta(hours=2),
            provider="openai",
            model="gpt-image-1",
            prompt="a blue lighthouse",
            params={"size": "1024x1024", "quality": "low"},
            latency_ms=12000,
            user="bob",
            metadata={"team": "brand"},
            images=[image("blue", url=None, state=UrlState.none.value, expires_in=None)],
        ),
        CallRecord(
            id=ERROR_ID,
            created_at=NOW - timedelta(hours=1, minutes=30),
            provider="openai",
            model="dall-e-3",
            prompt="something the safety system refuses",
            status="error",
            http_status=400,
            error='{"error": {"code": "content_policy_violation"}}',
            latency_ms=900,
            user="alice",
        ),
        CallRecord(
            id=LIVE_ID,
            created_at=NOW - timedelta(minutes=20),
            provider="replicate",
            model="flux-schnell",
            prompt="a green meadow at dawn",
            latency_ms=2500,
            user="carol",
            images=[
                image(
                    "green",
                    url="https://replicate.delivery/pbxt/abc/out-0.webp",
                    state=UrlState.live.value,
                    # Hours, not minutes: NOW is taken when this module is imported, and a
                    # URL past its expiry reads expired (predicted) however long the run.
                    expires_in=timedelta(hours=6),
                )
            ],
        ),
        CallRecord(
            id=UNKNOWN_ID,
            created_at=NOW - timedelta(minutes=10),
            provider="bfl",
            model="flux-pro-1.1",
            prompt="a yellow kite over the sea",
            latency_ms=6000,
            user="carol",
            images=[
                image(
                    "yellow",
                    url="https://delivery-eu1.bfl.test/sample.jpeg",
                    state=UrlState.unknown.value,
                    expires_in=timedelta(hours=5),
                )
            ],
        ),
    ]


@pytest.fixture
def log(empty_log) -> Engine:
    insert_calls(empty_log, known_calls())
    return empty_log


def run_app(**query_params: str | list[str]) -> AppTest:
    app = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=60)
    for key, value in query_params.items():
        app.query_params[key] = value
    return app.run()


def open_page(page: str, **query_params: str | list[str]) -> AppTest:
    app = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=60)
    for key, value in query_params.items():
        app.query_params[key] = value
    app.switch_page(f"views/{page}.py")
    return app.run()


def no_exception(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]


def shown_rows(app: AppTest):
    """The Logs table as shown, with its "provider · model" column split back in two."""
    rows = app.dataframe[0].value
    split = rows["call"].str.split(" · ", n=1, expand=True)
    return rows.assign(provider=split[0], model=split[1])


# --- welcome -----------------------------------------------------------------------------------


def test_empty_log_shows_welcome_with_recording_snippet(empty_log):
    app = run_app()

    no_exception(app)
    assert app.title[0].value == "imagelog"
    snippet = app.code[0].value
    assert "recorder = Recorder()" in snippet
    assert "OpenAI(http_client=recorder.httpx_client())" in snippet
    assert [b.label for b in app.button] == ["Load demo data"]


def test_load_demo_button_fills_the_log_and_opens_logs(empty_log):
    app = run_app()

    app.button[0].click().run()

    no_exception(app)
    assert app.title[0].value == "Logs"
    assert len(shown_rows(app)) == 50  # a full first page of the 2,000 demo calls


def test_a_database_that_is_down_is_a_clear_message_not_a_traceback(monkeypatch):
    with socket.socket() as probe:  # a port that nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv(
        "IMAGELOG_DATABASE_URL", f"postgresql+psycopg://auditor:s3cret@127.0.0.1:{closed_port}/log"
    )
    st.cache_data.clear()
    st.cache_resource.clear()

    app = run_app()

    no_exception(app)
    message = app.error[0].value
    assert message.startswith(
        f"Cannot reach the log database `postgresql+psycopg://auditor:***@127.0.0.1:{closed_port}/log`"
    )
    assert "Connection refused" in message and "s3cret" not in message
    assert [b.label for b in app.button] == ["Try again"]


# --- logs --------------------------------------------------------------------------------------


def test_logs_lists_every_call_newest_first_with_thumbnails_and_url_states(log):
    app = run_app()

    no_exception(app)
    rows = shown_rows(app)
    assert list(rows["provider"]) == ["bfl", "replicate", "openai", "openai", "openai"]
    assert rows["thumbnail"][0].startswith("data:image/webp;base64,")
    assert pd.isna(rows["thumbnail"][2])  # the error call returned no image
    assert [list(chips) for chips in rows["url_state"]] == [
        ["unknown"],
        ["live"],
        [],
        ["none"],
        ["expired"],
    ]
    assert rows["url_when"][4].startswith("expiry passed 2 h")
    assert rows["params"][4] == "1024x1024 · hd · n=1"


def test_logs_rows_read_in_human_units_with_the_error_and_the_search_marked(log):
    app = run_app(q="fox")

    no_exception(app)
    [row] = shown_rows(app).to_dict("records")
    assert row["prompt"] == "a red «fox» in **deep** snow <b>not bold</b> [link](http://x.test)"
    assert row["latency_s"] == pytest.approx(8.1)  # shown as "8.1 s"
    assert row["cost"] == "$0.080"  # dall-e-3 hd 1024x1024
    assert row["error"] == ""
    app.sidebar.text_input(key="q").input("").run()
    rows = shown_rows(app).set_index(pd.Index(["bfl", "replicate", "error", "b64", "expired"]))
    assert rows.loc["error", "error"] == (
        'HTTP 400 · {"error": {"code": "content_policy_violation"}}'
    )
    assert rows.loc["error", "cost"] == "$0.000"  # a refused call is not charged
    assert rows.loc["bfl", "cost"] == "$0.040"


def test_logs_export_is_offered_only_when_calls_match(log):
    app = run_app()

    labels = [button.label for button in app.get("download_button")]
    assert labels == ["Export CSV", "Export JSONL"]
    app.sidebar.text_input(key="q").input("nothing-matches-this").run()

    no_exception(app)
    assert app.get("download_button") == []
    assert "Check URLs now" not in [button.label for button in app.button]


def test_provider_filter_narrows_the_rows(log):
    app = run_app()

    app.sidebar.multiselect(key="provider").set_value(["openai"]).run()

    no_exception(app)
    rows = shown_rows(app)
    assert set(rows["provider"]) == {"openai"}
    assert len(rows) == 3


def test_url_state_and_status_filters_combine(log):
    app = run_app()

    app.sidebar.pills(key="url_state").set_value(["expired", "live"]).run()
    assert sorted(shown_rows(app)["model"]) == ["dall-e-3", "flux-schnell"]
    app.sidebar.multiselect(key="provider").set_value(["replicate"]).run()

    no_exception(app)
    assert list(shown_rows(app)["model"]) == ["flux-schnell"]


def test_search_user_tag_and_cost_filters_narrow_the_rows(log):
    app = run_app()

    app.sidebar.text_input(key="q").input("fox").run()
    assert list(shown_rows(app)["model"]) == ["dall-e-3"]
    app.sidebar.text_input(key="q").input("").run()
    app.sidebar.selectbox(key="user").set_value("carol").run()
    assert sorted(shown_rows(app)["provider"]) == ["bfl", "replicate"]
    app.sidebar.selectbox(key="user").set_value(None).run()
    app.sidebar.text_input(key="tag").input("team=brand").run()

    no_exception(app)
    assert list(shown_rows(app)["model"]) == ["gpt-image-1"]


def test_date_range_filter_is_inclusive_of_whole_days(log):
    today = NOW.date()
    app = run_app()
    app.sidebar.pills(key="range").set_value("custom").run()

    app.sidebar.date_input(key="from").set_value(today + timedelta(days=1)).run()
    assert app.info[0].value == "No calls match these filters."
    app.sidebar.date_input(key="from").set_value(today - timedelta(days=1)).run()
    app.sidebar.date_input(key="to").set_value(today).run()

    no_exception(app)
    assert len(shown_rows(app)) == 5


def test_refresh_shows_a_call_recorded_after_the_page_was_drawn(log):
    app = run_app()
    insert_calls(log, [CallRecord(provider="xai", model="grok-2-image", prompt="a late call")])

    app.sidebar.button[0].click().run()  # Refresh

    no_exception(app)
    assert app.sidebar.button[0].label == "Refresh"
    assert shown_rows(app)["provider"][0] == "xai"
    assert len(shown_rows(app)) == 6


def test_refresh_keeps_the_engine_and_its_pool(log, db_url):
    app = run_app()
    engine = data.engine_for(db_url)

    app.sidebar.button[0].click().run()  # Refresh

    no_exception(app)
    assert data.engine_for(db_url) is engine


def test_filters_in_a_pasted_link_reproduce_the_view(log):
    app = run_app(provider=["openai"], status=["error"])

    no_exception(app)
    assert app.sidebar.multiselect(key="provider").value == ["openai"]
    assert [list(status) for status in shown_rows(app)["status"]] == [["error"]]


def test_logs_pages_through_older_and_newer_calls(empty_log):
    base = NOW - timedelta(days=1)
    insert_calls(
        empty_log,
        [
            CallRecord(provider="openai", model="dall-e-2", created_at=base + timedelta(minutes=i))
            for i in range(120)
        ],
    )
    app = run_app()
    first_page = list(shown_rows(app)["created_at"])

    next(b for b in app.button if b.label == "Older").click().run()
    second_page = list(shown_rows(app)["created_at"])
    next(b for b in app.button if b.label == "Newer").click().run()

    no_exception(app)
    assert len(first_page) == len(second_page) == 50
    assert max(second_page) < min(first_page)
    assert "after" not in app.query_params
    assert list(shown_rows(app)["created_at"]) == first_page


def test_export_download_is_what_the_cli_export_writes(log, db_url):
    flt = LogFilter(providers=("openai",))

    payload = export.payload(log, flt, "jsonl")
    cli = subprocess.run(
        [sys.executable, "-m", "store", "--database-url", db_url, "export", "--provider", "openai"],
        capture_output=True,
        text=True,
        check=True,
    )

    assert payload == cli.stdout
    assert [json.loads(line)["id"] for line in payload.splitlines()] == [
        ERROR_ID,
        B64_ID,
        EXPIRED_ID,
    ]


def test_check_urls_now_probes_the_filtered_images_and_shows_the_new_states(empty_log):
    def host(request: Request) -> Reply:
        if request.path == "/gone.png":
            return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
        return Reply(206, picture("white")[:1], {"Content-Type": "image/png"})

    with LoopbackServer(host) as server:
        insert_calls(
            empty_log,
            [
                CallRecord(
                    provider="together",
                    model="flux",
                    images=[ImageRecord(url=server.url("/gone.png"), url_state="unknown")],
                ),
                CallRecord(
                    provider="together",
                    model="flux",
                    images=[ImageRecord(url=server.url("/here.png"), url_state="unknown")],
                ),
                CallRecord(  # outside the filter: must not be probed
                    provider="replicate",
                    model="sdxl",
                    images=[ImageRecord(url=server.url("/other.png"), url_state="unknown")],
                ),
            ],
        )
        app = run_app(provider=["together"])

        next(b for b in app.button if b.label == "Check URLs now").click().run()

    no_exception(app)
    assert app.success[0].value.startswith("Checked 2 URLs")
    assert sorted(shown_rows(app)["url_state"].map(tuple)) == [("expired",), ("live",)]
    assert "/other.png" not in {request.path for request in server.requests}
    with empty_log.connect() as connection:
        states = dict(connection.execute(select(IMAGES.c.url, IMAGES.c.url_state)).all())
    assert states[server.url("/other.png")] == "unknown"


# --- detail ------------------------------------------------------------------------------------


def test_detail_of_an_expired_url_shows_the_cached_thumbnail_and_mark(log):
    app = open_page("detail", log=EXPIRED_ID)

    no_exception(app)
    [warning] = app.warning
    assert warning.value == "Hosted URL expired · expiry passed 2 h ago — cached copy"
    shown = shown_thumbnails(app)
    assert shown == [make_thumbnail(picture("red")).thumbnail]


def test_detail_shows_prompts_as_plain_text_and_the_recorded_facts(log):
    app = open_page("detail", log=EXPIRED_ID)

    no_exception(app)
    codes = [code.value for code in app.code]
    assert TRICKY_PROMPT in codes
    assert "A red fox stands in deep snow." in codes
    assert all(TRICKY_PROMPT not in markdown.value for markdown in app.markdown)
    texts = [text.value for text in app.text]
    assert "Request id: req_expired" in texts
    assert any(text.startswith("Priced by: ") for text in texts)
    assert any("512 x 384 px" in markdown.value for markdown in app.markdown)
    assert "Expiry from: provider-lifetime" in texts
    recorded = [json.loads(element.proto.body) for element in app.json]
    assert {"model": "dall-e-3", "prompt": TRICKY_PROMPT} in recorded  # the request


def test_detail_lists_every_stored_column_of_the_call_and_its_images(log):
    from store.schema.models import GENERATIONS

    app = open_page("detail", log=EXPIRED_ID)

    no_exception(app)
    tables = [element.value for element in app.dataframe]
    call_table = next(t for t in tables if list(t.columns) == ["column", "value"])
    assert list(call_table["column"]) == list(GENERATIONS.c.keys())
    values = dict(zip(call_table["column"], call_table["value"], strict=True))
    assert values["id"] == EXPIRED_ID and values["request_id"] == "req_expired"
    image_table = [t for t in tables if list(t.columns) == ["column", "value"]][1]
    image_values = dict(zip(image_table["column"], image_table["value"], strict=True))
    assert image_values["sha256"] == hashlib.sha256(picture("red")).hexdigest()
    assert image_values["url_state"] == "expired"


def test_detail_of_a_live_url_shows_the_cached_thumbnail_and_loads_the_hosted_one_on_request(log):
    hosted = "https://replicate.delivery/pbxt/abc/out-0.webp"
    app = open_page("detail", log=LIVE_ID)

    no_exception(app)
    assert not app.warning
    shown = [url for element in app.get("image") for url in element.value]
    assert hosted not in shown  # the viewer's browser fetches nothing from the log's URLs
    assert len(shown_thumbnails(app)) == 1

    app.toggle[0].set_value(True).run()

    shown = [url for element in app.get("image") for url in element.value]
    assert hosted in shown


def test_a_hostile_log_id_in_the_link_is_shown_as_plain_text(log):
    hostile = "[click](http://evil.test) ![pixel](http://evil.test/p.png)"

    app = open_page("detail", log=hostile)

    no_exception(app)
    message = app.error[0].value
    assert "](http" not in message.replace("\\]\\(", "")
    assert "\\[click\\]\\(http" in message


def archive_an_original(log: Engine, location: str, color: str = "navy") -> tuple[int, bytes]:
    """Keep a new original for the expired call's image in the archive at `location`, as the
    recorder would have; returns the image's id and the original's bytes."""
    original = picture(color)
    facts = make_thumbnail(original)
    archive_path = Archive(location).store(facts.sha256, facts.format, original)
    with log.begin() as connection:
        connection.execute(
            update(IMAGES)
            .where(IMAGES.c.generation_id == EXPIRED_ID)
            .values(**facts.columns(), archive_path=archive_path)
        )
        image_id = connection.execute(
            select(IMAGES.c.id).where(IMAGES.c.generation_id == EXPIRED_ID)
        ).scalar_one()
    return image_id, original


def test_detail_shows_the_archived_original_on_request_read_by_the_app(log, s3_bucket, monkeypatch):
    location = f"s3://{s3_bucket}/originals"
    monkeypatch.setenv("IMAGELOG_ARCHIVE", location)
    image_id, original = archive_an_original(log, location)

    app = open_page("detail", log=EXPIRED_ID)

    no_exception(app)
    assert len([url for element in app.get("image") for url in element.value]) == 1  # thumbnail
    assert any(location in block.value for block in app.code)  # where it is kept, as text

    app.toggle(key=f"archive-{image_id}").set_value(True).run()

    no_exception(app)
    shown = [url for element in app.get("image") for url in element.value]
    served = [url for url in shown if not url.startswith("data:")]
    assert len(served) == 1 and "/media/" in served[0]  # from the app, not from the bucket
    assert served[0].endswith(".png")  # the original's own bytes, not a re-encoded JPEG
    assert not any(s3_bucket in url or "s3://" in url or "http" in url for url in shown)
    captions = [caption for element in app.get("image") for caption in element.proto.imgs]
    assert any(f"{len(original):,} bytes · sha256 checked" in img.caption for img in captions)
    [download] = app.get("download_button")
    assert download.proto.label == "Download original"


@pytest.mark.parametrize("problem", ["no archive here", "changed in the store"])
def test_detail_says_why_an_archived_original_cannot_be_shown(
    log, s3_bucket, s3_server, monkeypatch, problem
):
    location = f"s3://{s3_bucket}/originals"
    image_id, original = archive_an_original(log, location, color="olive")
    if problem == "no archive here":
        monkeypatch.delenv("IMAGELOG_ARCHIVE", raising=False)
        expected = "this dashboard reads no archive"
    else:
        monkeypatch.setenv("IMAGELOG_ARCHIVE", location)
        sha = hashlib.sha256(original).hexdigest()
        s3_server.put(s3_bucket, f"originals/{sha[:2]}/{sha}.png", original + b"x")
        expected = "no longer matches its sha256"

    app = open_page("detail", log=EXPIRED_ID)
    app.toggle(key=f"archive-{image_id}").set_value(True).run()

    no_exception(app)
    assert expected in app.warning[-1].value
    assert not [url for e in app.get("image") for url in e.value if not url.startswith("data:")]


def test_detail_says_why_an_original_was_not_archived(log):
    reason = "not archived: cannot write to s3://team-bucket/originals: EndpointConnectionError"
    with log.begin() as connection:
        connection.execute(
            update(IMAGES).where(IMAGES.c.generation_id == EXPIRED_ID).values(archive_error=reason)
        )

    app = open_page("detail", log=EXPIRED_ID)

    no_exception(app)
    assert f"Original not archived: {reason}" in [text.value for text in app.text]


def test_detail_steps_to_the_newer_and_older_call_of_the_filtered_list(log):
    app = open_page("detail", log=B64_ID, provider=["openai"])
    older = next(b for b in app.button if b.label == "Older")

    older.click().run()

    no_exception(app)
    assert app.query_params["log"] == EXPIRED_ID  # skips the other providers' calls
    assert next(b for b in app.button if b.label == "Older").disabled  # the list's oldest
    next(b for b in app.button if b.label == "Newer").click().run()
    next(b for b in app.button if b.label == "Newer").click().run()
    assert app.query_params["log"] == ERROR_ID


def test_detail_shows_several_images_as_a_grid_with_copyable_hash_and_url(log):
    app = open_page("detail", log=EXPIRED_ID)

    no_exception(app)
    codes = [code.value for code in app.code]
    assert hashlib.sha256(picture("red")).hexdigest() in codes
    assert "https://oaidalle.blob.test/img.png" in codes
    assert app.metric[1].value == "8.1 s"


def test_detail_of_an_unknown_id_says_so(log):
    app = open_page("detail", log="f" * 32)

    no_exception(app)
    assert app.error[0].value == f"No call with id {'f' * 32!r} in this log."


# --- gallery -----------------------------------------------------------------------------------


def test_gallery_shows_one_card_per_image_with_state_badges(log):
    app = open_page("gallery")

    no_exception(app)
    badges = [badge.proto.body for badge in app.get("markdown") if ":material/" in badge.proto.body]
    assert len(shown_thumbnails(app)) == 4  # the error call has no image
    assert sum("expired" in body for body in badges) == 1
    assert sum("live" in body for body in badges) == 1


def test_gallery_cards_are_equal_and_show_the_prompt_as_text_with_a_total(log):
    app = open_page("gallery")

    no_exception(app)
    texts = [text.value for text in app.text]
    assert TRICKY_PROMPT in texts  # as written: plain text, not Markdown
    assert "a blue lighthouse" in texts
    cards = [
        block.proto.height_config.pixel_height
        for block in app.main.get("flex_container")
        if block.proto.height_config.pixel_height
    ]
    assert cards == [image_cards.CARD_HEIGHT] * 4
    assert any("4 images on this page · 5 calls match" in c.value for c in app.caption)


def test_gallery_follows_the_url_state_filter(log):
    app = open_page("gallery")

    app.sidebar.pills(key="url_state").set_value(["expired"]).run()

    no_exception(app)
    assert shown_thumbnails(app) == [make_thumbnail(picture("red")).thumbnail]


# --- analytics ---------------------------------------------------------------------------------


def test_analytics_totals_follow_the_filters(log):
    app = open_page("analytics")
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Calls"] == "5"
    assert metrics["Images"] == "4"
    assert metrics["Error rate"] == "20.0%"

    app.sidebar.multiselect(key="provider").set_value(["openai"]).run()

    no_exception(app)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Calls"] == "3"
    assert metrics["Error rate"] == "33.3%"
    assert metrics["Expired URLs"] == "100.0%"  # the one hosted OpenAI URL; b64 is not hosted
    # calls, cost, cost by model, errors by type, latency, top models
    assert len(app.get("vega_lite_chart")) == 6


def test_analytics_charts_per_hour_or_per_day_as_chosen(log):
    moments = [call.created_at for call in known_calls()]
    app = open_page("analytics")  # five calls within three hours: hourly by default
    hourly = chart_rows(app)

    app.get("segmented_control")[0].set_value("day").run()

    no_exception(app)
    assert hourly == len({moment.replace(minute=0, second=0, microsecond=0) for moment in moments})
    assert chart_rows(app) == len({moment.date() for moment in moments})
    assert {metric.label: metric.value for metric in app.metric}["Calls"] == "5"


def test_analytics_per_hour_or_day_is_in_the_link(log):
    moments = [call.created_at for call in known_calls()]
    app = open_page("analytics", per="day")  # hourly by default: the link wins

    no_exception(app)
    assert chart_rows(app) == len({moment.date() for moment in moments})
    assert app.get("segmented_control")[0].value == "day"


def test_analytics_counts_unpriced_calls_and_shows_errors_by_type(log):
    app = open_page("analytics")

    no_exception(app)
    cost = next(metric for metric in app.metric if metric.label == "Cost")
    captions = " ".join(caption.value for caption in app.caption)
    assert "unpriced" in str(cost.proto.delta)
    assert "histogram" in captions  # the percentiles say how they were read
    errors = [chart for chart in app.get("vega_lite_chart") if "HTTP 400" in str(chart.proto)]
    assert errors, "no chart names the failed call's HTTP status"


# --- helpers -----------------------------------------------------------------------------------


def shown_thumbnails(app: AppTest) -> list[bytes]:
    """The bytes of every image the run shows from a data: URI (the cached thumbnails)."""
    prefix = "data:image/webp;base64,"
    urls = [url for element in app.get("image") for url in element.value]
    return [base64.b64decode(url.removeprefix(prefix)) for url in urls if url.startswith(prefix)]


def chart_rows(app: AppTest) -> int:
    """Rows of the data behind the run's first chart (calls over time)."""
    dataset = app.get("vega_lite_chart")[0].proto.datasets[0]
    return pa.ipc.open_stream(dataset.data.data).read_all().num_rows


def test_unknown_filter_values_in_a_link_are_named_not_silently_dropped(log):
    app = open_page("logs", provider=["openai", "nosuch"], status="[bad](http://x.test)")

    no_exception(app)
    [warning] = [warning.value for warning in app.sidebar.warning]
    assert "- provider: 'nosuch'" in warning
    assert "- status: '\\[bad\\]\\(http" in warning


def test_every_link_value_the_sidebar_cannot_take_is_named(log):
    app = open_page(
        "logs",
        model="nosuch",
        range="2w",
        to="garbage",
        min_cost="-1",
        max_cost="lots",
        url_state="no URL",  # what the pill writes for "none": known
        verdict="needs another look",
    )

    no_exception(app)
    [warning] = [warning.value for warning in app.sidebar.warning]
    named = [line.split(":")[0] for line in warning.splitlines()[1:]]
    assert named == ["- model", "- range", "- to", "- min_cost", "- max_cost"]


def test_quick_ranges_narrow_to_the_last_hour_or_day(log):
    app = run_app(range="1h")

    no_exception(app)
    assert list(shown_rows(app)["provider"]) == ["bfl", "replicate"]  # 10 and 20 min ago
    assert app.sidebar.get("date_input") == []  # days only for a custom range
    app.sidebar.pills(key="range").set_value("24h").run()
    assert len(shown_rows(app)) == 5


def test_a_link_with_days_and_no_range_opens_as_a_custom_range(log):
    app = run_app(**{"from": (NOW - timedelta(days=1)).date().isoformat()})

    no_exception(app)
    assert app.sidebar.pills(key="range").value == "custom"
    assert len(shown_rows(app)) == 5


def test_the_model_list_offers_the_chosen_providers_models(log):
    app = run_app()
    assert app.sidebar.multiselect(key="model").options == [
        "dall-e-3",
        "flux-pro-1.1",
        "flux-schnell",
        "gpt-image-1",
    ]

    app.sidebar.multiselect(key="provider").set_value(["replicate", "bfl"]).run()

    no_exception(app)
    assert app.sidebar.multiselect(key="model").options == ["flux-pro-1.1", "flux-schnell"]


def test_a_mangled_page_cursor_in_a_link_opens_the_first_page(log):
    year_one = base64.urlsafe_b64encode(
        b'["0001-01-01T00:00:00+14:00", "' + b"a" * 32 + b'", null]'
    ).decode()

    for page in ("logs", "gallery"):
        app = open_page(page, after=year_one)

        no_exception(app)

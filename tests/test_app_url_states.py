"""The dashboard never calls a URL live past its expiry (AppTest, both databases): the chips,
the lines beside them, the URL-state filter and the Detail page tell a prediction from a
probe's answer."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from store.capture.writer import insert_calls
from store.expiry.prediction import ESTIMATE_PASSED
from store.media.thumbnails import make_thumbnail
from store.schema.models import IMAGES, utcnow
from store.schema.records import CallRecord, ImageRecord
from tests.test_app import no_exception, open_page, picture, run_app, shown_rows

LAPSED_ID, LIVE_ID, GONE_ID = "1" * 32, "2" * 32, "3" * 32


def call(call_id: str, minutes_ago: int, now: datetime, **image: object) -> CallRecord:
    facts = make_thumbnail(picture("purple"))
    return CallRecord(
        id=call_id,
        created_at=now - timedelta(minutes=minutes_ago),
        provider="replicate",
        model="flux-schnell",
        prompt=f"call {call_id[0]}",
        images=[
            ImageRecord(
                url=f"https://replicate.delivery/pbxt/{call_id}/out-0.webp",
                thumbnail=facts.thumbnail,
                width=facts.width,
                height=facts.height,
                **image,
            )
        ],
    )


def test_a_url_past_its_expiry_reads_expired_predicted_and_leaves_the_live_filter(empty_log):
    now = utcnow()
    checked = now - timedelta(minutes=50)
    insert_calls(
        empty_log,
        [
            # Marked live by the thumbnail fetch, then its expiry passed 9 minutes ago.
            call(
                LAPSED_ID,
                70,
                now,
                url_state="live",
                expires_at=now - timedelta(minutes=9),
                last_checked_at=checked,
                last_http_status=200,
            ),
            call(
                LIVE_ID,
                60,
                now,
                url_state="live",
                expires_at=now + timedelta(minutes=40),
                last_checked_at=checked,
                last_http_status=206,
            ),
            call(
                GONE_ID,
                80,
                now,
                url_state="expired",
                expires_at=now + timedelta(minutes=5),
                last_checked_at=checked,
                last_http_status=404,
            ),
        ],
    )

    app = run_app()

    no_exception(app)
    rows = shown_rows(app)
    assert [list(chip) for chip in rows["url_state"]] == [
        ["live"],
        ["expired (predicted)"],
        ["expired"],
    ]
    assert rows["url_when"][1].startswith("expiry passed 9 min ago")
    assert rows["url_when"][2].startswith("404 at ") and rows["url_when"][2].endswith("(checked)")
    with empty_log.connect() as connection:
        stored = connection.execute(
            select(IMAGES.c.url_state, IMAGES.c.last_error_code).where(
                IMAGES.c.generation_id == LAPSED_ID
            )
        ).one()
    assert tuple(stored) == ("expired", ESTIMATE_PASSED)

    app.sidebar.pills(key="url_state").set_value(["live"]).run()
    assert list(shown_rows(app)["prompt"]) == ["call 2"]
    app.sidebar.pills(key="url_state").set_value(["expired"]).run()
    assert list(shown_rows(app)["prompt"]) == ["call 1", "call 3"]


def test_gallery_and_detail_say_predicted_or_checked(empty_log):
    now = utcnow()
    insert_calls(
        empty_log,
        [
            call(LAPSED_ID, 70, now, url_state="live", expires_at=now - timedelta(minutes=9)),
            call(
                GONE_ID,
                80,
                now,
                url_state="expired",
                last_checked_at=now - timedelta(minutes=5),
                last_http_status=404,
            ),
        ],
    )

    gallery = open_page("gallery")

    no_exception(gallery)
    chips = [m.proto.body for m in gallery.get("markdown") if ":material/" in m.proto.body]
    assert sum("hourglass_disabled: expired" in body for body in chips) == 1  # predicted's icon
    captions = [caption.value for caption in gallery.caption]
    assert any(text.startswith("predicted · expiry passed 9 min ago") for text in captions)
    assert any(text.startswith("404 at ") and text.endswith("(checked)") for text in captions)

    detail = open_page("detail", log=LAPSED_ID)

    no_exception(detail)
    warnings = [warning.value for warning in detail.warning]
    assert any("expired (predicted) · expiry passed 9 min ago — cached copy" in w for w in warnings)
    assert not detail.toggle  # an expired URL is not offered to load

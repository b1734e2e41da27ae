"""Content credentials and look-alike images on the dashboard (AppTest, SQLite and PostgreSQL):
Detail says who signed an image and lists its look-alikes, the sidebar filters by
credentials, the Gallery groups look-alikes, and Analytics counts the credentials."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import Engine

from store.capture.writer import insert_calls
from store.media.lookalike import perceptual_hash
from store.media.thumbnails import make_thumbnail
from store.schema.models import utcnow
from store.schema.records import CallRecord, ImageRecord
from tests.test_app import no_exception, open_page, shown_thumbnails

NOW = utcnow()
SIGNED, COPY, TAMPERED, PLAIN = "1" * 32, "2" * 32, "3" * 32, "4" * 32
CREATED = {
    "action": "c2pa.created",
    "software_agent": "DALL·E 3",
    "source": "trainedAlgorithmicMedia",
}


def drawing(shapes: int, side: int = 512) -> bytes:
    """A picture of `shapes` ellipses, drawn at 512 px and shrunk to `side` (a smaller copy)."""
    out = io.BytesIO()
    image = Image.new("RGB", (512, 512), "white")
    draw = ImageDraw.Draw(image)
    for index in range(shapes):
        x = (index * 97) % 452
        draw.ellipse((x, x // 2, x + 60, x // 2 + 90), fill=(40 * index % 255, 90, 160))
    image.resize((side, side)).save(out, "PNG")
    return out.getvalue()


def unescaped(markdown: str) -> str:
    """Text shown through `plain` (Markdown characters escaped), as the reader sees it."""
    return markdown.replace("\\", "")


def hashed_image(original: bytes, **credentials) -> ImageRecord:
    facts = make_thumbnail(original)
    return ImageRecord(
        **facts.columns(), url_state="none", phash=perceptual_hash(facts.thumbnail), **credentials
    )


@pytest.fixture
def evidence_log(empty_log) -> Engine:
    """A signed image and a smaller copy of it, a tampered one, and an unsigned other picture."""
    signed = dict(
        c2pa_state="valid",
        c2pa_issuer="OpenAI",
        c2pa_generator="OpenAI API",
        c2pa_actions=[CREATED],
    )
    calls = [
        (SIGNED, hashed_image(drawing(5), **signed)),
        (COPY, hashed_image(drawing(5, side=384), **signed)),
        (
            TAMPERED,
            hashed_image(
                drawing(9),
                c2pa_state="invalid",
                c2pa_issuer="OpenAI",
                c2pa_error="failed: assertion.dataHash.mismatch",
            ),
        ),
        (PLAIN, hashed_image(drawing(2), c2pa_state="none")),
    ]
    insert_calls(
        empty_log,
        [
            CallRecord(
                id=call_id,
                created_at=NOW - timedelta(minutes=index),
                provider="openai",
                model="dall-e-3",
                prompt=f"picture {index}",
                images=[picture],
            )
            for index, (call_id, picture) in enumerate(calls)
        ],
    )
    return empty_log


def test_detail_says_who_signed_the_image_and_lists_its_look_alike(evidence_log):
    app = open_page("detail", log=SIGNED)

    no_exception(app)
    [success] = app.success
    assert unescaped(success.value) == (
        "Content credentials: signed by OpenAI, created by DALL·E 3 (a generative model), valid"
    )
    assert any(
        "Action: c2pa.created · DALL·E 3 · trainedAlgorithmicMedia" in text.value
        for text in app.text
    )
    assert any("Similar images across the log (1 within 6 bits" in c.value for c in app.caption)
    assert len(shown_thumbnails(app)) == 2  # its own and its look-alike's


def test_detail_flags_tampered_and_missing_credentials(evidence_log):
    tampered = open_page("detail", log=TAMPERED)
    plain = open_page("detail", log=PLAIN)

    no_exception(tampered)
    no_exception(plain)
    assert unescaped(tampered.error[0].value).startswith("Content credentials: signed by OpenAI")
    assert tampered.error[0].value.endswith(", invalid")
    assert any("assertion.dataHash.mismatch" in unescaped(c.value) for c in tampered.caption)
    assert unescaped(plain.warning[0].value) == "Content credentials: no content credentials"


def test_the_credentials_filter_narrows_the_gallery_and_analytics_counts_them(evidence_log):
    app = open_page("gallery")

    app.sidebar.pills(key="credentials").set_value(["invalid", "none"]).run()

    no_exception(app)
    assert len(shown_thumbnails(app)) == 2
    analytics = open_page("analytics")
    no_exception(analytics)
    figures = {metric.label: metric.value for metric in analytics.metric}
    assert figures["Credentials valid"] == "2"
    assert figures["Credentials invalid"] == "1" and figures["No credentials"] == "1"


def test_the_gallery_groups_look_alikes_into_one_card(evidence_log):
    app = open_page("gallery")
    assert len(shown_thumbnails(app)) == 4

    app.toggle(key="group").set_value(True).run()

    no_exception(app)
    assert len(shown_thumbnails(app)) == 3
    assert any("+1 look-alike]" in caption.value for caption in app.caption)

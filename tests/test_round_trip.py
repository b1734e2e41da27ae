"""Export then import into a new database reproduces the log row for row, on both backends.

The source log holds demo calls (thumbnails, signed URLs, priced and unpriced calls, errors)
and hand-made rows written straight into the tables with every column set to a value the
writer would not work out itself (a size the params do not say, a negotiated cost, a host
and an expiry that differ from the URL's), and rows whose nulls it would fill in: what comes
back must be what was there, not what the writer would compute today.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from store.cli import main
from store.schema.db import make_engine
from store.schema.models import GENERATIONS, IMAGES
from store.transfer.demo import load_demo
from tests.databases import differences, log_rows

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 9, 30, 12, 345678, tzinfo=UTC)
#: A URL whose signature says when it expires: the writer would predict T0 + 1 h from it.
SAS_URL = (
    "https://oaidalleapiprodscus.blob.core.windows.net/private/org/user/img-1.png"
    "?st=2026-11-20T08%3A30%3A12Z&se=2026-11-20T10%3A30%3A12Z&sp=r&sv=2021-08-06&sr=b&sig=abc%3D"
)

EVERY_COLUMN_SET = {
    "id": "ab" * 16,
    "created_at": T0,
    "provider": "azure-openai",
    "model": "dall-e-3",
    "operation": "edit",
    "prompt": "a lighthouse at dusk, ünïcode and\ttabs",
    "revised_prompt": "A tall lighthouse at dusk.",
    "size": "512x512",  # the params say otherwise
    "quality": "standard",
    "n": 3,
    "params_json": {"size": "1024x1024", "quality": "hd", "n": 2, "style": "vivid"},
    "status": "error",
    "error": "content_filter: one image was filtered",
    "http_status": 400,
    "latency_ms": 12345.6,
    "cost_usd": 0.123456,  # a negotiated rate, not the price table's
    "cost_source": "reported",
    "cost_note": "invoice 2026-11",
    "usage_json": {"input_tokens": 12, "output_tokens": 4160, "nested": {"a": [1, 2.5, None]}},
    "request_id": "req_0123456789abcdef",
    "trace_id": "7d3c1c1e-3f4a-4b0e-9d5e-2a6f9c7b8e10",
    "user_id": "ana@acme.example",
    "metadata_json": {"team": "design", "feature": "blog-hero", "imagelog_truncated": {"x": 1}},
    "request_json": {"method": "POST", "body": {"prompt": "a lighthouse at dusk"}},
    "response_json": {"created": 1, "data": [{"url": "https://a.example/1.png"}]},
    "image_count": 5,  # two image rows below
    "source": "httpx",
}
EVERY_IMAGE_COLUMN_SET = {
    "generation_id": "ab" * 16,
    "url": SAS_URL,
    "url_host": "cdn.example",  # not the URL's host
    "revised_prompt": "A tall lighthouse at dusk, image one.",
    "expires_at": T0 + timedelta(hours=5),  # not the signature's
    "expires_source": "provider",
    "url_state": "expired",
    "last_checked_at": T0 + timedelta(hours=6, microseconds=7),
    "last_http_status": 403,
    "last_error_code": "AuthenticationFailed",
    "check_failures": 2,
    "sha256": "cd" * 32,
    "width": 1024,
    "height": 1792,
    "format": "png",
    "byte_size": 3_145_728,
    "thumbnail": b"RIFF\x00\xff\x01 not really webp",
    "thumbnail_error": "an earlier fetch timed out",
    "archive_path": "/srv/archive/ab/0.png",
}
#: A call whose nulls the writer would fill in (size, cost, revised prompt, expiry, host).
NULLS_KEPT = {
    **{name: None for name in EVERY_COLUMN_SET},
    "id": "ef" * 16,
    "created_at": T0 - timedelta(days=1),
    "provider": "openai",
    "model": "dall-e-3",
    "operation": "generate",
    "prompt": "a priced model with its cost left unknown",
    "n": 1,
    "params_json": {"size": "1024x1024", "quality": "hd"},
    "status": "ok",
    "cost_source": "unknown",
    "metadata_json": {},
    "image_count": 1,
    "source": "import",
}
NULL_IMAGE = {
    **{name: None for name in EVERY_IMAGE_COLUMN_SET},
    "generation_id": "ef" * 16,
    "url": SAS_URL,
    "revised_prompt": "the call itself has no revised prompt",
    "url_state": "unknown",
    "check_failures": 0,
}


def write_hand_made_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(GENERATIONS.insert(), [EVERY_COLUMN_SET, NULLS_KEPT])
        connection.execute(
            IMAGES.insert(),
            [
                {**EVERY_IMAGE_COLUMN_SET, "position": 0},
                {**EVERY_IMAGE_COLUMN_SET, "position": 1, "thumbnail": b"\x00" * 3},
                {**NULL_IMAGE, "position": 0},
            ],
        )


def test_export_then_import_into_a_new_database_gives_back_every_row(
    engine, db_url, fresh_db_url, tmp_path: Path
):
    load_demo(engine, count=60, seed=4, now=NOW)
    write_hand_made_rows(engine)
    exported = tmp_path / "log.jsonl"
    target_url = fresh_db_url(engine.dialect.name)

    assert main(["--database-url", db_url, "export", "-o", str(exported)]) == 0
    assert main(["--database-url", target_url, "import", str(exported), "--no-progress"]) == 0

    target = make_engine(target_url)
    try:
        before, after = log_rows(engine), log_rows(target)
    finally:
        target.dispose()
    assert len(before["generations"]) == 62
    assert sum(row["thumbnail"] is not None for row in before["images"].values()) > 20
    assert differences(before, after) == []


def test_an_exported_line_carries_every_column_nulls_and_thumbnail_included(
    engine, db_url, tmp_path
):
    write_hand_made_rows(engine)
    exported = tmp_path / "log.jsonl"

    main(["--database-url", db_url, "export", "-o", str(exported)])

    first, second = (json.loads(text) for text in exported.read_text().splitlines())
    assert first["size"] == "512x512" and first["image_count"] == 5
    assert (first["cost_usd"], first["cost_source"]) == (0.123456, "reported")
    image = first["images"][0]
    stored = {
        key: image[key]
        for key in ("url_host", "url_state", "expires_source", "last_checked_at", "check_failures")
    }
    assert stored == {
        "url_host": "cdn.example",
        "url_state": "expired",
        "expires_source": "provider",
        "last_checked_at": "2026-11-20T15:30:12.345685Z",
        "check_failures": 2,
    }
    assert image["thumbnail"] and image["archive_path"] == "/srv/archive/ab/0.png"
    assert second["size"] is None and second["revised_prompt"] is None  # written out, as null
    assert second["images"][0]["expires_at"] is None

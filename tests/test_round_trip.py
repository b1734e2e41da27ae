"""Export then import into a new database reproduces the log row for row, on both backends.

The source log holds demo calls (thumbnails, signed URLs, priced and unpriced calls, errors)
and the hand-made rows of tests/databases.py, whose columns the writer would have worked out
differently: what comes back must be what was there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from store.capture.writer import insert_calls
from store.cli import main
from store.queries import LogFilter, iter_records
from store.schema.db import make_engine
from store.schema.models import REVIEWS
from store.transfer.demo import load_demo
from tests.databases import (
    EVERY_COLUMN_SET,
    differences,
    give_hand_made_verdicts,
    log_rows,
    write_hand_made_rows,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_export_then_import_into_a_new_database_gives_back_every_row(
    engine, db_url, fresh_db_url, tmp_path: Path
):
    load_demo(engine, count=60, seed=4, now=NOW)
    write_hand_made_rows(engine)
    give_hand_made_verdicts(engine)
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
    assert len(before["reviews"]) == 3
    assert after["images"][EVERY_COLUMN_SET["id"], 0]["verdict"] == "approved"
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
    assert (
        image["thumbnail"]
        and image["archive_path"] == f"s3://team-archive/originals/cd/{'cd' * 32}.png"
    )
    assert second["size"] is None and second["revised_prompt"] is None  # written out, as null
    assert second["images"][0]["expires_at"] is None


def test_an_exported_image_carries_its_review_trail_oldest_first(engine, db_url, tmp_path):
    write_hand_made_rows(engine)
    give_hand_made_verdicts(engine)
    exported = tmp_path / "log.jsonl"

    main(["--database-url", db_url, "export", "-o", str(exported)])

    first, second = (json.loads(text) for text in exported.read_text().splitlines())
    trail = [
        (review["verdict"], review["reason"], review["note"], review["reviewer"])
        for review in first["images"][0]["reviews"]
    ]
    assert trail == [
        ("flagged", "does not match the prompt", "no lighthouse", "ana"),
        ("approved", None, "colours fixed upstream", "ben"),
    ]
    assert [review["verdict"] for review in first["images"][1]["reviews"]] == ["needs_another_look"]
    assert second["images"][0]["reviews"] == []
    assert "verdict" not in first["images"][0]  # derived from the trail, not carried


def test_a_call_already_in_the_log_brings_no_second_trail(engine):
    write_hand_made_rows(engine)
    give_hand_made_verdicts(engine)
    before = log_rows(engine)
    records = list(iter_records(engine, LogFilter()))
    assert sum(len(image.reviews) for record in records for image in record.images) == 3

    insert_calls(engine, records, keep_carried=True)

    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(REVIEWS)) == 3
    assert differences(before, log_rows(engine)) == []

"""What the transfer tests read from, and do to, whole log databases on either backend.

`write_hand_made_rows` puts rows straight into the tables with every column set to a value
the writer would not work out itself (a size the params do not say, a negotiated cost, a
host and an expiry that differ from the URL's), and rows whose nulls it would fill in: a
log moved elsewhere must come back as it was, not as the writer would compute it today.
`give_hand_made_verdicts` gives those images a review trail: a changed mind, a flag with its
reason and note, and an image left unreviewed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, text

from store.review import give_verdict
from store.schema.models import GENERATIONS, IMAGES, REVIEWS, as_utc, phash_bands
from store.schema.rollups import rows_inserted, url_states_changed

#: Rows by table: generations by id, images by (generation_id, position), reviews by
#: (generation_id, position, place in the image's trail).
LogRows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]

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
    "archive_path": f"s3://team-archive/originals/cd/{'cd' * 32}.png",
    "archive_error": "an earlier upload failed: EndpointConnectionError",
    "c2pa_state": "invalid",
    "c2pa_issuer": "OpenAI",
    "c2pa_generator": "ChatGPT 1.0",
    "c2pa_signed_at": T0 + timedelta(seconds=3, microseconds=21),
    "c2pa_actions_json": [
        {
            "action": "c2pa.created",
            "software_agent": "DALL·E 3",
            "source": "trainedAlgorithmicMedia",
        },
        {"action": "c2pa.converted"},
    ],
    "c2pa_error": "failed: assertion.dataHash.mismatch",
    "phash": "c3a5e1f00f1e5a3c",
    **phash_bands("c3a5e1f00f1e5a3c"),
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
        # Rows written by hand, not by the writer: count them in as the writer would.
        calls = [EVERY_COLUMN_SET["id"], NULLS_KEPT["id"]]
        rows_inserted(connection, calls)
        url_states_changed(connection, calls)


def give_hand_made_verdicts(engine: Engine) -> None:
    """A trail on the hand-made images: image 0 flagged then approved (a changed mind),
    image 1 needing another look with a note, the call with nulls' image left unreviewed."""
    call = EVERY_COLUMN_SET["id"]
    give_verdict(
        engine, call, 0, "flagged", "ana", reason="does not match the prompt", note="no lighthouse"
    )
    give_verdict(engine, call, 0, "approved", "ben", note="colours fixed upstream")
    give_verdict(engine, call, 1, "needs_another_look", "ana", note="  hands look odd ")


def log_rows(engine: Engine) -> LogRows:
    """Every column of every row of the log, except the surrogate `id` of images and reviews
    (a database numbers its own rows); times as aware UTC, so SQLite and PostgreSQL rows
    compare equal. Reviews are keyed by their place in their image's trail."""
    rows: LogRows = {}
    with engine.connect() as connection:
        for table, key in ((GENERATIONS, ("id",)), (IMAGES, ("generation_id", "position"))):
            found = connection.execute(select(table)).mappings()
            rows[table.name] = {
                tuple(row[name] for name in key): _compared(row, table) for row in found
            }
        trails: dict[tuple[Any, ...], int] = {}
        rows[REVIEWS.name] = {}
        for row in connection.execute(
            select(REVIEWS).order_by(REVIEWS.c.created_at, REVIEWS.c.id)
        ).mappings():
            image = (row["generation_id"], row["position"])
            place = trails[image] = trails.get(image, -1) + 1
            rows[REVIEWS.name][(*image, place)] = _compared(row, REVIEWS)
    return rows


def _compared(row: Any, table: Any) -> dict[str, Any]:
    """A row's columns as `log_rows` compares them: no surrogate id, times as aware UTC."""
    return {
        name: as_utc(value) if isinstance(value, datetime) else value
        for name, value in row.items()
        if not (table is not GENERATIONS and name == "id")
    }


def refuse_images_ending(engine: Engine, suffix: str) -> None:
    """Make the database itself refuse to store an image whose URL ends in `suffix`: a real
    trigger that aborts the insert, the way a constraint a DBA added would."""
    message = f"images ending in {suffix} are refused here"
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_images BEFORE INSERT ON images "
                    f"WHEN new.url LIKE '%{suffix}' "
                    f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse_images() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation'; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_images BEFORE INSERT ON images FOR EACH ROW "
                f"WHEN (new.url LIKE '%{suffix}') EXECUTE FUNCTION refuse_images()"
            )
        )


def differences(expected: LogRows, actual: LogRows) -> list[str]:
    """Where `actual` differs from `expected`, one line per row or column (a readable failure)."""
    found = []
    for table, rows in expected.items():
        other = actual.get(table, {})
        found += [f"{table} {key}: missing" for key in rows.keys() - other.keys()]
        found += [f"{table} {key}: not expected" for key in other.keys() - rows.keys()]
        for key in rows.keys() & other.keys():
            found += [
                f"{table} {key} {name}: {value!r} became {other[key].get(name)!r}"
                for name, value in rows[key].items()
                if other[key].get(name) != value
            ]
    return sorted(found)


def generations(recorder) -> list[Any]:
    """Every call a recorder has written, once its queue is flushed."""
    assert recorder.flush(timeout=30)
    with recorder.engine.connect() as connection:
        return list(connection.execute(select(GENERATIONS)).mappings().all())


def images_of(recorder, generation_id: str) -> list[Any]:
    """The image rows of one call, in position order."""
    with recorder.engine.connect() as connection:
        query = select(IMAGES).where(IMAGES.c.generation_id == generation_id)
        return list(connection.execute(query.order_by(IMAGES.c.position)).mappings().all())

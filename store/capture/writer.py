"""Turn call records into rows and insert them in bulk.

Every way in (the recorder's background writer, `import`, `demo`, the spool replay) ends
here, so a record is priced, its URLs' expiry predicted and its secrets-free JSON stored the
same way whichever way it came. Inserts are SQLAlchemy Core `executemany` batches, not one ORM
object per row, and skip ids already present: replaying a spool or importing a file twice
never duplicates a call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError

from store.capture.json_values import map_strings
from store.capture.pricing import price_call
from store.expiry import predict_expiry
from store.schema.models import Generation, Image, UrlState
from store.schema.records import CallRecord, ImageRecord

GENERATIONS: Table = Generation.__table__  # type: ignore[assignment]
IMAGES: Table = Image.__table__  # type: ignore[assignment]


def insert_calls(engine: Engine, records: Sequence[CallRecord]) -> int:
    """Insert `records` (and their images) in one transaction; returns how many were given."""
    if not records:
        return 0
    generation_rows = [generation_row(record) for record in records]
    image_rows = [row for record in records for row in image_rows_for(record)]
    try:
        _insert_rows(engine, generation_rows, image_rows)
    except DataError:
        # PostgreSQL takes no NUL character in text or JSONB (SQLite does): a prompt or an
        # imported line holding one would otherwise be refused, and block its whole batch.
        # Checked only on failure, so the common batch pays nothing.
        if engine.dialect.name != "postgresql":
            raise
        _insert_rows(engine, _without_nul(generation_rows), _without_nul(image_rows))
    return len(records)


def _insert_rows(
    engine: Engine, generation_rows: list[dict[str, Any]], image_rows: list[dict[str, Any]]
) -> None:
    with engine.begin() as connection:
        connection.execute(_insert_ignoring_duplicates(engine, GENERATIONS), generation_rows)
        if image_rows:
            connection.execute(_insert_ignoring_duplicates(engine, IMAGES), image_rows)


def _without_nul(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of `rows` with each NUL character replaced by U+FFFD (thumbnail bytes untouched)."""
    return map_strings(rows, lambda text: text.replace("\x00", "\ufffd"))


def _insert_ignoring_duplicates(engine: Engine, table: Table) -> Insert:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def generation_row(record: CallRecord) -> dict[str, Any]:
    """The `generations` row of a record, priced by the price table unless it carries a cost."""
    price = price_call(record)
    params = record.params
    return {
        "id": record.id,
        "created_at": record.created_at,
        "provider": record.provider,
        "model": record.model,
        "operation": record.operation,
        "prompt": record.prompt,
        "revised_prompt": record.revised_prompt or _first_revised_prompt(record.images),
        "size": _str_or_none(params.get("size")),
        "quality": _str_or_none(params.get("quality")),
        "n": _int_or(params.get("n"), max(len(record.images), 1)),
        "params_json": params,
        "status": record.status.value,
        "error": record.error,
        "http_status": record.http_status,
        "latency_ms": record.latency_ms,
        "cost_usd": price.cost_usd,
        "cost_source": price.source.value,
        "cost_note": price.note,
        "usage_json": record.usage,
        "request_id": record.request_id,
        "trace_id": record.trace_id,
        "user_id": record.user,
        "metadata_json": record.metadata,
        "request_json": record.request,
        "response_json": record.response,
        "image_count": len(record.images),
        "source": record.source,
    }


def image_rows_for(record: CallRecord) -> Iterable[dict[str, Any]]:
    """One `images` row per returned image, with its URL's predicted expiry and first state."""
    for position, image in enumerate(record.images):
        prediction = (
            predict_expiry(image.url, record.provider, record.created_at) if image.url else None
        )
        yield {
            "generation_id": record.id,
            "position": position,
            "url": image.url,
            "url_host": urlsplit(image.url).hostname if image.url else None,
            "revised_prompt": image.revised_prompt,
            "expires_at": image.expires_at or (prediction.expires_at if prediction else None),
            "expires_source": prediction.source if prediction else None,
            "url_state": image.url_state or _first_url_state(image),
            "last_checked_at": image.last_checked_at,
            "last_http_status": None,
            "last_error_code": None,
            "check_failures": 0,
            "sha256": image.sha256,
            "width": image.width,
            "height": image.height,
            "format": image.format,
            "byte_size": image.byte_size,
            "thumbnail": image.thumbnail,
            "thumbnail_error": None,
            "archive_path": None,
        }


def _first_url_state(image: ImageRecord) -> str:
    return UrlState.unknown.value if image.url else UrlState.none.value


def _first_revised_prompt(images: Sequence[ImageRecord]) -> str | None:
    return next((image.revised_prompt for image in images if image.revised_prompt), None)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default

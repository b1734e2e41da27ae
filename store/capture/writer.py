"""Turn call records into rows and insert them in bulk.

Every way in (the recorder's background writer, `import`, `demo`, the spool replay) ends
here, so a record is priced, its URLs' expiry predicted and its secrets-free JSON stored the
same way whichever way it came. Inserts are SQLAlchemy Core `executemany` batches, not one ORM
object per row, and skip ids already present: replaying a spool or importing a file twice
never duplicates a call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Insert, Table, insert, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError

from store.capture.call_params import made
from store.capture.json_values import map_strings
from store.capture.pricing import price_call
from store.capture.redaction import Scrubber
from store.expiry import predict_expiry
from store.schema.models import GENERATIONS, IMAGES, REVIEWS, current_verdict
from store.schema.records import CallRecord, ImageRecord


def insert_calls(
    engine: Engine, records: Sequence[CallRecord], *, keep_carried: bool = False
) -> int:
    """Insert `records` (and their images) in one transaction; returns how many were given.

    `keep_carried` is for records that come back from a log (an import, a copy): a column the
    record gives is stored as given, and only the ones it leaves out are worked out. Such a
    record's images may carry their review trails: those are stored too, for the calls that
    were not in the log yet, with each image's current verdict.
    """
    if not records:
        return 0
    for record in records:  # whichever way it came in, no stored text keeps a known key shape
        KEY_SHAPES.record(record)
    generation_rows = [generation_row(record, keep_carried=keep_carried) for record in records]
    image_rows = [
        row for record in records for row in image_rows_for(record, keep_carried=keep_carried)
    ]
    review_rows = [row for record in records for row in review_rows_for(record)]
    try:
        _insert_rows(engine, generation_rows, image_rows, review_rows)
    except DataError:
        # PostgreSQL takes no NUL character in text or JSONB (SQLite does): a prompt or an
        # imported line holding one would otherwise be refused, and block its whole batch.
        # Checked only on failure, so the common batch pays nothing.
        if engine.dialect.name != "postgresql":
            raise
        _insert_rows(
            engine,
            _without_nul(generation_rows),
            _without_nul(image_rows),
            _without_nul(review_rows),
        )
    return len(records)


def _insert_rows(
    engine: Engine,
    generation_rows: list[dict[str, Any]],
    image_rows: list[dict[str, Any]],
    review_rows: list[dict[str, Any]],
) -> None:
    with engine.begin() as connection:
        insert_generations = _insert_ignoring_duplicates(engine, GENERATIONS)
        if not review_rows:
            connection.execute(insert_generations, generation_rows)
        else:  # which calls are new: a call already in the log keeps its own trail
            inserted = set(
                connection.scalars(
                    insert_generations.returning(GENERATIONS.c.id),
                    generation_rows,
                )
            )
            review_rows = [row for row in review_rows if row["generation_id"] in inserted]
        if image_rows:
            connection.execute(_insert_ignoring_duplicates(engine, IMAGES), image_rows)
        if review_rows:
            connection.execute(insert(REVIEWS), review_rows)
            _set_current_verdicts(connection, review_rows)


def _set_current_verdicts(connection: Connection, review_rows: list[dict[str, Any]]) -> None:
    """Set `images.verdict` of the images `review_rows` judge to their last review's."""
    i = IMAGES.c
    judged = {(row["generation_id"], row["position"]) for row in review_rows}
    connection.execute(
        update(IMAGES)
        .where(tuple_(i.generation_id, i.position).in_(sorted(judged)))
        .values(verdict=current_verdict(i.generation_id, i.position))
    )


def _without_nul(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of `rows` with each NUL character replaced by U+FFFD (thumbnail bytes untouched)."""
    return map_strings(rows, lambda text: text.replace("\x00", "\ufffd"), keys=True)


def _insert_ignoring_duplicates(engine: Engine, table: Table) -> Insert:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


#: Masks the well-known key shapes (no request's own values: those are scrubbed at capture).
KEY_SHAPES = Scrubber()
#: The columns a record gives as they are; the writer works out the others (`_derived`).
GENERATION_COLUMNS = frozenset(GENERATIONS.c.keys())
IMAGE_COLUMNS = frozenset(IMAGES.c.keys()) - {"id", "generation_id", "position"}
REVIEW_COLUMNS = frozenset(REVIEWS.c.keys()) - {"id", "generation_id", "position"}


def generation_row(record: CallRecord, *, keep_carried: bool = False) -> dict[str, Any]:
    """The `generations` row of a record: its columns, with those the writer owns worked out.

    Size and quality are what the call made (`store.capture.call_params`), n is the request's,
    the image count comes from the images, the revised prompt from the first image when the
    call has none, and the cost from the price table (unless the record carries a cost). With
    `keep_carried`, what the record gives of these is kept: an exported call says how it was
    priced, and a newer price table must not change it on the way back in.
    """
    row = _column_values(record, GENERATION_COLUMNS)
    params = record.params_json
    worked_out: dict[str, Any] = {
        "revised_prompt": record.revised_prompt or _first_revised_prompt(record.images),
        "size": _str_or_none(made(params, "size")),
        "quality": _str_or_none(made(params, "quality")),
        "n": _int_or(params.get("n"), max(len(record.images), 1)),
        "image_count": len(record.images),
    }
    if not (keep_carried and "cost_source" in record.model_fields_set):
        price = price_call(record)
        worked_out.update(
            cost_usd=price.cost_usd, cost_source=price.source.value, cost_note=price.note
        )
    row.update(_not_carried(worked_out, record, keep_carried))
    return row


def image_rows_for(record: CallRecord, *, keep_carried: bool = False) -> Iterable[dict[str, Any]]:
    """One `images` row per returned image, with its URL's host and predicted expiry (with
    `keep_carried`, those an image gives are kept)."""
    for position, image in enumerate(record.images):
        row = _column_values(image, IMAGE_COLUMNS)
        row.update(generation_id=record.id, position=position)
        if image.url:
            worked_out: dict[str, Any] = {"url_host": urlsplit(image.url).hostname}
            prediction = predict_expiry(image.url, record.provider, record.created_at)
            if prediction is not None:
                worked_out["expires_at"] = image.expires_at or prediction.expires_at
                worked_out["expires_source"] = image.expires_source or prediction.source
            row.update(_not_carried(worked_out, image, keep_carried))
        yield row


def review_rows_for(record: CallRecord) -> Iterable[dict[str, Any]]:
    """One `reviews` row per verdict the record's images carry, under the image it travels in."""
    for position, image in enumerate(record.images):
        for review in image.reviews:
            row = _column_values(review, REVIEW_COLUMNS)
            row.update(generation_id=record.id, position=position)
            yield row


def _not_carried(
    worked_out: dict[str, Any], model: BaseModel, keep_carried: bool
) -> dict[str, Any]:
    """The worked-out columns to store: all of them, or with `keep_carried` those the record
    does not give itself (a field it was given, even as null, is one it carries)."""
    if not keep_carried:
        return worked_out
    return {name: value for name, value in worked_out.items() if name not in model.model_fields_set}


def _column_values(model: BaseModel, columns: frozenset[str]) -> dict[str, Any]:
    """The model's fields that are columns, by column name, enums as their plain values."""
    return {
        name: value.value if isinstance(value, Enum) else value
        for name, value in model.__dict__.items()
        if name in columns
    }


def _first_revised_prompt(images: Sequence[ImageRecord]) -> str | None:
    return next((image.revised_prompt for image in images if image.revised_prompt), None)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default

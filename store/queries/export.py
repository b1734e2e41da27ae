"""Stream the calls of a filter back out as `CallRecord`s (the JSONL export shape).

`export` of a million calls must not hold a million rows: calls are read in keyset batches
(the Logs page's order and index) and their images, and the images' review trails, with one
`IN` query each per batch, all on one connection, whose plan hints are probed once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, select

from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    ordered_branches,
    require_positive,
    where,
)
from store.queries.hints import plan_hints
from store.queries.logs import Cursor, merge_ordered, older_than
from store.schema.models import REVIEWS
from store.schema.records import CallRecord, ImageRecord, ReviewRecord

#: The images columns an ImageRecord carries: all but the row's own keys.
_IMAGE_COLUMNS = [column for column in IMAGES.c if column.name in ImageRecord.model_fields]
#: The reviews columns a ReviewRecord carries: all but the row's own id.
_REVIEW_COLUMNS = [column for column in REVIEWS.c if column.name in ReviewRecord.model_fields]


def iter_records(engine: Engine, flt: LogFilter, batch_size: int = 1000) -> Iterator[CallRecord]:
    """Every call matching `flt` with all its images and their reviews, newest first,
    `batch_size` at a time."""
    require_positive(batch_size=batch_size)
    g = GENERATIONS.c
    image_columns = [IMAGES.c.generation_id, IMAGES.c.position, *_IMAGE_COLUMNS]
    with engine.connect() as connection:
        branches = ordered_branches(connection.dialect.name, flt, plan_hints(connection, flt))
        after: Cursor | None = None
        while True:
            seek = [older_than(after)] if after else []
            batch = merge_ordered(
                [
                    select(GENERATIONS)
                    .where(where(conditions), *seek)
                    .order_by(g.created_at.desc(), g.id.desc())
                    .limit(batch_size)
                    for conditions in branches
                ],
                ["created_at", "id"],
                batch_size,
            )
            rows = connection.execute(select(batch)).mappings().all()
            if not rows:
                return
            rows = sorted(rows, key=lambda row: (row["created_at"], row["id"]), reverse=True)
            ids = [row["id"] for row in rows]
            reviews = _reviews_of(connection, ids)
            images: dict[str, list[ImageRecord]] = defaultdict(list)
            found = connection.execute(
                select(*image_columns)
                .where(IMAGES.c.generation_id.in_(ids))
                .order_by(IMAGES.c.generation_id, IMAGES.c.position)
            ).mappings()
            for image in found:
                key = (image["generation_id"], image["position"])
                images[image["generation_id"]].append(
                    ImageRecord.model_validate({**image, "reviews": reviews.get(key, [])})
                )
            for row in rows:
                yield record_from_row(row, images.get(row["id"], []))
            after = Cursor(rows[-1]["created_at"], rows[-1]["id"])


def _reviews_of(
    connection: Connection, ids: list[str]
) -> dict[tuple[str, int], list[ReviewRecord]]:
    """The review trails of the images of calls `ids`, by (call, position), oldest first."""
    trails: dict[tuple[str, int], list[ReviewRecord]] = defaultdict(list)
    found = connection.execute(
        select(*_REVIEW_COLUMNS)
        .where(REVIEWS.c.generation_id.in_(ids))
        .order_by(REVIEWS.c.created_at, REVIEWS.c.id)
    ).mappings()
    for review in found:
        trails[review["generation_id"], review["position"]].append(
            ReviewRecord.model_validate(dict(review))
        )
    return trails


def record_from_row(row: Any, images: list[ImageRecord]) -> CallRecord:
    """The CallRecord a `generations` row was written from (`generation_row`, backwards)."""
    return CallRecord.model_validate({**row, "images": images})

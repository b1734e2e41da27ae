"""Stream the calls of a filter back out as `CallRecord`s (the JSONL export shape).

`export` of a million calls must not hold a million rows: calls are read in keyset batches
(the Logs page's order and index) and their images with one `IN` query per batch, all on one
connection, whose plan hints are probed once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, select

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
from store.schema.records import CallRecord, ImageRecord

#: The images columns an ImageRecord carries: all but the row's own keys.
_IMAGE_COLUMNS = [column for column in IMAGES.c if column.name in ImageRecord.model_fields]


def iter_records(engine: Engine, flt: LogFilter, batch_size: int = 1000) -> Iterator[CallRecord]:
    """Every call matching `flt` with all its images, newest first, `batch_size` at a time."""
    require_positive(batch_size=batch_size)
    g = GENERATIONS.c
    image_columns = [IMAGES.c.generation_id, *_IMAGE_COLUMNS]
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
            images: dict[str, list[ImageRecord]] = defaultdict(list)
            found = connection.execute(
                select(*image_columns)
                .where(IMAGES.c.generation_id.in_([row["id"] for row in rows]))
                .order_by(IMAGES.c.generation_id, IMAGES.c.position)
            ).mappings()
            for image in found:
                images[image["generation_id"]].append(ImageRecord.model_validate(dict(image)))
            for row in rows:
                yield record_from_row(row, images.get(row["id"], []))
            after = Cursor(rows[-1]["created_at"], rows[-1]["id"])


def record_from_row(row: Any, images: list[ImageRecord]) -> CallRecord:
    """The CallRecord a `generations` row was written from (`generation_row`, backwards)."""
    return CallRecord.model_validate({**row, "images": images})

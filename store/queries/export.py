"""Stream the calls of a filter back out as `CallRecord`s (the JSONL export shape).

`export` of a million calls must not hold a million rows: calls are read in keyset batches
(the Logs page's order and index) and their images with one `IN` query per batch.
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
from store.queries.logs import Cursor, merge_ordered, older_than
from store.schema.records import CallRecord, ImageRecord

#: The images columns an ImageRecord carries (the thumbnail is not part of the export format).
_IMAGE_FIELDS = (
    "url",
    "revised_prompt",
    "url_state",
    "expires_at",
    "last_checked_at",
    "sha256",
    "width",
    "height",
    "format",
    "byte_size",
)


def iter_records(engine: Engine, flt: LogFilter, batch_size: int = 1000) -> Iterator[CallRecord]:
    """Every call matching `flt` with all its images, newest first, `batch_size` at a time."""
    require_positive(batch_size=batch_size)
    g = GENERATIONS.c
    image_columns = [IMAGES.c.generation_id, *(IMAGES.c[name] for name in _IMAGE_FIELDS)]
    branches = ordered_branches(engine, flt)
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
        with engine.connect() as connection:
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
                images[image["generation_id"]].append(
                    ImageRecord(**{name: image[name] for name in _IMAGE_FIELDS})
                )
        for row in rows:
            yield record_from_row(row, images.get(row["id"], []))
        after = Cursor(rows[-1]["created_at"], rows[-1]["id"])


def record_from_row(row: Any, images: list[ImageRecord]) -> CallRecord:
    """The CallRecord a `generations` row was written from (`generation_row`, backwards)."""
    return CallRecord(
        id=row["id"],
        created_at=row["created_at"],
        provider=row["provider"],
        model=row["model"],
        operation=row["operation"],
        prompt=row["prompt"],
        revised_prompt=row["revised_prompt"],
        params=row["params_json"] or {},
        status=row["status"],
        error=row["error"],
        http_status=row["http_status"],
        latency_ms=row["latency_ms"],
        cost_usd=row["cost_usd"],
        cost_source=row["cost_source"],
        cost_note=row["cost_note"],
        usage=row["usage_json"],
        request_id=row["request_id"],
        trace_id=row["trace_id"],
        user=row["user_id"],
        metadata=row["metadata_json"] or {},
        request=row["request_json"],
        response=row["response_json"],
        source=row["source"],
        images=images,
    )

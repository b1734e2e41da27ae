"""The images of a view with their current verdict and its last change: `imagelog review list`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from store.queries.filters import GENERATIONS, IMAGES, LogFilter, require_positive
from store.queries.logs import image_ids
from store.schema.models import REVIEWS


@dataclass(frozen=True)
class ImageVerdictRow:
    """One image: its call, where it sits in it, its verdict (None: unreviewed) and the last
    review's reason, note, reviewer and time."""

    created_at: datetime
    generation_id: str
    position: int
    provider: str
    model: str
    verdict: str | None
    reason: str | None
    note: str | None
    reviewer: str | None
    reviewed_at: datetime | None


def list_images(
    engine: Engine, flt: LogFilter, limit: int = 50
) -> tuple[list[ImageVerdictRow], bool]:
    """The newest `limit` images of `flt` (its verdicts and URL states narrow the images too),
    newest call first, then by position; and whether more match."""
    require_positive(limit=limit)
    ids = image_ids(engine, flt, limit=limit + 1)
    i, g, r = IMAGES.c, GENERATIONS.c, REVIEWS.c
    with engine.connect() as connection:
        images = connection.execute(
            select(g.created_at, i.generation_id, i.position, g.provider, g.model, i.verdict)
            .select_from(IMAGES.join(GENERATIONS, g.id == i.generation_id))
            .where(i.id.in_(ids[:limit]))
        ).all()
        reviews = connection.execute(
            select(
                r.generation_id, r.position, r.reason, r.note, r.reviewer, r.created_at, r.id
            ).where(r.generation_id.in_({image.generation_id for image in images}))
        ).all()
    # Their calls' trails, oldest first (a few rows): the last per image is its last change.
    in_order = sorted(reviews, key=lambda review: (review.created_at, review.id))
    last = {(review.generation_id, review.position): review for review in in_order}
    rows = [
        ImageVerdictRow(
            *image,
            reason=review.reason if review else None,
            note=review.note if review else None,
            reviewer=review.reviewer if review else None,
            reviewed_at=review.created_at if review else None,
        )
        for image in images
        for review in [last.get((image.generation_id, image.position))]
    ]
    rows.sort(key=lambda row: (row.created_at, row.generation_id, -row.position), reverse=True)
    return rows, len(ids) > limit

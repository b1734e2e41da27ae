"""The Review page's walk: the images of a view that no one has judged yet, one at a time.

The walk follows the Gallery's order (newest call first, then by position), so the next image
is the first of a one-image Gallery page of the view's unreviewed images after the current
one: the same index reads as the Gallery's (`images.verdict` IS NULL is a range of the
(verdict, generation_id) index). An image skipped stays unreviewed; the walk goes on past it.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Engine, func, select

from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    generation_conditions,
    image_conditions,
    require_positive,
    where,
)
from store.queries.hints import plan_hints
from store.queries.logs import Cursor, list_gallery
from store.schema.enums import UNREVIEWED


def unreviewed(flt: LogFilter) -> LogFilter:
    """`flt`'s images that have no verdict (whatever verdicts `flt` itself names)."""
    return replace(flt, verdicts=(UNREVIEWED,))


def next_unreviewed(engine: Engine, flt: LogFilter, after: Cursor | None = None) -> Cursor | None:
    """Where the next unreviewed image of `flt` after `after` (None: from the newest) is:
    its call's (created_at, id) and its position. None when the walk is at its end."""
    rows = list_gallery(engine, unreviewed(flt), limit=1, after=after).rows
    if rows.empty:
        return None
    first = rows.iloc[0]
    return Cursor(
        first["created_at"].to_pydatetime(), first["generation_id"], int(first["position"])
    )


def count_unreviewed(engine: Engine, flt: LogFilter, cap: int = 10_000) -> tuple[int, bool]:
    """How many images of `flt` have no verdict, counting at most `cap` (True: there are more),
    as `count_logs` counts calls."""
    require_positive(cap=cap)
    flt = unreviewed(flt)
    with engine.connect() as connection:
        hints = plan_hints(connection, flt, ordered=False)
        calls = generation_conditions(connection.dialect.name, flt, hints, image_filters=False)
        images = select(IMAGES.c.id).where(*image_conditions(flt))
        if calls:
            images = images.join_from(
                IMAGES, GENERATIONS, IMAGES.c.generation_id == GENERATIONS.c.id
            ).where(where(calls))
        capped = images.limit(cap + 1).subquery()
        found = connection.execute(select(func.count()).select_from(capped)).scalar_one()
    return min(found, cap), found > cap

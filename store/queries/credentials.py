"""How many images of a view read each content-credentials state (the Analytics page's count).

One grouped count over the (c2pa_state, generation_id) index, joined to the view's calls only
when the view narrows them; an image whose bytes were never read counts under `UNREAD`.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    generation_conditions,
    image_conditions,
    where,
)
from store.queries.hints import plan_hints
from store.schema.enums import UNREAD


def credential_counts(engine: Engine, flt: LogFilter) -> dict[str, int]:
    """Images of `flt`'s calls per credentials state (trusted, valid, invalid, none, unread);
    states no image is in are absent."""
    i = IMAGES.c
    with engine.connect() as connection:
        hints = plan_hints(connection, flt, ordered=False)
        call_conditions = generation_conditions(
            connection.dialect.name, flt, hints, image_filters=False
        )
        counts = select(i.c2pa_state, func.count()).group_by(i.c2pa_state)
        if call_conditions:
            counts = counts.join_from(
                IMAGES, GENERATIONS, i.generation_id == GENERATIONS.c.id
            ).where(where(call_conditions))
        counts = counts.where(where(image_conditions(flt)))
        return {state or UNREAD: count for state, count in connection.execute(counts).all()}

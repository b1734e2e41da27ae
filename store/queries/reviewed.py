"""The Analytics page's review figures: per model, how many images were judged and how.

A separate read from `analytics.overview` (whose figures will come from rollup tables): it
starts from the reviewed images alone, a range of the (verdict, generation_id) index, so its
cost follows the number of verdicts given, not the size of the log.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, Integer, cast, func, select

from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    filter_only,
    generation_conditions,
    image_conditions,
    where,
)
from store.queries.hints import plan_hints
from store.schema.enums import Verdict

VERDICT_COLUMNS = [verdict.value for verdict in Verdict]
COLUMNS = ["provider", "model", "reviewed", *VERDICT_COLUMNS, "flagged_share"]


def flagged_share_by_model(engine: Engine, flt: LogFilter) -> pd.DataFrame:
    """Per (provider, model) of `flt`'s reviewed images: how many were reviewed, how many got
    each verdict, and `flagged_share`, the flagged part of the reviewed ones. Most flagged
    share first; models without a reviewed image are absent."""
    g, i = GENERATIONS.c, IMAGES.c
    with engine.connect() as connection:
        dialect = connection.dialect.name
        hints = plan_hints(connection, flt, ordered=False)
        calls = generation_conditions(dialect, flt, hints, image_filters=False)
        query = (
            select(
                g.provider,
                g.model,
                func.count().label("reviewed"),
                *[
                    func.sum(cast(i.verdict == verdict, Integer)).label(verdict)
                    for verdict in VERDICT_COLUMNS
                ],
            )
            # The reviewed images drive the join (each call found by its key), never a walk
            # of every call, which SQLite would choose for the GROUP BY's order.
            .select_from(IMAGES.join(GENERATIONS, g.id == filter_only(dialect, i.generation_id)))
            .where(i.verdict.is_not(None), *image_conditions(flt), where(calls))
            .group_by(g.provider, g.model)
        )
        frame = pd.DataFrame(connection.execute(query).mappings().all(), columns=COLUMNS[:-1])
    frame = frame.astype({name: "int64" for name in ["reviewed", *VERDICT_COLUMNS]})
    frame["flagged_share"] = (frame[Verdict.flagged.value] / frame["reviewed"]).astype("float64")
    order = frame.sort_values(
        ["flagged_share", "reviewed", "provider", "model"], ascending=[False, False, True, True]
    )
    return order.reset_index(drop=True)[COLUMNS]

"""The Analytics page's figures: totals, per-provider latency percentiles, activity over time.

Every figure is an SQL aggregate (DESIGN.md: never load the table into pandas); pandas only
holds the few result rows. PostgreSQL has percentile_cont; SQLite has no percentile aggregate,
so there the same interpolated percentile is computed with window functions (rank of each
latency within its group, then the two neighbouring ranks of p * (n - 1)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from sqlalchemy import Engine, Float, Integer, case, cast, func, literal_column, select

from store.models import Status, UrlState
from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    generation_conditions,
    image_conditions,
    require_positive,
    where,
)

GroupBy = Sequence[str] | Literal["provider", "model"]
_GROUPABLE = ("provider", "model", "operation", "status", "user_id")
PERCENTILES = {"p50_latency_ms": 0.5, "p95_latency_ms": 0.95}


@dataclass(frozen=True)
class Summary:
    """Totals for the current filters. Shares are of images with a hosted URL (not b64)."""

    calls: int
    errors: int
    images: int
    cost_usd: float
    error_rate: float
    expired_share: float
    unknown_share: float


def summary(engine: Engine, flt: LogFilter) -> Summary:
    """Calls, errors, images, cost and the share of expired / unknown URLs for `flt`."""
    g = GENERATIONS.c
    conditions = generation_conditions(engine, flt, ordered=False)
    call_conditions = generation_conditions(engine, flt, url_states=False, ordered=False)
    totals = select(
        func.count(),
        func.coalesce(func.sum(cast(g.status == Status.error.value, Integer)), 0),
        func.coalesce(func.sum(g.image_count), 0),
        func.coalesce(func.sum(g.cost_usd), 0.0),
    ).where(where(conditions))
    states = select(IMAGES.c.url_state, func.count()).group_by(IMAGES.c.url_state)
    if call_conditions:
        states = states.join_from(IMAGES, GENERATIONS, IMAGES.c.generation_id == g.id).where(
            where(call_conditions)
        )
    states = states.where(where(image_conditions(flt)))
    with engine.connect() as connection:
        calls, errors, images, cost = connection.execute(totals).one()
        by_state = dict(connection.execute(states).all())
    hosted = sum(count for state, count in by_state.items() if state != UrlState.none.value)
    return Summary(
        calls=calls,
        errors=errors,
        images=images,
        cost_usd=float(cost),
        error_rate=errors / calls if calls else 0.0,
        expired_share=by_state.get(UrlState.expired.value, 0) / hosted if hosted else 0.0,
        unknown_share=by_state.get(UrlState.unknown.value, 0) / hosted if hosted else 0.0,
    )


def provider_summary(engine: Engine, flt: LogFilter, by: GroupBy = ("provider",)) -> pd.DataFrame:
    """Per group: calls, errors, images, cost_usd, p50_latency_ms, p95_latency_ms.

    `by` is a tuple of columns, or "provider" / "model" (model means provider and model: one
    model name can be served by several providers). Busiest group first.
    """
    keys = _group_columns(by)
    g = GENERATIONS.c
    group = [g[key] for key in keys]
    conditions = where(generation_conditions(engine, flt, ordered=False))
    counts = (
        select(
            *group,
            func.count().label("calls"),
            func.sum(cast(g.status == Status.error.value, Integer)).label("errors"),
            func.sum(g.image_count).label("images"),
            func.coalesce(func.sum(g.cost_usd), 0.0).label("cost_usd"),
        )
        .where(conditions)
        .group_by(*group)
    )
    if engine.dialect.name == "postgresql":
        percentiles = (
            select(
                *group,
                *[
                    func.percentile_cont(p).within_group(g.latency_ms).label(name)
                    for name, p in PERCENTILES.items()
                ],
            )
            .where(conditions)
            .group_by(*group)
        )
    else:
        percentiles = _window_percentiles(keys, conditions)
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(counts).mappings().all())
        latencies = pd.DataFrame(connection.execute(percentiles).mappings().all())
    columns = [*keys, "calls", "errors", "images", "cost_usd", *PERCENTILES]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    if latencies.empty:
        latencies = pd.DataFrame(columns=[*keys, *PERCENTILES])
    merged = frame.merge(latencies, on=keys, how="left")[columns]
    return merged.sort_values(["calls", *keys], ascending=[False] + [True] * len(keys)).reset_index(
        drop=True
    )


def _window_percentiles(keys: Sequence[str], conditions) -> object:
    """percentile_cont for SQLite, in SQL: interpolate between ranks floor(p*(n-1)) and +1."""
    g = GENERATIONS.c
    group = [g[key] for key in keys]
    ranked = (
        select(
            *group,
            g.latency_ms,
            (func.row_number().over(partition_by=group, order_by=g.latency_ms) - 1).label(
                "latency_rank"
            ),
            func.count().over(partition_by=group).label("n"),
        )
        .where(conditions, g.latency_ms.is_not(None))
        .subquery()
    )
    outputs = []
    for name, p in PERCENTILES.items():
        position = p * (ranked.c.n - 1)
        lower = cast(position, Integer)  # positions are >= 0: truncation is floor
        fraction = position - lower
        low_value = func.max(case((ranked.c.latency_rank == lower, ranked.c.latency_ms)))
        high_value = func.max(case((ranked.c.latency_rank == lower + 1, ranked.c.latency_ms)))
        outputs.append(
            cast(
                low_value + fraction * func.coalesce(high_value - low_value, 0.0),
                Float,
            ).label(name)
        )
    return select(*[ranked.c[key] for key in keys], *outputs).group_by(
        *[ranked.c[key] for key in keys]
    )


def _group_columns(by: GroupBy) -> list[str]:
    if by == "provider":
        return ["provider"]
    if by == "model":
        return ["provider", "model"]
    keys = list(by)
    unknown = [key for key in keys if key not in _GROUPABLE]
    if unknown or not keys:
        raise ValueError(f"cannot group by {unknown or keys}; choose from {_GROUPABLE}")
    return keys


def activity(
    engine: Engine, flt: LogFilter, bucket: Literal["hour", "day"] = "hour"
) -> pd.DataFrame:
    """Calls, errors, cost_usd and images per hour or day (UTC), oldest bucket first.

    Buckets without calls are absent (a chart's time axis shows the gap).
    """
    if bucket not in ("hour", "day"):
        raise ValueError(f"bucket must be 'hour' or 'day', not {bucket!r}")
    g = GENERATIONS.c
    if engine.dialect.name == "postgresql":
        start = func.date_trunc(bucket, literal_column("generations.created_at AT TIME ZONE 'UTC'"))
    else:
        pattern = "%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00"
        start = func.strftime(pattern, g.created_at)
    start = start.label("bucket")
    query = (
        select(
            start,
            func.count().label("calls"),
            func.sum(cast(g.status == Status.error.value, Integer)).label("errors"),
            func.coalesce(func.sum(g.cost_usd), 0.0).label("cost_usd"),
            func.sum(g.image_count).label("images"),
        )
        .where(where(generation_conditions(engine, flt, ordered=False)))
        .group_by(start)
        .order_by(start)
    )
    columns = ["bucket", "calls", "errors", "cost_usd", "images"]
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).mappings().all(), columns=columns)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def top_models(engine: Engine, flt: LogFilter, limit: int = 10) -> pd.DataFrame:
    """The `limit` busiest (provider, model) pairs: calls, images, cost_usd."""
    require_positive(limit=limit)
    g = GENERATIONS.c
    calls = func.count().label("calls")
    query = (
        select(
            g.provider,
            g.model,
            calls,
            func.sum(g.image_count).label("images"),
            func.coalesce(func.sum(g.cost_usd), 0.0).label("cost_usd"),
        )
        .where(where(generation_conditions(engine, flt, ordered=False)))
        .group_by(g.provider, g.model)
        .order_by(calls.desc(), g.provider, g.model)
        .limit(limit)
    )
    columns = ["provider", "model", "calls", "images", "cost_usd"]
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all(), columns=columns)

"""The Analytics page's figures: totals, per-provider latency percentiles, activity over time.

Every figure is exact and an SQL aggregate (DESIGN.md: never load the table into pandas);
pandas only holds the few result rows. At a million calls, reading the matching index
entries costs about a quarter of a second, so the page reads them once (`overview`): one pass
groups the calls by provider, model and UTC hour from revision 0004's index, which holds them
in that order (no sort), and every total, per-provider and per-model table, time chart and top
model is a sum of those few thousand rows.

Percentiles are percentile_cont's (interpolated between the ranks around p * (n - 1)). 0004's
(provider, model, latency_ms, ...) and (provider, latency_ms, ...) indexes hold each group's
latencies in order, so the k-th one is `ORDER BY latency_ms LIMIT 2 OFFSET k` on the group:
an index range stepped through from its nearer end, never a sort. Filters the index cannot
check (a user, a tag; on PostgreSQL also a prompt search or a URL state) would fetch a table
row per step, so those views sort their matches instead (percentile_cont on PostgreSQL,
window functions on SQLite), as do groupings other than provider / model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    Integer,
    Select,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    union_all,
)

from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    PlanHints,
    generation_conditions,
    image_conditions,
    require_positive,
    where,
)
from store.queries.hints import plan_hints
from store.schema.models import HOUR_EXPRESSIONS, Status, UrlState

GroupBy = Sequence[str] | Literal["provider", "model"]
Bucket = Literal["hour", "day"]
BUCKETS: tuple[Bucket, ...] = ("hour", "day")
_GROUPABLE = ("provider", "model", "operation", "status", "user_id")
PERCENTILES = {"p50_latency_ms": 0.5, "p95_latency_ms": 0.95}
_TOTALS = ["calls", "errors", "images", "cost_usd"]
#: Totals plus `timed`, the calls with a latency: the n of each group's percentiles.
_SUMS = [*_TOTALS, "timed"]
_ACTIVITY = ["bucket", "calls", "errors", "cost_usd", "images"]
_TOP = ["provider", "model", "calls", "images", "cost_usd"]


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


@dataclass(frozen=True)
class Overview:
    """Every figure of the Analytics page for one view, read in one snapshot of the log.

    `providers` and `models` are `provider_summary` by "provider" and by "model"; `activity`
    holds calls, errors, cost_usd and images per `bucket` (UTC), oldest first; buckets without
    calls are absent (a chart's time axis shows the gap).
    """

    summary: Summary
    providers: pd.DataFrame
    models: pd.DataFrame
    activity: pd.DataFrame

    def top_models(self, limit: int = 10) -> pd.DataFrame:
        """The `limit` busiest (provider, model) pairs: calls, images, cost_usd."""
        require_positive(limit=limit)
        return _top_of(self.models, limit)


def overview(engine: Engine, flt: LogFilter, bucket: Bucket = "day") -> Overview:
    """The Analytics page's figures for `flt`: one grouped pass, URL states, percentile walks."""
    _check_bucket(bucket)
    with _snapshot(engine) as connection:
        hints = plan_hints(connection, flt, ordered=False)
        totals = _bucketed_totals(connection, flt, hints, bucket)
        states = _url_state_counts(connection, flt, hints)
        providers = _with_percentiles(connection, flt, hints, totals, ["provider"])
        models = _with_percentiles(connection, flt, hints, totals, ["provider", "model"])
    return Overview(
        summary=_summary_of(totals, states),
        providers=providers,
        models=models,
        activity=_activity_of(totals),
    )


def provider_summary(engine: Engine, flt: LogFilter, by: GroupBy = ("provider",)) -> pd.DataFrame:
    """Per group: calls, errors, images, cost_usd, p50_latency_ms, p95_latency_ms.

    `by` is a tuple of columns, or "provider" / "model" (model means provider and model: one
    model name can be served by several providers). Busiest group first.
    """
    keys = _group_columns(by)
    with _snapshot(engine) as connection:
        hints = plan_hints(connection, flt, ordered=False)
        if set(keys) <= {"provider", "model"}:
            totals = _bucketed_totals(connection, flt, hints, "day")
            return _with_percentiles(connection, flt, hints, totals, keys)
        return _sorted_percentiles(connection, flt, hints, keys)


# --- the grouped pass ---------------------------------------------------------------------------


def _snapshot(engine: Engine) -> Connection:
    """A connection whose statements all see one state of the log on PostgreSQL (a call
    recorded between the grouped pass and a percentile walk would shift its rank by one).
    SQLite's reads are quick enough that the page is stale by the cache's TTL anyway."""
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


def _bucketed_totals(
    connection: Connection, flt: LogFilter, hints: PlanHints, bucket: Bucket
) -> pd.DataFrame:
    """Per (provider, model, bucket) of the matching calls: the totals and `timed`.

    The inner query groups by 0004's hour expression in the index's own order; the outer one
    turns a few thousand hours into buckets (a day on SQLite is the hour text's date).
    """
    g = GENERATIONS.c
    dialect = connection.dialect.name
    hour: ColumnElement[Any] = literal_column(_qualified(HOUR_EXPRESSIONS[dialect]))
    hourly = (
        select(
            g.provider,
            g.model,
            hour.label("hour"),
            func.count().label("calls"),
            func.sum(cast(g.status == Status.error.value, Integer)).label("errors"),
            func.sum(g.image_count).label("images"),
            func.coalesce(func.sum(g.cost_usd), 0.0).label("cost_usd"),
            func.count(g.latency_ms).label("timed"),
        )
        .where(where(generation_conditions(dialect, flt, hints)))
        .group_by(g.provider, g.model, hour)
        .subquery("hourly")
    )
    start: ColumnElement[Any]
    if dialect == "postgresql":
        start = func.date_trunc(bucket, hourly.c.hour) if bucket == "day" else hourly.c.hour
    elif bucket == "day":
        start = func.substr(hourly.c.hour, 1, 10).concat(" 00:00:00")
    else:
        start = hourly.c.hour.concat(":00:00")
    query = select(
        hourly.c.provider,
        hourly.c.model,
        start.label("bucket"),
        *[func.sum(hourly.c[name]).label(name) for name in _SUMS],
    ).group_by(hourly.c.provider, hourly.c.model, start)
    frame = pd.DataFrame(
        connection.execute(query).mappings().all(),
        columns=["provider", "model", "bucket", *_SUMS],
    )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame.astype({name: "int64" for name in _SUMS if name != "cost_usd"}).astype(
        {"cost_usd": "float64"}
    )


def _qualified(expression: str) -> str:
    """An index expression with its column qualified, unambiguous beside `images`."""
    return expression.replace("created_at", "generations.created_at")


def _check_bucket(bucket: str) -> None:
    if bucket not in ("hour", "day"):
        raise ValueError(f"bucket must be 'hour' or 'day', not {bucket!r}")


def _grouped(totals: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The pass's rows summed per `keys` (provider, or provider and model)."""
    return totals.groupby(keys, as_index=False, sort=True)[_SUMS].sum()


def _summary_of(totals: pd.DataFrame, by_state: dict[str, int]) -> Summary:
    calls, errors, images = (int(totals[name].sum()) for name in ("calls", "errors", "images"))
    hosted = sum(count for state, count in by_state.items() if state != UrlState.none.value)
    return Summary(
        calls=calls,
        errors=errors,
        images=images,
        cost_usd=float(totals["cost_usd"].sum()),
        error_rate=errors / calls if calls else 0.0,
        expired_share=by_state.get(UrlState.expired.value, 0) / hosted if hosted else 0.0,
        unknown_share=by_state.get(UrlState.unknown.value, 0) / hosted if hosted else 0.0,
    )


def _activity_of(totals: pd.DataFrame) -> pd.DataFrame:
    per_bucket = totals.groupby("bucket", as_index=False, sort=True)[_TOTALS].sum()
    return per_bucket[_ACTIVITY].reset_index(drop=True)


def _top_of(models: pd.DataFrame, limit: int) -> pd.DataFrame:
    busiest = models.sort_values(["calls", "provider", "model"], ascending=[False, True, True])
    return busiest[_TOP].head(limit).reset_index(drop=True)


def _url_state_counts(connection: Connection, flt: LogFilter, hints: PlanHints) -> dict[str, int]:
    """Images of the matching calls per URL state (only those that meet `flt`'s URL states
    and verdicts, if any)."""
    g = GENERATIONS.c
    call_conditions = generation_conditions(
        connection.dialect.name, flt, hints, image_filters=False
    )
    states = select(IMAGES.c.url_state, func.count()).group_by(IMAGES.c.url_state)
    if call_conditions:
        states = states.join_from(IMAGES, GENERATIONS, IMAGES.c.generation_id == g.id).where(
            where(call_conditions)
        )
    states = states.where(where(image_conditions(flt)))
    return dict(connection.execute(states).all())


# --- percentiles --------------------------------------------------------------------------------


def _with_percentiles(
    connection: Connection,
    flt: LogFilter,
    hints: PlanHints,
    totals: pd.DataFrame,
    keys: list[str],
) -> pd.DataFrame:
    """`totals` summed per `keys`, with p50/p95 latency; busiest group first."""
    columns = [*keys, *_TOTALS, *PERCENTILES]
    grouped = _grouped(totals, keys)
    if grouped.empty:
        return pd.DataFrame(columns=columns)
    if _walkable(connection.dialect.name, flt):
        latencies = _walked_percentiles(connection, flt, hints, grouped, keys)
    else:
        latencies = _sorted_latencies(connection, flt, hints, keys)
    merged = grouped.merge(latencies, on=keys, how="left")[columns]
    return _busiest_first(merged, keys)


def _busiest_first(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    order = frame.sort_values(["calls", *keys], ascending=[False] + [True] * len(keys))
    return order.reset_index(drop=True)


def _walkable(dialect: str, flt: LogFilter) -> bool:
    """Whether a walk along 0004's latency indexes can test `flt` cheaply at each step: their
    own columns always; on SQLite also the prompt search (a rowid, which every index entry
    holds) and the URL-state probe (an index seek per step, still faster there than sorting
    the matches). PostgreSQL's index entries lack the call's id those two need, and fetching
    the row per step is slower than its percentile_cont over the matches (measured at a
    million calls: 9.7 s against 4.1 s for url_state=expired)."""
    if flt.user or flt.tag:
        return False
    return dialect == "sqlite" or not (flt.search or flt.url_states)


def _walked_percentiles(
    connection: Connection,
    flt: LogFilter,
    hints: PlanHints,
    grouped: pd.DataFrame,
    keys: list[str],
) -> pd.DataFrame:
    """Each group's percentiles from the one or two latencies around rank p * (n - 1).

    One statement: a UNION ALL of one `LIMIT 2 OFFSET k` walk per (group, percentile), each
    from the end of the group's index range nearer to rank k (p95 is walked from the top).
    """
    g = GENERATIONS.c
    conditions = [
        *generation_conditions(connection.dialect.name, flt, hints),
        g.latency_ms.is_not(None),
    ]
    walks: list[Select] = []
    plans: list[tuple[int, str, float]] = []  # (group row, percentile column, fraction)
    for row, group in enumerate(grouped.to_dict("records")):
        n = int(group["timed"])
        if n == 0:
            continue
        scope = [g[key] == group[key] for key in keys]
        for name, p in PERCENTILES.items():
            position = p * (n - 1)
            lower = int(position)  # positions are >= 0: truncation is floor
            upper = min(lower + 1, n - 1)
            from_bottom = lower <= n - 1 - upper
            walk = (
                select(g.latency_ms)
                .where(*conditions, *scope)
                .order_by(g.latency_ms if from_bottom else g.latency_ms.desc())
                .limit(upper - lower + 1)
                .offset(lower if from_bottom else n - 1 - upper)
                .subquery()
            )
            # The walk's one or two rows, smallest and largest, whichever end it came from.
            walks.append(
                select(
                    literal(len(plans)).label("walk"),
                    func.min(walk.c.latency_ms).label("low"),
                    func.max(walk.c.latency_ms).label("high"),
                )
            )
            plans.append((row, name, position - lower))
    values = pd.DataFrame(index=grouped.index, columns=list(PERCENTILES), dtype="float64")
    if walks:
        for walk, low, high in connection.execute(union_all(*walks)).all():
            row, name, fraction = plans[walk]
            if low is not None:  # a call deleted since the pass: no value rather than a wrong one
                values.loc[row, name] = low + fraction * (high - low)
    return pd.concat([grouped[keys], values], axis=1)


def _sorted_percentiles(
    connection: Connection, flt: LogFilter, hints: PlanHints, keys: list[str]
) -> pd.DataFrame:
    """provider_summary for groupings 0004's indexes do not order: one grouped aggregate."""
    g = GENERATIONS.c
    group = [g[key] for key in keys]
    counts = (
        select(
            *group,
            func.count().label("calls"),
            func.sum(cast(g.status == Status.error.value, Integer)).label("errors"),
            func.sum(g.image_count).label("images"),
            func.coalesce(func.sum(g.cost_usd), 0.0).label("cost_usd"),
        )
        .where(where(generation_conditions(connection.dialect.name, flt, hints)))
        .group_by(*group)
    )
    frame = pd.DataFrame(connection.execute(counts).mappings().all())
    columns = [*keys, *_TOTALS, *PERCENTILES]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    latencies = _sorted_latencies(connection, flt, hints, keys)
    return _busiest_first(frame.merge(latencies, on=keys, how="left")[columns], keys)


def _sorted_latencies(
    connection: Connection, flt: LogFilter, hints: PlanHints, keys: Sequence[str]
) -> pd.DataFrame:
    """Per group of `keys`, p50/p95 latency by sorting the matching calls' latencies."""
    g = GENERATIONS.c
    group = [g[key] for key in keys]
    dialect = connection.dialect.name
    conditions = where(generation_conditions(dialect, flt, hints))
    if dialect == "postgresql":
        query = (
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
        query = _window_percentiles(keys, conditions)
    found = pd.DataFrame(connection.execute(query).mappings().all())
    return found if not found.empty else pd.DataFrame(columns=[*keys, *PERCENTILES])


def _window_percentiles(keys: Sequence[str], conditions) -> Select:
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

"""The Analytics page's figures: totals, cost and errors, activity over time, latency p50/p95.

Every figure is an SQL aggregate (DESIGN.md: never load the table into pandas) of rollup-
shaped rows (store/schema/rollups.py): per UTC hour, provider, model, status, set of URL
states and HTTP status, the calls, images, cost, unpriced calls and images per URL state; per
UTC day and the same dimensions, the calls per latency bucket. A view whose filters are all
in those dimensions (provider, model, status, URL state, dates) reads them from
`call_rollups` and `latency_rollups`, whose size is bounded by the dimensions however many
calls; the hours (days) a date filter cuts are worked out from their calls by the same
definition. Any other
filter (prompt search, user, tag, cost, verdict) works the same rows out from the matching
calls (`rollup_rows` over `generations`), so every view's figures mean the same.

Latency p50/p95 are read from the histogram the latency buckets make (~5% wide): each
percentile interpolates, as percentile_cont does, between the ranks around p * (n - 1), each
rank's latency being its bucket's geometric middle, within ~2.5% of the exact one
(`PERCENTILE_NOTE`; the page says so). Groupings outside the rollups (`provider_summary` by
user, operation, ...) sort the matching calls' latencies for exact ones.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any, Literal

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    Integer,
    Select,
    Subquery,
    Table,
    case,
    cast,
    false,
    func,
    select,
    union_all,
)

from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    PlanHints,
    generation_conditions,
    has_word,
    image_conditions,
    require_positive,
    where,
)
from store.queries.hints import plan_hints
from store.schema.models import CALL_ROLLUPS, LATENCY_ROLLUPS, Status, UrlState, utcnow
from store.schema.rollups import (
    KEYS,
    LATENCY_KEYS,
    NO_HTTP_STATUS,
    RATIO,
    STATE_BITS,
    STATE_COLUMNS,
    SUMS,
    bucket_value,
    latency_rows,
    rollup_rows,
)

GroupBy = Sequence[str] | Literal["provider", "model"]
Bucket = Literal["hour", "day"]
BUCKETS: tuple[Bucket, ...] = ("hour", "day")
BUCKET_WIDTHS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
_GROUPABLE = ("provider", "model", "operation", "status", "user_id")
PERCENTILES = {"p50_latency_ms": 0.5, "p95_latency_ms": 0.95}
#: What the page says of its percentiles.
PERCENTILE_NOTE = (
    f"p50/p95 are read from a latency histogram of {round((RATIO - 1) * 100)}% buckets: "
    f"within about {round((math.sqrt(RATIO) - 1) * 100, 1)}% of the exact values."
)
_TOTALS = ["calls", "errors", "images", "cost_usd", "unpriced"]
#: Totals plus `timed` (calls with a latency) and the images per URL state.
_SUMS = [*_TOTALS, "timed", *STATE_COLUMNS.values()]
_ACTIVITY = ["bucket", "calls", "errors", "cost_usd", "unpriced", "images", "partial"]
_TOP = ["provider", "model", "calls", "images", "cost_usd", "unpriced"]
_COST = ["provider", "model", "cost_usd", "unpriced", "calls"]


@dataclass(frozen=True)
class Summary:
    """Totals for the current filters. Shares are of images with a hosted URL (not b64).
    `unpriced`: calls without a price, which `cost_usd` leaves out."""

    calls: int
    errors: int
    images: int
    cost_usd: float
    unpriced: int
    error_rate: float
    expired_share: float
    unknown_share: float


@dataclass(frozen=True)
class Overview:
    """Every figure of the Analytics page for one view, read in one snapshot of the log.

    `providers` and `models` are `provider_summary` by "provider" and by "model"; `activity`
    holds calls, errors, cost_usd, unpriced and images per `bucket` (UTC), oldest first, and
    `partial` marks a bucket the view does not cover whole (it ends before the bucket does:
    now, or the view's end), whose figures are so far only; buckets without calls are absent.
    `errors` counts the failed calls per provider and HTTP status (`error_type` names it).
    `from_rollups`: the view was read from the rollups (its filters are all in their
    dimensions) rather than worked out from the matching calls.
    """

    summary: Summary
    providers: pd.DataFrame
    models: pd.DataFrame
    activity: pd.DataFrame
    errors: pd.DataFrame
    from_rollups: bool

    def top_models(self, limit: int = 10) -> pd.DataFrame:
        """The `limit` busiest (provider, model) pairs: calls, images, cost_usd, unpriced."""
        require_positive(limit=limit)
        return _top_of(self.models, limit)

    def cost_by_model(self) -> pd.DataFrame:
        """Cost per (provider, model), dearest first, with the calls that had no price."""
        dearest = self.models.sort_values(
            ["cost_usd", "provider", "model"], ascending=[False, True, True]
        )
        return dearest[_COST].reset_index(drop=True)


def overview(
    engine: Engine, flt: LogFilter, bucket: Bucket = "day", *, now: datetime | None = None
) -> Overview:
    """The Analytics page's figures for `flt`, per `bucket` over time (`now`: the clock the
    last bucket is partial by; default the real one)."""
    _check_bucket(bucket)
    with _snapshot(engine) as connection:
        rows = _rows(connection, flt)
        totals = _bucketed_totals(connection, rows, bucket)
        histogram = _histogram(connection, flt)
        errors = _errors(connection, rows)
        states = (
            _url_state_counts(connection, flt)
            if flt.asks_images
            else _state_sums(totals, flt.url_states)
        )
    return Overview(
        summary=_summary_of(totals, states),
        providers=_with_percentiles(totals, histogram, ["provider"]),
        models=_with_percentiles(totals, histogram, ["provider", "model"]),
        activity=_activity_of(totals, bucket, _view_end(flt, now)),
        errors=errors,
        from_rollups=answered_by_rollups(flt),
    )


def provider_summary(engine: Engine, flt: LogFilter, by: GroupBy = ("provider",)) -> pd.DataFrame:
    """Per group: calls, errors, images, cost_usd, unpriced, p50_latency_ms, p95_latency_ms.

    `by` is a tuple of columns, or "provider" / "model" (model means provider and model: one
    model name can be served by several providers). Busiest group first. By provider and
    model the figures are the Analytics page's; other groupings are worked out from the calls.
    """
    keys = _group_columns(by)
    with _snapshot(engine) as connection:
        if set(keys) <= {"provider", "model"}:
            rows = _rows(connection, flt)
            totals = _bucketed_totals(connection, rows, "day")
            return _with_percentiles(totals, _histogram(connection, flt), keys)
        hints = plan_hints(connection, flt, ordered=False)
        return _sorted_percentiles(connection, flt, hints, keys)


def answered_by_rollups(flt: LogFilter) -> bool:
    """Whether every filter of `flt` is a dimension of the rollups (dates are, to the hour:
    the hours a date cuts are worked out from their calls)."""
    return not (
        flt.min_cost is not None
        or flt.max_cost is not None
        or flt.user
        or flt.tag
        or flt.asks_images
        or (flt.search and has_word(flt.search))
    )


# --- the rollup-shaped rows of a view -------------------------------------------------------------


def _snapshot(engine: Engine) -> Connection:
    """A connection whose statements all see one state of the log on PostgreSQL (a call
    recorded between two of the page's statements would otherwise count in one figure and
    not in another). SQLite's reads are quick enough that the page is stale by the cache's
    TTL anyway."""
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


def _rows(connection: Connection, flt: LogFilter) -> Subquery:
    """The view's `call_rollups`-shaped rows (`_view_rows` by the hour)."""
    return _view_rows(connection, flt, CALL_ROLLUPS, (*KEYS, *SUMS), "hour", rollup_rows)


def _latency_rows(connection: Connection, flt: LogFilter) -> Subquery:
    """The view's `latency_rollups`-shaped rows (`_view_rows` by the day)."""
    columns = (*LATENCY_KEYS, "calls")
    return _view_rows(connection, flt, LATENCY_ROLLUPS, columns, "day", latency_rows)


def _view_rows(
    connection: Connection,
    flt: LogFilter,
    table: Table,
    columns: Sequence[str],
    unit: Literal["hour", "day"],
    from_calls: Callable[..., Select],
) -> Subquery:
    """The view's rollup-shaped rows: from `table` for the whole hours (days) of a view its
    dimensions describe, from the calls through `from_calls` for the rest (the hours a date
    cuts, or everything when another filter is set)."""
    dialect = connection.dialect.name

    def calls(view: LogFilter, hints: PlanHints) -> Select:
        return from_calls(dialect, *generation_conditions(dialect, view, hints), ordered=False)

    if not answered_by_rollups(flt):
        return calls(flt, plan_hints(connection, flt, ordered=False)).subquery("view_rows")
    start = _ceiling(flt.since, unit) if flt.since else None
    end = _floor(flt.until, unit) if flt.until else None
    if start is not None and end is not None and start >= end:  # within one or two units
        return calls(flt, PlanHints()).subquery("view_rows")
    parts = [_from_table(table, columns, unit, flt, start, end)]
    if flt.since is not None and start is not None and flt.since < start:
        parts.append(calls(replace(flt, until=start), PlanHints()))
    if flt.until is not None and end is not None and end < flt.until:
        parts.append(calls(replace(flt, since=end), PlanHints()))
    if len(parts) == 1:
        return parts[0].subquery("view_rows")
    return union_all(*parts).subquery("view_rows")


def _from_table(
    table: Table,
    columns: Sequence[str],
    unit: str,
    flt: LogFilter,
    start: datetime | None,
    end: datetime | None,
) -> Select:
    r = table.c
    conditions: list[ColumnElement[bool]] = []
    if flt.providers:
        conditions.append(r.provider.in_(flt.providers))
    if flt.models:
        conditions.append(r.model.in_(flt.models))
    if flt.statuses:
        conditions.append(r.status.in_(flt.statuses))
    if flt.url_states:
        conditions.append(_has_any_state(r.url_states, flt.url_states))
    if start is not None:
        conditions.append(r[unit] >= start)
    if end is not None:
        conditions.append(r[unit] < end)
    return select(*[r[name] for name in columns]).where(where(conditions))


def _has_any_state(url_states: ColumnElement[int], states: Sequence[str]) -> ColumnElement[bool]:
    """The rollup rows of calls with an image in one of `states` (unknown names match none)."""
    mask = sum(STATE_BITS[UrlState(state)] for state in states if state in UrlState.__members__)
    if not mask:
        return false()
    return url_states.op("&")(mask) != 0


def _floor(moment: datetime, unit: str) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor.replace(hour=0) if unit == "day" else floor


def _ceiling(moment: datetime, unit: str) -> datetime:
    floor = _floor(moment, unit)
    return floor if floor == moment else floor + BUCKET_WIDTHS[unit]


# --- the page's aggregates of those rows ----------------------------------------------------------


def _bucket_start(dialect: str, hour: Any, bucket: Bucket) -> ColumnElement[Any]:
    """The start of the `bucket` an hour falls in, in the hour's own stored form."""
    if bucket == "hour":
        return hour
    if dialect == "postgresql":
        return func.timezone("UTC", func.date_trunc("day", func.timezone("UTC", hour)))
    return func.substr(hour, 1, 10).concat(" 00:00:00")


def _bucketed_totals(connection: Connection, rows: Subquery, bucket: Bucket) -> pd.DataFrame:
    """Per (provider, model, bucket) of the view: the totals, `timed` and images per state."""
    c = rows.c
    start = _bucket_start(connection.dialect.name, c.hour, bucket)
    failed = c.status == Status.error.value
    query = select(
        c.provider,
        c.model,
        start.label("bucket"),
        func.sum(c.calls).label("calls"),
        func.sum(case((failed, c.calls), else_=0)).label("errors"),
        func.sum(c.images).label("images"),
        func.sum(c.cost_usd).label("cost_usd"),
        func.sum(c.unpriced).label("unpriced"),
        func.sum(c.timed).label("timed"),
        *[func.sum(c[name]).label(name) for name in STATE_COLUMNS.values()],
    ).group_by(c.provider, c.model, start)
    frame = pd.DataFrame(
        connection.execute(query).mappings().all(),
        columns=["provider", "model", "bucket", *_SUMS],
    )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True, format="ISO8601")
    counts = {name: "int64" for name in _SUMS if name != "cost_usd"}
    return frame.astype(counts).astype({"cost_usd": "float64"})


#: (provider, model, latency bucket, calls) rows of a view's histogram.
HistogramRows = list[tuple[str, str, int, int]]


def _histogram(connection: Connection, flt: LogFilter) -> HistogramRows:
    """Calls per (provider, model, latency bucket) of the view, for the percentiles."""
    c = _latency_rows(connection, flt).c
    keys = [c.provider, c.model, c.latency_bucket]
    query = select(*keys, func.sum(c.calls).label("calls")).group_by(*keys)
    # int(): PostgreSQL sums integers as numeric.
    return [(row[0], row[1], int(row[2]), int(row[3])) for row in connection.execute(query).all()]


def _errors(connection: Connection, rows: Subquery) -> pd.DataFrame:
    """Failed calls per provider and HTTP status, most first; `error_type` names the status."""
    c = rows.c
    query = (
        select(c.provider, c.http_status, func.sum(c.calls).label("errors"))
        .where(c.status == Status.error.value)
        .group_by(c.provider, c.http_status)
    )
    frame = pd.DataFrame(
        connection.execute(query).all(), columns=["provider", "http_status", "errors"]
    )
    frame["error_type"] = [error_type(status) for status in frame["http_status"]]
    frame = frame.sort_values(["errors", "provider", "http_status"], ascending=[False, True, True])
    return frame[["provider", "error_type", "http_status", "errors"]].reset_index(drop=True)


def error_type(http_status: int) -> str:
    """How the page names a failure by its HTTP status."""
    return "no HTTP answer" if http_status == NO_HTTP_STATUS else f"HTTP {http_status}"


def _check_bucket(bucket: str) -> None:
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be 'hour' or 'day', not {bucket!r}")


def _state_sums(totals: pd.DataFrame, url_states: Sequence[str]) -> dict[str, int]:
    """Images per URL state of the view (only those in `url_states`, if any, as the
    image-level queries list them)."""
    return {
        state.value: int(totals[column].sum())
        for state, column in STATE_COLUMNS.items()
        if not url_states or state.value in url_states
    }


def _summary_of(totals: pd.DataFrame, by_state: dict[str, int]) -> Summary:
    calls, errors, images, unpriced = (
        int(totals[name].sum()) for name in ("calls", "errors", "images", "unpriced")
    )
    hosted = sum(count for state, count in by_state.items() if state != UrlState.none.value)
    return Summary(
        calls=calls,
        errors=errors,
        images=images,
        cost_usd=float(totals["cost_usd"].sum()),
        unpriced=unpriced,
        error_rate=errors / calls if calls else 0.0,
        expired_share=by_state.get(UrlState.expired.value, 0) / hosted if hosted else 0.0,
        unknown_share=by_state.get(UrlState.unknown.value, 0) / hosted if hosted else 0.0,
    )


def _view_end(flt: LogFilter, now: datetime | None) -> datetime:
    """Where the view's time ends: its `until`, or now if that is sooner."""
    now = now or utcnow()
    return min(flt.until, now) if flt.until is not None else now


def _activity_of(totals: pd.DataFrame, bucket: Bucket, end: datetime) -> pd.DataFrame:
    per_bucket = totals.groupby("bucket", as_index=False, sort=True)[_TOTALS].sum()
    per_bucket["partial"] = per_bucket["bucket"] + BUCKET_WIDTHS[bucket] > pd.Timestamp(end)
    return per_bucket[_ACTIVITY].reset_index(drop=True)


def _top_of(models: pd.DataFrame, limit: int) -> pd.DataFrame:
    busiest = models.sort_values(["calls", "provider", "model"], ascending=[False, True, True])
    return busiest[_TOP].head(limit).reset_index(drop=True)


def _url_state_counts(connection: Connection, flt: LogFilter) -> dict[str, int]:
    """Images of the matching calls per URL state, counting only those that meet `flt`'s URL
    states, verdicts and credentials together (an image's own, which the rollups do not hold)."""
    g = GENERATIONS.c
    hints = plan_hints(connection, flt, ordered=False)
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
    totals: pd.DataFrame, histogram: HistogramRows, keys: list[str]
) -> pd.DataFrame:
    """`totals` summed per `keys`, with p50/p95 latency from the histogram; busiest first."""
    columns = [*keys, *_TOTALS, *PERCENTILES]
    grouped = totals.groupby(keys, as_index=False, sort=True)[_SUMS].sum()
    if grouped.empty:
        return pd.DataFrame(columns=columns)
    latencies = _histogram_percentiles(histogram, keys)
    merged = grouped.merge(latencies, on=keys, how="left")[columns]
    return _busiest_first(merged, keys)


def _histogram_percentiles(histogram: HistogramRows, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys` (provider, or provider and model), p50/p95 as percentile_cont of
    the bucket values: between the ranks floor and ceil of p * (n - 1), interpolated.
    Plain Python over a few thousand rows: pandas' per-group machinery costs more here."""
    groups: dict[tuple[str, ...], Counter[int]] = defaultdict(Counter)
    for provider, model, bucket, calls in histogram:
        groups[(provider, model)[: len(keys)]][bucket] += calls
    found = []
    for group, counts in groups.items():
        buckets = sorted(bucket for bucket, calls in counts.items() if calls > 0)
        if not buckets:
            continue
        ends = list(accumulate(counts[bucket] for bucket in buckets))
        n = ends[-1]

        def at(rank: int, ends: list[int] = ends, buckets: list[int] = buckets) -> float:
            return bucket_value(buckets[bisect_right(ends, rank)])  # first end > rank

        figures = {}
        for name, p in PERCENTILES.items():
            position = p * (n - 1)
            lower = int(position)  # positions are >= 0: truncation is floor
            low, high = at(lower), at(min(lower + 1, n - 1))
            figures[name] = low + (position - lower) * (high - low)
        found.append({**dict(zip(keys, group, strict=True)), **figures})
    return pd.DataFrame(found, columns=[*keys, *PERCENTILES])


def _busiest_first(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    order = frame.sort_values(["calls", *keys], ascending=[False] + [True] * len(keys))
    return order.reset_index(drop=True)


def _sorted_percentiles(
    connection: Connection, flt: LogFilter, hints: PlanHints, keys: list[str]
) -> pd.DataFrame:
    """provider_summary for groupings the rollups do not hold: one grouped aggregate of the
    matching calls, and their latencies sorted (exact percentiles)."""
    g = GENERATIONS.c
    group = [g[key] for key in keys]
    counts = (
        select(
            *group,
            func.count().label("calls"),
            func.sum(cast(g.status == Status.error.value, Integer)).label("errors"),
            func.sum(g.image_count).label("images"),
            func.coalesce(func.sum(g.cost_usd), 0.0).label("cost_usd"),
            func.sum(case((g.cost_usd.is_(None), 1), else_=0)).label("unpriced"),
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

"""Keep `call_rollups` and each call's URL-state summary in step with the log.

The Analytics page reads its figures from `call_rollups` (store/queries/analytics.py): calls,
images, cost, unpriced calls, images per URL state per UTC hour, provider, model, status, set
of URL states and HTTP status; and p50/p95 from `latency_rollups`, the calls per UTC day,
provider, model, status, URL-state set and ~5% latency bucket. Their size is bounded by
those dimensions, not by the traffic: they answer what a million calls took seconds to.
They are only as true as their upkeep, so there are exactly two ways
they move, both deltas computed in SQL from the rows themselves (whatever inserted or
updated them: executemany, COPY, an UPDATE of a batch), in the caller's transaction:

- `rows_inserted(connection, ids)`: these calls (and their images) were just inserted. The
  writer (store/capture/writer.py) calls it for every batch, whichever way the calls came in.
- `url_states_changed(connection, ids)`: the URL state of some images of these calls was
  just changed (a check, a download, a signed expiry passing). Their summary
  (`images_live`, `images_expired`, ... on `generations`) is counted again from `images`, and
  the rollups take back the calls' old contribution and add the new one.

`rebuild(engine)` (`imagelog rollups --rebuild`) counts everything again from the raw tables.
Each delta is one INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE, in key order (two
writers adding to the same rows lock them in one order on PostgreSQL).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    case,
    cast,
    delete,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from store.schema.enums import UrlState
from store.schema.models import CALL_ROLLUPS, GENERATIONS, IMAGES, LATENCY_ROLLUPS

#: Each URL state's bit in `call_rollups.url_states`, and its count column on both tables.
STATE_BITS = {UrlState.live: 1, UrlState.expired: 2, UrlState.unknown: 4, UrlState.none: 8}
STATE_COLUMNS = {state: f"images_{state.value}" for state in UrlState}
#: The latency histogram's scale: bucket b >= 1 holds [RATIO ** (b - 1), RATIO ** b) ms, bucket
#: 0 anything under 1 ms, NO_LATENCY the calls without one. A value read back as its bucket's
#: geometric middle is within ~2.5% of any latency in it.
RATIO = 1.05
NO_LATENCY = -1
#: `call_rollups.http_status` of a call without an HTTP status.
NO_HTTP_STATUS = 0
#: Calls per statement: under SQLite's and psycopg's bind parameter limits.
ID_CHUNK = 5000

KEYS = ("hour", "provider", "model", "status", "url_states", "http_status")
SUMS = ("calls", "images", "cost_usd", "unpriced", "timed", *STATE_COLUMNS.values())
LATENCY_KEYS = ("day", "provider", "model", "status", "url_states", "latency_bucket")


def url_state_counts(states: Iterable[str]) -> dict[str, int]:
    """The summary columns of a call whose images are in `states` (one per image)."""
    counts = dict.fromkeys(STATE_COLUMNS.values(), 0)
    for state in states:
        counts[STATE_COLUMNS[UrlState(state)]] += 1
    return counts


def latency_bucket(latency_ms: float | None) -> int:
    """The histogram bucket of a latency, as `_latency_bucket_sql` computes it in SQL."""
    if latency_ms is None:
        return NO_LATENCY
    if latency_ms < 1:
        return 0
    return math.floor(math.log(latency_ms) / math.log(RATIO)) + 1


def bucket_value(bucket: int) -> float:
    """The latency a bucket stands for: its geometric middle (0.5 ms for bucket 0)."""
    if bucket <= 0:
        return 0.5
    return float(RATIO ** (bucket - 0.5))


def hour_sql(dialect: str, created_at: ColumnElement[Any]) -> ColumnElement[Any]:
    """The UTC hour of `created_at`, in the column's own stored form: SQLite's ISO text (as
    SQLAlchemy writes every time: fixed width, so the hour is a prefix) or a timestamptz."""
    if dialect == "postgresql":
        naive = func.date_trunc("hour", func.timezone("UTC", created_at))
        return func.timezone("UTC", naive)
    return func.substr(created_at, 1, 13).concat(":00:00.000000")


def day_sql(dialect: str, created_at: ColumnElement[Any]) -> ColumnElement[Any]:
    """The UTC day of `created_at`, in the column's own stored form (see `hour_sql`)."""
    if dialect == "postgresql":
        naive = func.date_trunc("day", func.timezone("UTC", created_at))
        return func.timezone("UTC", naive)
    return func.substr(created_at, 1, 10).concat(" 00:00:00.000000")


def _latency_bucket_sql(latency: ColumnElement[Any]) -> ColumnElement[Any]:
    log_ratio: ColumnElement[float] = literal_column(repr(math.log(RATIO)))
    return case(
        (latency.is_(None), NO_LATENCY),
        (latency < 1, 0),
        else_=cast(func.floor(func.ln(latency) / log_ratio), Integer) + 1,
    )


def _url_states_sql() -> ColumnElement[Any]:
    g = GENERATIONS.c
    bits = [case((g[STATE_COLUMNS[state]] > 0, bit), else_=0) for state, bit in STATE_BITS.items()]
    total: ColumnElement[Any] = bits[0]
    for bit in bits[1:]:
        total = total + bit
    return total


def rollup_rows(
    dialect: str, *conditions: ColumnElement[bool], sign: int = 1, ordered: bool = True
) -> Select:
    """The `call_rollups` rows of the calls meeting `conditions`, times `sign` (in key order
    unless not `ordered`: a part of a UNION).

    The one definition of what a call adds to the rollups: the deltas and `rebuild` insert
    it, and the Analytics page reads the hours a time filter cuts in two through it, so a
    figure is the same whether it comes from the table or from the calls.
    """
    g = GENERATIONS.c
    keys = [
        hour_sql(dialect, g.created_at).label("hour"),
        *_shared_keys(),
        func.coalesce(g.http_status, NO_HTTP_STATUS).label("http_status"),
    ]
    sums = [
        (func.count() * sign).label("calls"),
        (func.sum(g.image_count) * sign).label("images"),
        (func.coalesce(func.sum(g.cost_usd), 0.0) * sign).label("cost_usd"),
        (func.sum(case((g.cost_usd.is_(None), 1), else_=0)) * sign).label("unpriced"),
        (func.count(g.latency_ms) * sign).label("timed"),
        *[(func.sum(g[name]) * sign).label(name) for name in STATE_COLUMNS.values()],
    ]
    return _grouped(keys, sums, conditions, ordered)


def latency_rows(
    dialect: str, *conditions: ColumnElement[bool], sign: int = 1, ordered: bool = True
) -> Select:
    """The `latency_rollups` rows of the calls meeting `conditions` (those with a latency),
    times `sign`: `rollup_rows`' counterpart for the histogram."""
    g = GENERATIONS.c
    keys = [
        day_sql(dialect, g.created_at).label("day"),
        *_shared_keys(),
        _latency_bucket_sql(g.latency_ms).label("latency_bucket"),
    ]
    calls = (func.count() * sign).label("calls")
    return _grouped(keys, [calls], (*conditions, g.latency_ms.is_not(None)), ordered)


def _shared_keys() -> list[ColumnElement[Any]]:
    g = GENERATIONS.c
    return [
        g.provider.label("provider"),
        g.model.label("model"),
        g.status.label("status"),
        _url_states_sql().label("url_states"),
    ]


def _grouped(
    keys: list[Any], sums: list[Any], conditions: Sequence[ColumnElement[bool]], ordered: bool
) -> Select:
    grouping = [key.element for key in keys]
    rows = select(*keys, *sums).where(*conditions).group_by(*grouping)
    return rows.order_by(*grouping) if ordered else rows


def _add(connection: Connection, conditions: Sequence[ColumnElement[bool]], sign: int = 1) -> None:
    """Add the rows of the calls meeting `conditions` (times `sign`) to both rollup tables:
    new keys inserted, existing ones summed."""
    dialect = connection.dialect.name
    tables = (
        (CALL_ROLLUPS, KEYS, SUMS, rollup_rows(dialect, *conditions, sign=sign)),
        (LATENCY_ROLLUPS, LATENCY_KEYS, ("calls",), latency_rows(dialect, *conditions, sign=sign)),
    )
    flavour = postgresql if dialect == "postgresql" else sqlite
    for table, keys, sums, rows in tables:
        insert = flavour.insert(table).from_select([*keys, *sums], rows)
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=list(keys),
                set_={name: table.c[name] + insert.excluded[name] for name in sums},
            )
        )


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    unique = sorted(set(ids))
    for start in range(0, len(unique), ID_CHUNK):
        yield unique[start : start + ID_CHUNK]


def rows_inserted(connection: Connection, generation_ids: Iterable[str]) -> None:
    """Add the calls `generation_ids` (just inserted, with their summary) to the rollups.

    Call it in the inserting transaction, with the ids actually inserted (a call skipped as
    already present must not be counted twice).
    """
    for chunk in _chunks(generation_ids):
        _add(connection, [GENERATIONS.c.id.in_(chunk)])


def url_states_changed(connection: Connection, generation_ids: Iterable[str]) -> None:
    """The URL state of images of `generation_ids` changed in this transaction: count their
    summary again from `images` and move the rollups from the old summary to the new.

    On PostgreSQL the calls' rows are locked first, so two transactions changing one call
    take its old contribution back once each, in turn.
    """
    dialect = connection.dialect.name
    g = GENERATIONS.c
    for chunk in _chunks(generation_ids):
        chosen = g.id.in_(chunk)
        if dialect == "postgresql":
            connection.execute(select(g.id).where(chosen).order_by(g.id).with_for_update())
        _add(connection, [chosen], sign=-1)
        connection.execute(update(GENERATIONS).where(chosen).values(**_counted_summary()))
        _add(connection, [chosen])
        # The keys a move emptied (the calls' old URL-state sets), in the hours and days it
        # touched.
        hours = select(hour_sql(dialect, g.created_at)).where(chosen).distinct()
        days = select(day_sql(dialect, g.created_at)).where(chosen).distinct()
        r, lr = CALL_ROLLUPS.c, LATENCY_ROLLUPS.c
        connection.execute(delete(CALL_ROLLUPS).where(r.hour.in_(hours), r.calls == 0))
        connection.execute(delete(LATENCY_ROLLUPS).where(lr.day.in_(days), lr.calls == 0))


def _counted_summary() -> dict[str, Any]:
    """The summary columns as counts of each call's images, for an UPDATE of `generations`."""
    i = IMAGES.c
    return {
        name: select(func.count())
        .where(i.generation_id == GENERATIONS.c.id, i.url_state == state.value)
        .scalar_subquery()
        for state, name in STATE_COLUMNS.items()
    }


def rebuild(engine: Engine) -> int:
    """Count every call's summary and the rollups again from the raw tables, in one
    transaction (readers see the old rollups until it commits); returns the rollup rows."""
    with engine.begin() as connection:
        connection.execute(delete(CALL_ROLLUPS))
        connection.execute(delete(LATENCY_ROLLUPS))
        connection.execute(update(GENERATIONS).values(**_counted_summary()))
        _add(connection, [GENERATIONS.c.id.is_not(None)])
        return sum(
            connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (CALL_ROLLUPS, LATENCY_ROLLUPS)
        )

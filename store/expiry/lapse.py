"""The lapse sweep: a URL past its predicted expiry reads expired (predicted), everywhere.

A live or unknown URL whose signed expiry (or provider's known lifetime) has passed is not
live, whether or not anyone has run `check`. `expire_lapsed` marks every such row expired,
with `last_error_code` saying it is a prediction (`SIGNATURE_EXPIRED` or `ESTIMATE_PASSED`,
store/expiry/prediction.py), and leaves the last probe's time and answer as they were: they
are still the last thing a host said. A probe that answers 200 later makes it live again,
and a live URL a probe found working after its expiry is not swept (`has_lapsed`).

It is cheap when there is nothing to do (two range reads of `ix_images_url_state_expires_at`
that find nothing), so the dashboard runs it before it reads (every few seconds at most),
the command line before `stats`, `export` and `review list`, and `check` before it selects.
Its writes go down `store.expiry.writes.write_updates`, the path `check`'s take, so whatever
must move with URL states has one place to hook; `Lapsed.generation_ids` names the calls
whose states changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, Row, Select, or_, select

from store.expiry.prediction import predicted_code
from store.expiry.writes import url_update, write_updates
from store.schema.models import IMAGES, UrlState, utcnow

#: Rows read per page: memory stays flat when an import brings a million lapsed URLs.
PAGE_SIZE = 5000


@dataclass(frozen=True)
class Lapsed:
    """What one sweep changed: how many images, and the calls they belong to."""

    count: int = 0
    generation_ids: frozenset[str] = field(default_factory=frozenset)


def lapsed_queries(now: datetime) -> list[Select]:
    """The rows `has_lapsed` is true of, as two queries of one range of the (url_state,
    expires_at) index each: unknown URLs past their expiry, and live ones past it with no probe
    since. (As one OR, PostgreSQL factors the shared `expires_at <= now` out of the arms and
    filters every live row with it.)"""
    i = IMAGES.c
    columns = (
        i.id,
        i.generation_id,
        i.url_state,
        i.expires_source,
        i.last_checked_at,
        i.last_http_status,
        i.check_failures,
    )
    return [
        select(*columns).where(i.url_state == UrlState.unknown.value, i.expires_at <= now),
        select(*columns).where(
            i.url_state == UrlState.live.value,
            i.expires_at <= now,
            or_(i.last_checked_at.is_(None), i.last_checked_at < i.expires_at),
        ),
    ]


def expire_lapsed(engine: Engine, now: datetime | None = None) -> Lapsed:
    """Mark every lapsed URL expired (predicted); see the module's docstring."""
    now = now or utcnow()
    count, generation_ids = 0, set[str]()
    seen: set[int] = set()
    for query in lapsed_queries(now):
        while page := _unseen_page(engine, query, seen):
            write_updates(
                engine,
                [
                    url_update(
                        row,
                        UrlState.expired,
                        row.last_checked_at,
                        row.last_http_status,
                        predicted_code(row.expires_source),
                        row.check_failures,
                    )
                    for row in page
                ],
            )
            seen.update(row.id for row in page)
            count += len(page)
            generation_ids.update(row.generation_id for row in page)
    return Lapsed(count, frozenset(generation_ids))


def _unseen_page(engine: Engine, query: Select, seen: set[int]) -> list[Row]:
    """The next PAGE_SIZE rows of `query` (written rows leave it), less any this sweep wrote
    already (a concurrent writer put it back: it is left for the next sweep, not looped on)."""
    with engine.connect() as connection:
        page = connection.execute(query.limit(PAGE_SIZE)).all()
    return [row for row in page if row.id not in seen]

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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, Select, or_, select

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


def lapsed_query(now: datetime) -> Select:
    """The rows `has_lapsed` is true of, as two index ranges of (url_state, expires_at)."""
    i = IMAGES.c
    return select(
        i.id,
        i.generation_id,
        i.expires_source,
        i.last_checked_at,
        i.last_http_status,
        i.check_failures,
    ).where(
        i.expires_at <= now,
        or_(
            i.url_state == UrlState.unknown.value,
            (i.url_state == UrlState.live.value)
            & or_(i.last_checked_at.is_(None), i.last_checked_at < i.expires_at),
        ),
    )


def expire_lapsed(engine: Engine, now: datetime | None = None) -> Lapsed:
    """Mark every lapsed URL expired (predicted); see the module's docstring."""
    now = now or utcnow()
    count, generation_ids = 0, set[str]()
    seen: set[int] = set()
    while True:
        with engine.connect() as connection:
            page = connection.execute(lapsed_query(now).limit(PAGE_SIZE)).all()
        page = [row for row in page if row.id not in seen]  # a row a writer put back: once
        if not page:
            return Lapsed(count, frozenset(generation_ids))
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

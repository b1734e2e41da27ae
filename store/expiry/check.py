"""`check`: probe the image URLs that need it and record what each host answered.

`--due` selects, in SQL and through the (url_state, expires_at) and (url_state,
last_checked_at) indexes, the URLs that are live or unknown and
- whose predicted expiry has passed and that have not been checked since, or
- that have not been checked for `stale_after` (never-checked ones once their call is that old),
- or whose last check failed, once their backoff is over;
every row whose last check failed waits out its backoff (5 min, doubling, at most 6 h), which
`check_failures` and `last_checked_at` determine, so a dead host is not hammered on every run.

A URL whose *signed* expiry has passed is marked expired without a request: its signature is
void and no host will serve it (this is what lets `check --due` work offline). The rest are
probed (`store.expiry.probe`), and the updates are written in batches (executemany). A live
URL whose image has no thumbnail yet gets one fetched now, while it still can be. A URL the
network guard refuses (a private or local address not opted in) is never requested: it stays
as it was with `last_error_code` `refused-address`, counted apart from transient failures.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, Select, and_, bindparam, func, or_, select, union, update
from sqlalchemy.engine import Row

from store.expiry.probe import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PER_HOST,
    DEFAULT_TIMEOUT_SECONDS,
    Prober,
    ProbeResult,
    interleave_by_host,
)
from store.expiry.signed_urls import signed_expiry
from store.media.archive import Archive
from store.media.network_guard import REFUSED_ADDRESS, AllowedNetworks
from store.media.thumbnail_worker import ThumbnailWorker
from store.media.url_answers import NOT_YET_VALID
from store.schema.models import GENERATIONS, IMAGES, UrlState, utcnow
from store.schema.progress import Progress, no_progress

DEFAULT_STALE_AFTER = timedelta(hours=6)
BACKOFF_FIRST = timedelta(minutes=5)
BACKOFF_MAX = timedelta(hours=6)
#: `last_error_code` of a URL marked expired because its signed expiry passed (no request made).
SIGNATURE_EXPIRED = "signed-expiry-passed"
#: Rows per UPDATE batch, and ids per IN (...) list (under SQLite's and psycopg's bind limits).
WRITE_BATCH = 500
ID_CHUNK = 5000
#: Rows read per page: memory stays flat however many URLs a run checks.
PAGE_SIZE = 5000
THUMBNAIL_WORKERS = 4

Mode = Literal["due", "all"]


@dataclass
class CheckSummary:
    """What one `check` run did, for the CLI's last line and the dashboard's message."""

    checked: int = 0  # URLs selected
    states: Counter[str] = field(default_factory=Counter)  # resulting url_state -> count
    changed: int = 0  # rows whose url_state changed
    errors: int = 0  # probes without an answer or with a transient one (tried again later)
    refused: int = 0  # URLs the network guard refused: never requested
    without_network: int = 0  # settled from their signature (expired, not yet valid), no request
    thumbnails: int = 0  # thumbnails fetched for live URLs that had none
    seconds: float = 0.0

    def describe(self) -> str:
        states = ", ".join(f"{count} {state}" for state, count in sorted(self.states.items()))
        parts = [
            f"Checked {self.checked} URLs in {self.seconds:.1f} s"
            + (f": {states}" if states else "")
        ]
        parts.append(f"{self.changed} changed")
        if self.without_network:
            parts.append(f"{self.without_network} settled by their signature (no request)")
        if self.errors:
            parts.append(f"{self.errors} failed transiently (retried later)")
        if self.refused:
            parts.append(
                f"{self.refused} refused by the network guard (private or local addresses; "
                "see IMAGELOG_ALLOWED_NETWORKS)"
            )
        if self.thumbnails:
            parts.append(f"{self.thumbnails} thumbnails saved")
        return "; ".join(parts) + "."


def backoff(failures: int) -> timedelta:
    """How long a URL whose last `failures` checks failed waits before the next one."""
    if failures <= 0:
        return timedelta(0)
    return min(BACKOFF_FIRST * 2 ** (failures - 1), BACKOFF_MAX)


@dataclass(frozen=True)
class CheckOptions:
    """What a check run probes and how; `check_images` and `check_images_async` both take it.

    `mode` "due" picks the URLs that need a check, "all" every URL; it defaults to "all" when
    `image_ids` are given (the dashboard's "Check URLs now" on what the user is looking at) and
    to "due" otherwise. `now` fixes the clock for selection and for signed expiries (tests; a
    report "as of"). `fetch_thumbnails` saves a thumbnail for each live URL that has none.
    `allowed_networks`: what the network guard lets probes and downloads reach besides public
    addresses (default `IMAGELOG_ALLOWED_NETWORKS`).
    """

    mode: Mode | None = None
    image_ids: Sequence[int] | None = None
    stale_after: timedelta = DEFAULT_STALE_AFTER
    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = DEFAULT_PER_HOST
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    fetch_thumbnails: bool = True
    archive: Archive | None = None
    now: datetime | None = None
    allowed_networks: AllowedNetworks = None

    def __post_init__(self) -> None:
        if self.mode not in (None, "due", "all"):
            raise ValueError(f"mode must be 'due' or 'all', not {self.mode!r}")

    @property
    def chosen_mode(self) -> Mode:
        return self.mode or ("all" if self.image_ids is not None else "due")


def check_images(
    engine: Engine, options: CheckOptions | None = None, *, on_progress: Progress | None = None
) -> CheckSummary:
    """Check image URLs and update their rows; see `check_images_async`."""
    return asyncio.run(check_images_async(engine, options, on_progress=on_progress))


async def check_images_async(
    engine: Engine, options: CheckOptions | None = None, *, on_progress: Progress | None = None
) -> CheckSummary:
    """Check the URLs `options` selects (default: the due ones) and update their rows."""
    options = options or CheckOptions()
    started = time.perf_counter()
    now = options.now or utcnow()
    chosen = selections(options.chosen_mode, options.image_ids, options.stale_after, now)
    run = _Run(engine, await asyncio.to_thread(count_rows, engine, chosen), on_progress)
    if run.summary.checked == 0:
        run.summary.seconds = time.perf_counter() - started
        return run.summary

    async def to_probe() -> AsyncIterator[tuple[Row, str]]:
        """Page through the selection; signed-expired rows are settled here, the rest probed."""
        for selection in chosen:
            async for page in _pages(engine, selection):
                probe = []
                for row in page:
                    signed = signed_expiry(row.url)
                    if signed is not None and signed.not_before and signed.not_before > now:
                        # Not valid yet: a request would only be refused. Unknown, tried again
                        # once its backoff is over (by then it usually is valid).
                        failures = row.check_failures + 1
                        run.record(
                            row, _update(row, UrlState.unknown, now, None, NOT_YET_VALID, failures)
                        )
                        run.summary.without_network += 1
                    elif signed is not None and signed.expires_at <= now:
                        run.record(
                            row, _update(row, UrlState.expired, now, None, SIGNATURE_EXPIRED, 0)
                        )
                        run.summary.without_network += 1
                    else:
                        probe.append((row, row.url))
                await run.flush()
                for pair in interleave_by_host(probe):
                    yield pair

    need_thumbnail: list[Row] = []
    async with Prober(
        concurrency=options.concurrency,
        per_host=options.per_host,
        timeout=options.timeout,
        allowed_networks=options.allowed_networks,
    ) as prober:
        async for row, result in prober.probe_many(to_probe()):
            update_row = _after_probe(row, result)
            run.record(row, update_row)
            if update_row["b_state"] == UrlState.live and row.needs_thumbnail:
                need_thumbnail.append(row)
            if len(run.pending) >= WRITE_BATCH:
                await run.flush()
    await run.flush()
    if options.fetch_thumbnails and need_thumbnail:
        run.summary.thumbnails = await asyncio.to_thread(
            save_thumbnails, engine, need_thumbnail, options.archive, options.allowed_networks
        )
    run.summary.checked = run.done  # rows may have left the selection since it was counted
    run.summary.seconds = time.perf_counter() - started
    return run.summary


class _Run:
    """One run's tally, progress and pending updates."""

    def __init__(self, engine: Engine, total: int, on_progress: Progress | None) -> None:
        self.engine = engine
        self.summary = CheckSummary(checked=total)
        self.pending: list[dict[str, Any]] = []
        self.done = 0
        self.on_progress = on_progress or no_progress
        self.on_progress(0, total)

    def record(self, row: Row, update_row: dict[str, Any]) -> None:
        self.pending.append(update_row)
        self.summary.states[update_row["b_state"]] += 1
        self.summary.changed += update_row["b_state"] != row.url_state
        refused = update_row["b_code"] == REFUSED_ADDRESS
        self.summary.refused += refused
        self.summary.errors += update_row["b_failures"] > 0 and not refused
        self.done += 1
        self.on_progress(self.done, self.summary.checked)

    async def flush(self) -> None:
        """Write what is pending on a worker thread (the swap is atomic: the page reader and
        the probe loop may both flush, and each row is written once)."""
        batch, self.pending = self.pending, []
        if batch:
            await asyncio.to_thread(write_updates, self.engine, batch)


@dataclass(frozen=True)
class Selection:
    """Which rows a run checks: "due" or "all", optionally within a list of ids."""

    mode: Mode
    now: datetime
    stale_after: timedelta
    only: Any = None  # an `id IN (...)` condition

    def query(self, *conditions: Any) -> Select:
        conditions = tuple(c for c in (self.only, *conditions) if c is not None)
        if self.mode == "due":
            query = due_query(self.now, self.stale_after, *conditions)
        else:
            query = all_query(*conditions)
        return query.subquery().select()

    def page(self, after: int | None) -> Select:
        """The next PAGE_SIZE rows by id; `id > after` goes inside every branch, so each page
        is an index range read, not the whole selection again."""
        query = self.query(IMAGES.c.id > after if after is not None else None)
        return query.order_by(query.selected_columns.id).limit(PAGE_SIZE)


def selections(
    mode: Mode, image_ids: Sequence[int] | None, stale_after: timedelta, now: datetime
) -> list[Selection]:
    """One selection, or one per chunk of `image_ids` (bind parameters are limited)."""
    if image_ids is None:
        return [Selection(mode, now, stale_after)]
    return [
        Selection(mode, now, stale_after, IMAGES.c.id.in_(image_ids[start : start + ID_CHUNK]))
        for start in range(0, len(image_ids), ID_CHUNK)
    ]


def count_rows(engine: Engine, chosen: Sequence[Selection]) -> int:
    with engine.connect() as connection:
        return sum(
            connection.execute(
                select(func.count()).select_from(one.query().subquery())
            ).scalar_one()
            for one in chosen
        )


async def _pages(engine: Engine, selection: Selection) -> AsyncIterator[list[Row]]:
    """`_pages_of`, each page read on a worker thread so probes go on meanwhile."""
    pages = _pages_of(engine, selection)
    while (page := await asyncio.to_thread(next, pages, None)) is not None:
        yield page


def _pages_of(engine: Engine, selection: Selection) -> Iterator[list[Row]]:
    """Keyset pages by id, each in its own short transaction (a read held open for a whole
    run would stop SQLite's WAL checkpoints while the updates pile up)."""
    after = None
    while True:
        with engine.connect() as connection:
            page = list(connection.execute(selection.page(after)).all())
        if page:
            yield page
        if len(page) < PAGE_SIZE:
            return
        after = page[-1].id


def _columns() -> list[Any]:
    return [
        IMAGES.c.id,
        IMAGES.c.generation_id,
        IMAGES.c.position,
        IMAGES.c.url,
        IMAGES.c.url_state,
        IMAGES.c.check_failures,
        IMAGES.c.thumbnail.is_(None).label("needs_thumbnail"),
    ]


def all_query(*conditions: Any) -> Select:
    """Every image with a hosted URL."""
    return select(*_columns()).where(IMAGES.c.url.is_not(None), *conditions)


def due_query(now: datetime, stale_after: timedelta, *conditions: Any) -> Any:
    """The due rows: a UNION of index-friendly branches (`url_state` plus one time column)."""
    cutoff = now - stale_after
    checkable = IMAGES.c.url_state.in_([UrlState.live.value, UrlState.unknown.value])
    base = [checkable, IMAGES.c.url.is_not(None), _backoff_over(now), *conditions]
    lapsed = select(*_columns()).where(
        *base,
        IMAGES.c.expires_at <= now,
        or_(IMAGES.c.last_checked_at.is_(None), IMAGES.c.last_checked_at < IMAGES.c.expires_at),
    )
    stale = select(*_columns()).where(*base, IMAGES.c.last_checked_at <= cutoff)
    never_checked = (
        select(*_columns())
        .select_from(IMAGES.join(GENERATIONS, GENERATIONS.c.id == IMAGES.c.generation_id))
        .where(*base, IMAGES.c.last_checked_at.is_(None), GENERATIONS.c.created_at <= cutoff)
    )
    retry = select(*_columns()).where(
        *base,
        IMAGES.c.url_state == UrlState.unknown.value,
        IMAGES.c.check_failures > 0,
        IMAGES.c.last_checked_at <= now - backoff(1),  # implied by the backoff; a range read
    )
    return union(lapsed, stale, never_checked, retry)


def _backoff_over(now: datetime) -> Any:
    """SQL for "not failing, or its backoff is over", portable: one branch per backoff step."""
    failures, checked = IMAGES.c.check_failures, IMAGES.c.last_checked_at
    steps = [or_(failures <= 0, checked.is_(None))]
    count = 1
    while backoff(count) < BACKOFF_MAX:
        steps.append(and_(failures == count, checked <= now - backoff(count)))
        count += 1
    steps.append(and_(failures >= count, checked <= now - BACKOFF_MAX))
    return or_(*steps)


def _after_probe(row: Row, result: ProbeResult) -> dict[str, Any]:
    if result.state is UrlState.unknown:
        # No verdict: an expired URL stays expired (expiry is final); others become unknown.
        state = UrlState.expired if row.url_state == UrlState.expired else UrlState.unknown
        failures = row.check_failures + 1
    else:
        state, failures = result.state, 0
    return _update(row, state, result.checked_at, result.http_status, result.error_code, failures)


def _update(
    row: Row,
    state: UrlState,
    checked_at: datetime,
    status: int | None,
    code: str | None,
    failures: int,
) -> dict[str, Any]:
    return {
        "b_id": row.id,
        "b_state": state.value,
        "b_checked_at": checked_at,
        "b_status": status,
        "b_code": code,
        "b_failures": failures,
    }


_UPDATE = (
    update(IMAGES)
    .where(IMAGES.c.id == bindparam("b_id"))
    .values(
        url_state=bindparam("b_state"),
        last_checked_at=bindparam("b_checked_at"),
        last_http_status=bindparam("b_status"),
        last_error_code=bindparam("b_code"),
        check_failures=bindparam("b_failures"),
    )
)


def write_updates(engine: Engine, updates: list[dict[str, Any]]) -> None:
    """One executemany UPDATE per batch, in one transaction."""
    with engine.begin() as connection:
        for start in range(0, len(updates), WRITE_BATCH):
            connection.execute(_UPDATE, updates[start : start + WRITE_BATCH])


def save_thumbnails(
    engine: Engine,
    rows: Sequence[Row],
    archive: Archive | None,
    allowed_networks: AllowedNetworks = None,
) -> int:
    """Save thumbnails for live URLs that have none, down the thumbnail worker's own path."""
    with ThumbnailWorker(
        engine,
        archive=archive,
        workers=THUMBNAIL_WORKERS,
        allowed_networks=allowed_networks,
    ) as worker:
        images = ((row.generation_id, row.position, row.url) for row in rows)
        return sum(outcome.facts is not None for outcome in worker.save_all(images))

"""The Logs, Detail and Gallery pages' reads: one page of rows at a time, from indexes.

Pages are keyset-paginated on (created_at DESC, id DESC), the order of
`ix_generations_created_at_id`: the database seeks to the cursor and reads `limit` rows, so
page 20 000 costs what page 1 costs (OFFSET would read and discard every earlier row).
Each filter column has an index (column, created_at, id) (revision 0002), so a filtered page
is one ordered range too; several values of a filter are one range each, merged.
A page is found by its keys alone (an index-only walk past the calls a filter rejects), and
only its rows are then read in full and joined to their first image and thumbnail.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Select,
    Subquery,
    and_,
    exists,
    func,
    literal,
    not_,
    select,
    tuple_,
    union_all,
)
from sqlmodel import Field

from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    generation_conditions,
    image_conditions,
    ordered_branches,
    parse_utc_datetime,
    require_positive,
    where,
)
from store.queries.hints import plan_hints
from store.schema.enums import UNREVIEWED, Verdict
from store.schema.models import (
    GenerationFields,
    ImageFields,
    ImageKeys,
    ImageVerdict,
    UrlStateSummary,
)

#: Characters of the prompt a table row carries; the Detail page shows the whole prompt.
PROMPT_PREVIEW_CHARS = 200
#: Characters of the error a table row carries (its code and the start of its message).
ERROR_PREVIEW_CHARS = 200

LOG_COLUMNS = [
    "id",
    "created_at",
    "provider",
    "model",
    "operation",
    "prompt",
    "size",
    "quality",
    "n",
    "status",
    "http_status",
    "error",
    "latency_ms",
    "cost_usd",
    "url_state",
    "expires_at",
    "last_checked_at",
    "last_http_status",
    "last_error_code",
    "thumbnail",
    "image_count",
    "verdicts",
]
GALLERY_COLUMNS = [
    "image_id",
    "generation_id",
    "position",
    "thumbnail",
    "url",
    "url_state",
    "expires_at",
    "last_checked_at",
    "last_http_status",
    "last_error_code",
    "verdict",
    "c2pa_state",
    "phash",
    "provider",
    "model",
    "prompt",
    "created_at",
]


#: Longer than any cursor `encode` makes: a longer `?after=` is not one of ours.
MAX_CURSOR_CHARS = 200


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order: the (created_at, id) of a row.

    For the gallery, `position` is the image's position in its call as well.
    `encode()` gives a short opaque string for `st.query_params` / session state.
    """

    created_at: datetime
    id: str
    position: int | None = None

    def encode(self) -> str:
        payload = json.dumps([self.created_at.isoformat(), self.id, self.position])
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str | None) -> Cursor | None:
        """The cursor in `token`, or None when the token is missing or mangled in any way (it
        comes from the address bar: whatever it holds must not raise)."""
        if not token or len(token) > MAX_CURSOR_CHARS:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            created_at, generation_id, position = json.loads(raw)
        except (binascii.Error, ValueError, TypeError, RecursionError):
            return None
        moment = parse_utc_datetime(created_at) if isinstance(created_at, str) else None
        if moment is None or not isinstance(generation_id, str) or len(generation_id) > 64:
            return None
        if isinstance(position, bool) or not isinstance(position, int):
            position = None
        return cls(moment, generation_id, position)


@dataclass(frozen=True)
class LogPage:
    """One page of the Logs table.

    `next_cursor` continues to older rows (None on the last page); `prev_cursor`, given as
    `before=`, goes back to the newer page (None on the first page).
    """

    rows: pd.DataFrame
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


@dataclass(frozen=True)
class GalleryPage:
    """One page of the Gallery: one row per image (GALLERY_COLUMNS), newest call first."""

    rows: pd.DataFrame
    next_cursor: Cursor | None


class ImageDetail(ImageVerdict, ImageKeys, ImageFields):
    """Every column of one `images` row."""

    id: int


class LogDetail(UrlStateSummary, GenerationFields):
    """Every column of one `generations` row (its URL-state summary too: an auditor cites what
    is stored), and its images in position order."""

    images: list[ImageDetail] = Field(default_factory=list)


def has_any_logs(engine: Engine) -> bool:
    """Whether the log holds any call (the welcome page shows on an empty one)."""
    with engine.connect() as connection:
        return connection.execute(select(exists().select_from(GENERATIONS))).scalar_one()


def list_logs(
    engine: Engine,
    flt: LogFilter,
    *,
    limit: int = 50,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> LogPage:
    """One page of calls matching `flt`, newest first, older than `after` / newer than `before`.

    `url_state`, `expires_at`, the last check's time, status and code, and `thumbnail` are
    those of the call's first image (position 0 in practice); a call without images has None
    there. `verdicts` are those of all its
    images (UNREVIEWED for an image without one), in `VERDICT_ORDER`.
    """
    require_positive(limit=limit)
    g = GENERATIONS.c
    backwards = before is not None
    if before is not None:
        seek, order = [newer_than(before)], [g.created_at.asc(), g.id.asc()]
    else:
        seek, order = [older_than(after)] if after else [], [g.created_at.desc(), g.id.desc()]
    with engine.connect() as connection:
        branches = ordered_branches(connection.dialect.name, flt, plan_hints(connection, flt))
        # Only the keys while walking the index (an index-only walk past the calls a filter
        # rejects); the page's columns are read for its rows alone, below.
        walks = [
            select(g.created_at, g.id)
            .where(where(conditions), *seek)
            .order_by(*order)
            .limit(limit + 1)
            for conditions in branches
        ]
        page = merge_ordered(walks, ["created_at", "id"], limit + 1, ascending=backwards)
        found = connection.execute(_with_first_image(page)).mappings()
        records = [_with_verdicts(dict(row)) for row in found]
    # The join keeps the page's rows, not their order: sort the few rows here, so the plan
    # is the index scan alone, with no sort step on top.
    records.sort(key=lambda record: (record["created_at"], record["id"]), reverse=not backwards)
    more = len(records) > limit
    records = records[:limit]
    if backwards:
        records.reverse()
    frame = pd.DataFrame.from_records(records, columns=LOG_COLUMNS)
    _utc_columns(frame, "created_at", "expires_at", "last_checked_at")
    first, last = (_cursor_of(records[0]), _cursor_of(records[-1])) if records else (None, None)
    if backwards:
        return LogPage(frame, next_cursor=last, prev_cursor=first if more else None)
    return LogPage(frame, next_cursor=last if more else None, prev_cursor=first if after else None)


def neighbours(engine: Engine, flt: LogFilter, cursor: Cursor) -> tuple[str | None, str | None]:
    """(newer, older): the ids of the calls just before and after `cursor` in the Logs
    order of `flt` (None at either end), so Detail steps through the list the user filtered.

    The call at `cursor` need not match `flt` itself: its place in the order is enough.
    Two index seeks of one row each, keys only.
    """
    g = GENERATIONS.c
    found: list[str | None] = []
    with engine.connect() as connection:
        branches = ordered_branches(connection.dialect.name, flt, plan_hints(connection, flt))
        for seek, order, ascending in (
            (newer_than(cursor), [g.created_at.asc(), g.id.asc()], True),
            (older_than(cursor), [g.created_at.desc(), g.id.desc()], False),
        ):
            walks = [
                select(g.created_at, g.id).where(where(conditions), seek).order_by(*order).limit(1)
                for conditions in branches
            ]
            step = merge_ordered(walks, ["created_at", "id"], 1, ascending=ascending)
            found.append(connection.execute(select(step.c.id)).scalar())
    return found[0], found[1]


def merge_ordered(
    branches: list[Select], keys: list[str], limit: int | None, *, ascending: bool = False
) -> Subquery:
    """One ordered, limited branch as it is; several merged (each is already in order and
    holds at most `limit` rows, so the merge sorts a few hundred rows at most)."""
    if len(branches) == 1:
        return branches[0].subquery()
    merged = union_all(*[select(branch.subquery()) for branch in branches]).subquery()
    order = [merged.c[key].asc() if ascending else merged.c[key].desc() for key in keys]
    return select(merged).order_by(*order).limit(limit).subquery()


def _with_first_image(page: Subquery) -> Select:
    """The page's calls with their columns and first image; both joins run on its rows only."""
    g = GENERATIONS.c
    candidates = IMAGES.alias("candidates")
    first_image_id = (
        select(candidates.c.id)
        .where(candidates.c.generation_id == page.c.id)
        .order_by(candidates.c.position)
        .limit(1)
        .scalar_subquery()
    )
    return select(
        g.created_at,
        g.id,
        g.provider,
        g.model,
        g.operation,
        func.substr(g.prompt, 1, PROMPT_PREVIEW_CHARS).label("prompt"),
        g.size,
        g.quality,
        g.n,
        g.status,
        g.http_status,
        func.substr(g.error, 1, ERROR_PREVIEW_CHARS).label("error"),
        g.latency_ms,
        g.cost_usd,
        g.image_count,
        IMAGES.c.url_state,
        IMAGES.c.expires_at,
        IMAGES.c.last_checked_at,
        IMAGES.c.last_http_status,
        IMAGES.c.last_error_code,
        IMAGES.c.thumbnail,
        *[_has_verdict(page, value).label(f"has_{value}") for value in VERDICT_ORDER],
    ).select_from(
        page.join(GENERATIONS, g.id == page.c.id).outerjoin(IMAGES, IMAGES.c.id == first_image_id)
    )


#: How a call's verdicts are listed: the verdicts, then the images no one has judged yet.
VERDICT_ORDER = (*(verdict.value for verdict in Verdict), UNREVIEWED)


def _has_verdict(page: Subquery, verdict: str) -> ColumnElement[bool]:
    """Whether one of the page row's images has `verdict`: a seek of the (verdict,
    generation_id) index per row."""
    image = IMAGES.alias(f"judged_{verdict}")
    judged = image.c.verdict.is_(None) if verdict == UNREVIEWED else image.c.verdict == verdict
    return exists(select(1).select_from(image).where(image.c.generation_id == page.c.id, judged))


def _with_verdicts(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with its `_has_verdict` flags folded into one `verdicts` list."""
    record["verdicts"] = [value for value in VERDICT_ORDER if record.pop(f"has_{value}")]
    return record


def older_than(cursor: Cursor, *, inclusive: bool = False) -> ColumnElement[bool]:
    """Rows after `cursor` in the newest-first order.

    A row-value comparison, not `a < x OR (a = x AND b < y)`: both databases turn the row
    value into one range on the (created_at, id) indexes, where the OR form is a filter.
    """
    key = tuple_(GENERATIONS.c.created_at, GENERATIONS.c.id)
    bound = tuple_(literal(cursor.created_at, DateTime(timezone=True)), literal(cursor.id))
    return key <= bound if inclusive else key < bound


def newer_than(cursor: Cursor) -> ColumnElement[bool]:
    """Rows before `cursor` in the newest-first order (the previous page's)."""
    key = tuple_(GENERATIONS.c.created_at, GENERATIONS.c.id)
    return key > tuple_(literal(cursor.created_at, DateTime(timezone=True)), literal(cursor.id))


def _cursor_of(record: dict[str, Any]) -> Cursor:
    return Cursor(record["created_at"], record["id"])


def _utc_columns(frame: pd.DataFrame, *names: str) -> None:
    """Time columns as tz-aware UTC pandas datetimes, also when every value is None."""
    for name in names:
        frame[name] = pd.to_datetime(frame[name], utc=True)


def count_logs(engine: Engine, flt: LogFilter, cap: int = 10_000) -> tuple[int, bool]:
    """How many calls match, counting at most `cap` (True when there are more).

    An exact count of a broad filter at a million rows reads the whole index; the page shows
    "10,000+" instead, and the count stays as fast as reading `cap` index entries.
    """
    require_positive(cap=cap)
    with engine.connect() as connection:
        hints = plan_hints(connection, flt, ordered=False)
        conditions = generation_conditions(connection.dialect.name, flt, hints)
        capped = select(GENERATIONS.c.id).where(where(conditions)).limit(cap + 1).subquery()
        found = connection.execute(select(func.count()).select_from(capped)).scalar_one()
    return min(found, cap), found > cap


def get_log(engine: Engine, generation_id: str) -> LogDetail | None:
    """Every column of one call and its images, or None when there is no such call."""
    with engine.connect() as connection:
        row = (
            connection.execute(select(GENERATIONS).where(GENERATIONS.c.id == generation_id))
            .mappings()
            .first()
        )
        if row is None:
            return None
        images = connection.execute(
            select(IMAGES)
            .where(IMAGES.c.generation_id == generation_id)
            .order_by(IMAGES.c.position)
        ).mappings()
        return LogDetail.model_validate(
            {**row, "images": [ImageDetail.model_validate(dict(image)) for image in images]}
        )


def list_gallery(
    engine: Engine, flt: LogFilter, *, limit: int = 48, after: Cursor | None = None
) -> GalleryPage:
    """One page of images of the calls matching `flt`, newest call first, then by position.

    With `url_states` set, only the images in those states are listed.
    """
    require_positive(limit=limit)
    position = -1 if after is None or after.position is None else after.position
    g, i = GENERATIONS.c, IMAGES.c
    with engine.connect() as connection:
        # limit + 2 calls: each holds at least one listed image, and the cursor's own call
        # (read again for its images past the cursor) may hold none.
        calls = _calls_with_images(connection, flt, limit + 2, after)
        query = select(
            i.id.label("image_id"),
            i.generation_id,
            i.position,
            i.thumbnail,
            i.url,
            i.url_state,
            i.expires_at,
            i.last_checked_at,
            i.last_http_status,
            i.last_error_code,
            i.verdict,
            i.c2pa_state,
            i.phash,
            g.provider,
            g.model,
            func.substr(g.prompt, 1, PROMPT_PREVIEW_CHARS).label("prompt"),
            g.created_at,
        ).select_from(
            calls.join(GENERATIONS, g.id == calls.c.id).join(IMAGES, i.generation_id == calls.c.id)
        )
        query = query.where(*image_conditions(flt, dialect=connection.dialect.name))
        if after is not None:
            query = query.where(not_(and_(i.generation_id == after.id, i.position <= position)))
        records = [dict(row) for row in connection.execute(query).mappings()]
    records.sort(key=lambda r: (r["created_at"], r["generation_id"], -r["position"]), reverse=True)
    more = len(records) > limit
    records = records[:limit]
    frame = pd.DataFrame.from_records(records, columns=GALLERY_COLUMNS)
    _utc_columns(frame, "created_at", "expires_at", "last_checked_at")
    next_cursor = None
    if more:
        last = records[-1]
        next_cursor = Cursor(last["created_at"], last["generation_id"], last["position"])
    return GalleryPage(frame, next_cursor)


def _calls_with_images(
    connection: Connection, flt: LogFilter, limit: int | None, after: Cursor | None = None
) -> Subquery:
    """The newest `limit` calls matching `flt` that have an image to list (from `after` on,
    inclusive), planned with hints probed on `connection`, which runs the query. The images
    are joined to these few calls, so the query walks the calls' time index, never every
    image and a sort of them."""
    g = GENERATIONS.c
    hints = plan_hints(connection, flt)
    # An image condition (URL states, verdicts) ensures an image already.
    has_images = [] if image_conditions(flt) else [g.image_count > 0]
    seek = [older_than(after, inclusive=True)] if after else []
    branches = [
        select(g.created_at, g.id)  # keys only: an index-only walk, as in list_logs
        .where(where(conditions), *has_images, *seek)
        .order_by(g.created_at.desc(), g.id.desc())
        .limit(limit)
        for conditions in ordered_branches(connection.dialect.name, flt, hints)
    ]
    return merge_ordered(branches, ["created_at", "id"], limit)


def image_ids(engine: Engine, flt: LogFilter, limit: int | None = None) -> list[int]:
    """Ids of the images of the calls matching `flt` (newest first), for "Check URLs now".

    Without `limit`, every image of the filter (which reads them all).
    """
    if limit is not None:
        require_positive(limit=limit)
    i = IMAGES.c
    with engine.connect() as connection:
        calls = _calls_with_images(connection, flt, limit)
        query = (
            select(i.id, calls.c.created_at, calls.c.id.label("call_id"), i.position)
            .select_from(calls.join(IMAGES, i.generation_id == calls.c.id))
            .where(*image_conditions(flt, dialect=connection.dialect.name))
        )
        rows = connection.execute(query).all()
    rows = sorted(rows, key=lambda row: (row.created_at, row.call_id, -row.position), reverse=True)
    return [row.id for row in rows[:limit]]

"""Giving an image a verdict, and reading back its trail: who judged it, when, from what to what.

A verdict is one new `reviews` row and the image's `images.verdict`, written in one
transaction; nothing here updates or deletes a review. The trail's "from" is not stored: it is
the verdict of the image's previous review (none: it was unreviewed), so the rows alone tell
the whole story and cannot disagree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, Select, insert, select, tuple_, update

from store.review.reasons import configured_reasons
from store.schema.enums import UNREVIEWED, Verdict
from store.schema.models import IMAGES, REVIEWS, ReviewFields, current_verdict, utcnow


class ReviewError(ValueError):
    """A verdict that cannot be given as asked (an unknown reason, no reviewer, ...)."""


class NoSuchImage(LookupError):
    """The log has no image at that position of that call."""


@dataclass(frozen=True)
class Change:
    """One verdict given to one image, and the verdict it replaced (None: unreviewed)."""

    id: int
    generation_id: str
    position: int
    from_verdict: str | None
    to_verdict: str
    reason: str | None
    note: str | None
    reviewer: str
    created_at: datetime

    def describe(self) -> str:
        """One line: when, who, from what to what, why."""
        line = (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} UTC  {self.reviewer}: "
            f"{self.from_verdict or UNREVIEWED} -> {self.to_verdict}"
        )
        if self.reason:
            line += f" ({self.reason})"
        return line + (f" — {self.note}" if self.note else "")


def give_verdict(
    engine: Engine,
    generation_id: str,
    position: int,
    verdict: Verdict | str,
    reviewer: str,
    reason: str | None = None,
    note: str | None = None,
) -> Change:
    """Record `reviewer`'s verdict on image `position` of call `generation_id`.

    A flagged image needs a reason from the configured list (store/review/reasons.py); the
    other verdicts take none. Raises ReviewError for a verdict that cannot be given and
    NoSuchImage when there is no such image; nothing is written then.
    """
    review = _validated(generation_id, position, verdict, reviewer, reason, note)
    with engine.begin() as connection:
        # The image's row is written first: its lock (PostgreSQL's row lock, SQLite's write
        # lock) orders concurrent verdicts on one image, and the time is read once it is held,
        # so the trail's order is the order in which the verdicts were written.
        key = (IMAGES.c.generation_id == generation_id) & (IMAGES.c.position == position)
        written = connection.execute(update(IMAGES).where(key).values(verdict=review.verdict))
        if written.rowcount != 1:
            raise NoSuchImage(f"the log has no image {position} in call {generation_id}")
        last = connection.scalar(select(current_verdict(generation_id, position)))
        row = {**review.model_dump(), "verdict": review.verdict.value, "created_at": utcnow()}
        review_id = connection.execute(
            insert(REVIEWS).values(row).returning(REVIEWS.c.id)
        ).scalar_one()
    return _change({**row, "id": review_id, "from_verdict": last})


def _validated(
    generation_id: str,
    position: int,
    verdict: Verdict | str,
    reviewer: str,
    reason: str | None,
    note: str | None,
) -> ReviewFields:
    try:
        review = ReviewFields.model_validate(
            {
                "generation_id": generation_id,
                "position": position,
                "verdict": verdict,
                "reviewer": reviewer,
                "reason": reason,
                "note": note,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        raise ReviewError(problems) from None
    if review.verdict is Verdict.flagged:
        reasons = configured_reasons()
        if review.reason not in reasons:
            given = "no reason" if review.reason is None else f"the reason {review.reason!r}"
            raise ReviewError(
                f"a flagged image needs one of the configured reasons, not {given}; "
                f"choose from: {', '.join(reasons)}"
            )
    elif review.reason is not None:
        raise ReviewError(f"only a flagged image takes a reason; {review.verdict} takes none")
    return review


def trail(engine: Engine, generation_id: str, position: int | None = None) -> list[Change]:
    """Every verdict given to the images of a call (or to its image `position`), oldest
    first per image, with the verdict each replaced."""
    r = REVIEWS.c
    where = [r.generation_id == generation_id]
    if position is not None:
        where.append(r.position == position)
    query = _changes().where(*where).order_by(r.position, r.created_at, r.id)
    with engine.connect() as connection:
        return [_change(row) for row in connection.execute(query).mappings()]


def recent_changes(engine: Engine, limit: int = 20) -> list[Change]:
    """The `limit` latest verdicts, whichever the image, newest first."""
    r = REVIEWS.c
    query = _changes().order_by(r.created_at.desc(), r.id.desc()).limit(limit)
    with engine.connect() as connection:
        return [_change(row) for row in connection.execute(query).mappings()]


def _changes() -> Select:
    """Reviews with the verdict of the same image's review before each (its trail index)."""
    r = REVIEWS.c
    earlier = REVIEWS.alias("earlier")
    before = (
        select(earlier.c.verdict)
        .where(
            earlier.c.generation_id == r.generation_id,
            earlier.c.position == r.position,
            tuple_(earlier.c.created_at, earlier.c.id) < tuple_(r.created_at, r.id),
        )
        .order_by(earlier.c.created_at.desc(), earlier.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(REVIEWS, before.label("from_verdict"))


def _change(row: Any) -> Change:
    return Change(
        id=row["id"],
        generation_id=row["generation_id"],
        position=row["position"],
        from_verdict=row["from_verdict"],
        to_verdict=row["verdict"],
        reason=row["reason"],
        note=row["note"],
        reviewer=row["reviewer"],
        created_at=row["created_at"],
    )

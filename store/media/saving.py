"""Save one image: fetch it (unless its bytes came with the call), thumbnail it, archive the
original if asked (`archive_original`), and UPDATE its `images` row with everything that taught.

This is the one path every thumbnail takes: the recorder's background worker, `imagelog
thumbnails` and `check` (for a live URL without one) all call `save_image`, through
`store.media.thumbnail_worker.ThumbnailWorker`. A download doubles as the URL's first probe,
classified by the URL checker's own rules (`store.media.url_answers`): a 200 marks it live, a
403/404/410 (or 400 ExpiredToken) expired, and a timeout, reset or 5xx leaves it unknown (a
transient failure never marks a URL expired). A failure lands in the row too, as a readable
`thumbnail_error`; an archive that cannot be written costs the row its `archive_path` only
(the thumbnail is stored all the same), and its `archive_error` says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import Engine, update

from store.media.archive import Archive, ArchiveError
from store.media.fetch import DEFAULT_MAX_BYTES, FetchError, fetch_image
from store.media.network_guard import REFUSED_ADDRESS
from store.media.thumbnails import ImageError, ImageFacts, make_thumbnail
from store.media.url_answers import ERROR_CODE_LENGTH
from store.schema.models import IMAGES, UrlState, utcnow

log = logging.getLogger(__name__)

#: Width of images.thumbnail_error and images.archive_error (PostgreSQL enforces it).
THUMBNAIL_ERROR_LENGTH = ARCHIVE_ERROR_LENGTH = 500


@dataclass(frozen=True)
class UrlCheck:
    """What a download told about the image's URL, in the columns a probe fills."""

    state: UrlState  # live / expired / unknown
    checked_at: datetime
    http_status: int | None
    error_code: str | None


@dataclass(frozen=True)
class ImageOutcome:
    """Everything saving one image learnt: its facts or why there are none, and its URL's state."""

    facts: ImageFacts | None = None
    error: str | None = None
    check: UrlCheck | None = None
    archive_path: str | None = None
    archive_error: str | None = None


def save_image(
    engine: Engine,
    client: httpx.Client,
    generation_id: str,
    position: int,
    url: str | None,
    data: bytes | None,
    *,
    archive: Archive | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ImageOutcome:
    """Thumbnail image `position` of call `generation_id` and store what that learnt in its row.

    From `data` when the call returned the bytes, else from `url`; never raises for bad input.
    Callers submit an image once its row is inserted; a missing row is logged, not waited for.
    """
    outcome = _learn(client, url, data, archive=archive, max_bytes=max_bytes)
    key = (IMAGES.c.generation_id == generation_id) & (IMAGES.c.position == position)
    with engine.begin() as connection:
        found = connection.execute(update(IMAGES).where(key).values(**_row_values(outcome)))
    if found.rowcount == 0:
        log.warning("image %s/%s has no row: its thumbnail is dropped", generation_id, position)
    return outcome


def _row_values(outcome: ImageOutcome) -> dict[str, object]:
    """The `images` columns an outcome sets: the one mapping from what a save learnt to a row."""
    values: dict[str, object] = {}
    if outcome.facts is not None:
        values.update(outcome.facts.columns(), thumbnail_error=None)
    elif outcome.error is not None:
        values["thumbnail_error"] = outcome.error[:THUMBNAIL_ERROR_LENGTH]
    if outcome.archive_path is not None:
        values.update(archive_path=outcome.archive_path, archive_error=None)
    elif outcome.archive_error is not None:
        values["archive_error"] = outcome.archive_error[:ARCHIVE_ERROR_LENGTH]
    if (check := outcome.check) is not None:
        values.update(
            last_checked_at=check.checked_at,
            last_http_status=check.http_status,
            last_error_code=(check.error_code or None) and check.error_code[:ERROR_CODE_LENGTH],
        )
        if check.state is UrlState.unknown:
            # A transient failure is counted, never turned into a verdict.
            values["check_failures"] = IMAGES.c.check_failures + 1
        else:
            values["url_state"] = check.state.value
            values["check_failures"] = 0
    return values


def _learn(
    client: httpx.Client,
    url: str | None,
    data: bytes | None,
    *,
    archive: Archive | None,
    max_bytes: int,
) -> ImageOutcome:
    """Thumbnail one image from its bytes, or else from its URL; never raises for bad input."""
    check: UrlCheck | None = None
    content_type: str | None = None
    if data is None:
        if url is None:
            return ImageOutcome(error="no image: neither bytes nor a URL were recorded")
        try:
            fetched = fetch_image(client, url, max_bytes=max_bytes)
        except FetchError as exc:
            check = UrlCheck(exc.url_state, utcnow(), exc.status, exc.error_code)
            # A refusal is no failed download (nothing was requested): its reason stands alone.
            error = str(exc) if exc.error_code == REFUSED_ADDRESS else f"download failed: {exc}"
            return ImageOutcome(error=error, check=check)
        check = UrlCheck(UrlState.live, utcnow(), fetched.status, None)
        data, content_type = fetched.data, fetched.content_type
    try:
        facts = make_thumbnail(data)
    except ImageError as exc:
        served = f" (served as {content_type})" if content_type else ""
        return ImageOutcome(error=f"{exc}{served}", check=check)
    if archive is None:
        return ImageOutcome(facts=facts, check=check)
    archive_path, archive_error = archive_original(archive, facts, data)
    return ImageOutcome(
        facts=facts, check=check, archive_path=archive_path, archive_error=archive_error
    )


def archive_original(
    archive: Archive, facts: ImageFacts, data: bytes
) -> tuple[str | None, str | None]:
    """Keep the original bytes in the archive, once per content: (its URL, None), or (None,
    why not). Never raises: a store that is down costs the row its archive path, not its
    thumbnail. The original then waits in the archive's pending folder, so `imagelog archive
    --missing` can still upload it (an image returned as base64 exists nowhere else)."""
    try:
        return archive.store(facts.sha256, facts.format, data), None
    except ArchiveError as exc:
        reason = f"not archived: {exc}"
    try:
        archive.keep_pending(facts.sha256, facts.format, data)
        reason += "; the original waits in the pending folder: `imagelog archive --missing`"
    except OSError as exc:
        reason += f"; nor kept in the pending folder ({exc.strerror or type(exc).__name__})"
    log.warning("image %s: %s", facts.sha256[:12], reason)
    return None, reason

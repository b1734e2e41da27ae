"""Save one image: fetch it (unless its bytes came with the call), thumbnail it, read its
content credentials and hash its picture, archive the original if asked, and UPDATE its
`images` row with everything that taught.

This is the one path every thumbnail takes: the recorder's background worker, `imagelog
thumbnails` and `check` (for a live URL without one) all call `save_image`, through
`store.media.thumbnail_worker.ThumbnailWorker`. A download doubles as the URL's first probe,
classified by the URL checker's own rules (`store.media.url_answers`): a 200 marks it live, a
403/404/410 (or 400 ExpiredToken) expired, and a timeout, reset or 5xx leaves it unknown (a
transient failure never marks a URL expired). A failure lands in the row too, as a readable
`thumbnail_error`.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine, update

from store.media.credentials import ContentCredentials, read_credentials
from store.media.fetch import DEFAULT_MAX_BYTES, FetchError, fetch_image
from store.media.lookalike import perceptual_hash
from store.media.network_guard import REFUSED_ADDRESS
from store.media.thumbnails import ImageError, ImageFacts, make_thumbnail
from store.media.url_answers import ERROR_CODE_LENGTH
from store.schema.models import IMAGES, UrlState, phash_bands, utcnow

log = logging.getLogger(__name__)

#: Width of images.thumbnail_error (PostgreSQL enforces it).
THUMBNAIL_ERROR_LENGTH = 500


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
    credentials: ContentCredentials | None = None  # None: c2pa cannot read the format
    phash: str | None = None


def save_image(
    engine: Engine,
    client: httpx.Client,
    generation_id: str,
    position: int,
    url: str | None,
    data: bytes | None,
    *,
    archive_dir: Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ImageOutcome:
    """Thumbnail image `position` of call `generation_id` and store what that learnt in its row.

    From `data` when the call returned the bytes, else from `url`; never raises for bad input.
    Callers submit an image once its row is inserted; a missing row is logged, not waited for.
    """
    outcome = _learn(client, url, data, archive_dir=archive_dir, max_bytes=max_bytes)
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
        values.update(phash=outcome.phash, **phash_bands(outcome.phash))
    elif outcome.error is not None:
        values["thumbnail_error"] = outcome.error[:THUMBNAIL_ERROR_LENGTH]
    if outcome.credentials is not None:
        values.update(outcome.credentials.columns())
    if outcome.archive_path is not None:
        values["archive_path"] = outcome.archive_path
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
    archive_dir: Path | None,
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
    archive_path = str(archive_original(archive_dir, facts, data)) if archive_dir else None
    return ImageOutcome(
        facts=facts,
        check=check,
        archive_path=archive_path,
        credentials=read_credentials(data, facts.format),
        phash=perceptual_hash(facts.thumbnail),
    )


def archive_original(archive_dir: Path, facts: ImageFacts, data: bytes) -> Path:
    """Write the original bytes to archive_dir/<sha[:2]>/<sha>.<ext>, once per content."""
    extension = "jpg" if facts.format == "jpeg" else facts.format
    path = archive_dir / facts.sha256[:2] / f"{facts.sha256}.{extension}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{threading.get_ident()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # atomic: a reader never sees half a file
    return path.resolve()

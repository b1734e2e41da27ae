"""A background pool that turns each recorded image into a thumbnail while its URL still lives.

Provider URLs die within the hour (BFL after 10 minutes), so the recorder hands every image to
this pool the moment the call returns, and a download doubles as the URL's first probe,
classified by the URL checker's own rules (`store.media.url_answers.classify_answer`): a 200 marks
it live, a 403/404/410 (or 400 ExpiredToken) expired, and a timeout, reset or 5xx leaves it
unknown (a transient failure never marks a URL expired). The result lands in the image's row,
keyed by (generation_id, position); a failure lands there too, as a readable `thumbnail_error`.

The recorder submits an image only once its writer has inserted the row, so the UPDATE always
finds it; a row that is missing anyway is logged and its result dropped, never waited for.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine, select, update

from store.media.thumbnails import (
    DEFAULT_MAX_BYTES,
    FetchError,
    ImageError,
    ImageFacts,
    fetch_image,
    make_client,
    make_thumbnail,
)
from store.media.url_answers import ERROR_CODE_LENGTH
from store.schema.models import IMAGES, UrlState, utcnow
from store.schema.progress import Progress, no_progress

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
    """Everything one job learnt, ready for `store_image_facts`."""

    facts: ImageFacts | None = None
    error: str | None = None
    check: UrlCheck | None = None
    archive_path: str | None = None


def process_image(
    client: httpx.Client,
    url: str | None,
    data: bytes | None,
    *,
    archive_dir: Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
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
            return ImageOutcome(error=f"download failed: {exc}", check=check)
        check = UrlCheck(UrlState.live, utcnow(), fetched.status, None)
        data, content_type = fetched.data, fetched.content_type
    try:
        facts = make_thumbnail(data)
    except ImageError as exc:
        served = f" (served as {content_type})" if content_type else ""
        return ImageOutcome(error=f"{exc}{served}", check=check)
    archive_path = str(archive_original(archive_dir, facts, data)) if archive_dir else None
    return ImageOutcome(facts=facts, check=check, archive_path=archive_path)


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


def store_image_facts(
    engine: Engine, generation_id: str, position: int, outcome: ImageOutcome
) -> bool:
    """UPDATE the image row with what `outcome` learnt; False when the row does not exist (yet)."""
    values: dict[str, object] = {}
    if outcome.facts is not None:
        facts = outcome.facts
        values.update(
            sha256=facts.sha256,
            width=facts.width,
            height=facts.height,
            format=facts.format,
            byte_size=facts.byte_size,
            thumbnail=facts.thumbnail,
            thumbnail_error=None,
        )
    elif outcome.error is not None:
        values["thumbnail_error"] = outcome.error[:THUMBNAIL_ERROR_LENGTH]
    if outcome.archive_path is not None:
        values["archive_path"] = outcome.archive_path
    if outcome.check is not None:
        check = outcome.check
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
    key = (IMAGES.c.generation_id == generation_id) & (IMAGES.c.position == position)
    with engine.begin() as connection:
        if not values:
            return connection.execute(select(IMAGES.c.id).where(key)).first() is not None
        return connection.execute(update(IMAGES).where(key).values(**values)).rowcount > 0


class ThumbnailWorker:
    """`submit()` an image, get its thumbnail stored in the background; `join()` to wait.

    Thread-safe; `submit` never blocks or raises into the caller (a recorder must not slow or
    break the call it records). One httpx client is shared by the pool (it is thread-safe and
    reuses connections to the same CDN).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        archive_dir: Path | None = None,
        workers: int = 4,
        client: httpx.Client | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.engine = engine
        self.archive_dir = Path(archive_dir) if archive_dir is not None else None
        self.max_bytes = max_bytes
        self._owns_client = client is None
        self._client = client or make_client()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imagelog-thumb")
        self._pending = 0
        self._idle = threading.Condition()
        self._closed = False

    def submit(
        self, generation_id: str, position: int, url: str | None, data: bytes | None
    ) -> None:
        """Queue one image whose row is inserted; returns at once. Work submitted after close()
        is logged and dropped."""
        self._start(lambda: self._run(generation_id, position, url, data), generation_id, position)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every submitted image is stored (or given up on); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the submitted work (up to `timeout`), then stop the threads and the client."""
        self.join(timeout)
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> ThumbnailWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self, job: Callable[[], None], generation_id: str, position: int) -> None:
        if self._closed:
            log.warning(
                "thumbnail worker closed: image %s/%s not processed", generation_id, position
            )
            return
        with self._idle:
            self._pending += 1
        try:
            self._pool.submit(self._guarded, job)
        except RuntimeError:  # the pool shut down between the check and the submit
            log.warning(
                "thumbnail worker closed: image %s/%s not processed", generation_id, position
            )
            self._done()

    def _guarded(self, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:
            log.exception("thumbnail job failed")
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _run(self, generation_id: str, position: int, url: str | None, data: bytes | None) -> None:
        outcome = process_image(
            self._client, url, data, archive_dir=self.archive_dir, max_bytes=self.max_bytes
        )
        if not store_image_facts(self.engine, generation_id, position, outcome):
            log.warning("image %s/%s has no row: its thumbnail is dropped", generation_id, position)


@dataclass(frozen=True)
class RetrySummary:
    """What `retry_missing_thumbnails` did, for the CLI to print."""

    attempted: int
    stored: int  # got a thumbnail
    failed: int  # got a thumbnail_error instead (the URL may have been marked expired)
    expired: int  # of the failed, found expired now

    def describe(self) -> str:
        """One line for the CLI."""
        if not self.attempted:
            return "no images need a thumbnail"
        return (
            f"{self.attempted} images tried: {self.stored} thumbnails stored, "
            f"{self.failed} failed ({self.expired} of them expired)"
        )


def retry_missing_thumbnails(
    engine: Engine,
    *,
    limit: int | None = None,
    workers: int = 4,
    archive_dir: Path | None = None,
    client: httpx.Client | None = None,
    on_progress: Progress | None = None,
) -> RetrySummary:
    """Download again every image that has a URL, no thumbnail, and is not known expired."""
    query = (
        select(IMAGES.c.generation_id, IMAGES.c.position, IMAGES.c.url)
        .where(
            IMAGES.c.url.is_not(None),
            IMAGES.c.thumbnail.is_(None),
            IMAGES.c.url_state != UrlState.expired.value,
        )
        .order_by(IMAGES.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    owns_client = client is None
    client = client or make_client()

    def retry(row) -> ImageOutcome:
        outcome = process_image(client, row.url, None, archive_dir=archive_dir)
        store_image_facts(engine, row.generation_id, row.position, outcome)
        return outcome

    report = on_progress or no_progress
    report(0, len(rows))
    stored = failed = expired = 0
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done, outcome in enumerate(pool.map(retry, rows), start=1):
                if outcome.facts is not None:
                    stored += 1
                else:
                    failed += 1
                    expired += bool(outcome.check and outcome.check.state is UrlState.expired)
                report(done, len(rows))
    finally:
        if owns_client:
            client.close()
    return RetrySummary(attempted=len(rows), stored=stored, failed=failed, expired=expired)

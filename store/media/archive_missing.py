"""`imagelog archive --missing`: keep the originals of the images that have none in the archive.

An image's original is missing when the archive was off when it was saved, or the store was
down then (its `archive_error` says so). Each one is found the cheapest way that proves it:

1. the archive holds its content already (same sha256: another call made the same picture):
   the row is pointed at it, nothing is moved;
2. the original waits in the pending folder (the store was down at save time; the only copy
   of an image that came as base64): it is uploaded, then dropped from the folder;
3. its hosted URL is not known expired: it is downloaded through the network guard, like any
   thumbnail, and kept only if it hashes to the recorded sha256 (a host that now serves other
   bytes is no source of evidence). An image with no sha256 yet has no thumbnail either, and
   takes the whole save path (download, thumbnail, archive, UPDATE).

Else it is counted as lost (its URL expired, or its base64 bytes were never kept). Work runs
on a bounded pool, at most `per_host` downloads from one host at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.engine import Row

from store.media.archive import Archive, ArchiveError
from store.media.daemon_pool import DaemonPool
from store.media.fetch import DEFAULT_MAX_BYTES, FetchError, fetch_image, make_client
from store.media.network_guard import AllowedNetworks
from store.media.saving import ARCHIVE_ERROR_LENGTH, save_image
from store.media.thumbnail_worker import PER_HOST
from store.schema.models import IMAGES, UrlState
from store.schema.progress import Progress, no_progress


class Result(Enum):
    """What became of one image's original."""

    linked = "linked"  # the archive held its content already
    uploaded = "uploaded"  # from the pending folder
    fetched = "fetched"  # downloaded from its hosted URL
    failed = "failed"  # tried and not archived: the row's archive_error says why
    lost = "lost"  # nowhere to take it from


@dataclass(frozen=True)
class ArchiveSummary:
    """What `archive_missing` did, for the CLI to print."""

    counts: dict[Result, int]

    @property
    def attempted(self) -> int:
        return sum(self.counts.values())

    @property
    def archived(self) -> int:
        return sum(self.counts.get(r, 0) for r in (Result.linked, Result.uploaded, Result.fetched))

    def describe(self) -> str:
        """One line for the CLI."""
        if not self.attempted:
            return "every image's original is archived"
        count = self.counts.get
        return (
            f"{self.attempted} images without an archived original: {self.archived} archived "
            f"({count(Result.linked, 0)} already held, {count(Result.uploaded, 0)} from the "
            f"pending folder, {count(Result.fetched, 0)} downloaded), "
            f"{count(Result.failed, 0)} failed (see archive_error), "
            f"{count(Result.lost, 0)} lost (URL expired or base64 never kept)"
        )


def archive_missing(
    engine: Engine,
    archive: Archive,
    *,
    limit: int | None = None,
    workers: int = 4,
    per_host: int = PER_HOST,
    client: httpx.Client | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_progress: Progress | None = None,
    allowed_networks: AllowedNetworks = None,
) -> ArchiveSummary:
    """Archive the original of every image that has none (see the module's docstring)."""
    query = (
        select(
            IMAGES.c.generation_id,
            IMAGES.c.position,
            IMAGES.c.url,
            IMAGES.c.url_state,
            IMAGES.c.sha256,
            IMAGES.c.format,
        )
        .where(IMAGES.c.archive_path.is_(None))
        .where(or_(IMAGES.c.sha256.is_not(None), IMAGES.c.url.is_not(None)))
        .order_by(IMAGES.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        rows: Sequence[Row] = connection.execute(query).all()
    report = on_progress or no_progress
    report(0, len(rows))
    counts = dict.fromkeys(Result, 0)
    owned = client is None
    http = client or make_client(allowed_networks=allowed_networks)
    pool = DaemonPool(workers, "imagelog-archive", per_key=per_host)
    try:
        job = _Job(engine, archive, http, max_bytes)
        for done, result in enumerate(pool.map(job, rows, key=_host), start=1):
            counts[result] += 1
            report(done, len(rows))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if owned:
            http.close()
    return ArchiveSummary({result: n for result, n in counts.items() if n})


@dataclass(frozen=True)
class _Job:
    engine: Engine
    archive: Archive
    client: httpx.Client
    max_bytes: int

    def __call__(self, row: Row) -> Result:
        hosted = row.url is not None and row.url_state != UrlState.expired.value
        if row.sha256 is None:  # never thumbnailed: the whole save path, while the URL lives
            if not hosted:
                return Result.lost
            outcome = save_image(
                self.engine,
                self.client,
                row.generation_id,
                row.position,
                row.url,
                None,
                archive=self.archive,
                max_bytes=self.max_bytes,
            )
            return Result.fetched if outcome.archive_path else Result.failed
        try:
            result, location = self._keep(row, hosted)
        except (ArchiveError, FetchError) as exc:
            self._set(row, archive_error=f"not archived: {exc}"[:ARCHIVE_ERROR_LENGTH])
            return Result.failed
        if location is None:
            return Result.lost
        self._set(row, archive_path=location, archive_error=None)
        return result

    def _keep(self, row: Row, hosted: bool) -> tuple[Result, str | None]:
        sha, image_format = row.sha256, row.format
        if (location := self.archive.find(sha, image_format)) is not None:
            self.archive.drop_pending(sha, image_format)
            return Result.linked, location
        if (data := self.archive.pending(sha, image_format)) is not None:
            location = self.archive.store(sha, image_format, data)
            self.archive.drop_pending(sha, image_format)
            return Result.uploaded, location
        if not hosted:
            return Result.lost, None
        fetched = fetch_image(self.client, row.url, max_bytes=self.max_bytes)
        served = hashlib.sha256(fetched.data).hexdigest()
        if served != sha:
            raise ArchiveError(
                f"the URL now serves other bytes (sha256 {served[:12]}…) than the recorded "
                "image: they are no evidence of it"
            )
        return Result.fetched, self.archive.store(sha, image_format, fetched.data)

    def _set(self, row: Row, **values: object) -> None:
        key = (IMAGES.c.generation_id == row.generation_id) & (IMAGES.c.position == row.position)
        with self.engine.begin() as connection:
            connection.execute(update(IMAGES).where(key).values(**values))


def _host(row: Row) -> str | None:
    """The per-host limit's key: only a download needs one, but every row may lead to one."""
    if row.url is None:
        return None
    return urlsplit(row.url).netloc.lower() or None

"""`imagelog thumbnails`: save again every image that has a URL, no thumbnail, and is not known
expired (its first download failed, or the recorder ran with thumbnails off)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import Engine, select

from store.media.archive import Archive
from store.media.network_guard import AllowedNetworks
from store.media.thumbnail_worker import ThumbnailWorker
from store.schema.models import IMAGES, UrlState
from store.schema.progress import Progress, no_progress


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
    archive: Archive | None = None,
    client: httpx.Client | None = None,
    on_progress: Progress | None = None,
    allowed_networks: AllowedNetworks = None,
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
    report = on_progress or no_progress
    report(0, len(rows))
    stored = failed = expired = 0
    with ThumbnailWorker(
        engine,
        archive=archive,
        workers=workers,
        client=client,
        allowed_networks=allowed_networks,
    ) as worker:
        images = ((row.generation_id, row.position, row.url) for row in rows)
        for done, outcome in enumerate(worker.save_all(images), start=1):
            if outcome.facts is not None:
                stored += 1
            else:
                failed += 1
                expired += bool(outcome.check and outcome.check.state is UrlState.expired)
            report(done, len(rows))
    return RetrySummary(attempted=len(rows), stored=stored, failed=failed, expired=expired)

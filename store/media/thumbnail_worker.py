"""A pool of download threads that saves images (`store.media.saving.save_image`) while their
URLs still live.

Provider URLs die within the hour (BFL after 10 minutes), so the recorder hands every image to
this pool the moment its row is inserted (`submit`, in the background). `imagelog thumbnails`
and `check` use the same pool and the same path, and wait for the results (`save_all`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
from sqlalchemy import Engine

from store.media.daemon_pool import DaemonPool
from store.media.fetch import DEFAULT_MAX_BYTES, make_client
from store.media.network_guard import AllowedNetworks
from store.media.saving import ImageOutcome, save_image

log = logging.getLogger(__name__)


class ThumbnailWorker:
    """`submit()` an image, get it saved in the background; `join()` to wait. Or `save_all()`.

    Thread-safe; `submit` never blocks or raises into the caller (a recorder must not slow or
    break the call it records). One httpx client is shared by the pool (it is thread-safe and
    reuses connections to the same CDN): `make_client(allowed_networks=...)`'s unless `client`
    is given.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        archive_dir: str | Path | None = None,
        workers: int = 4,
        client: httpx.Client | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allowed_networks: AllowedNetworks = None,
    ) -> None:
        self.engine = engine
        self.archive_dir = Path(archive_dir) if archive_dir is not None else None
        self.max_bytes = max_bytes
        self._owns_client = client is None
        self._client = client or make_client(allowed_networks=allowed_networks)
        self._pool = DaemonPool(workers, "imagelog-thumb")  # it serves the recorder's exit drain
        self._pending = 0
        self._idle = threading.Condition()
        self._closed = False

    def submit(
        self, generation_id: str, position: int, url: str | None, data: bytes | None
    ) -> None:
        """Queue one image whose row is inserted; returns at once. Work submitted after
        close() is logged and dropped."""
        if self._closed:
            self._dropped(generation_id, position)
            return
        with self._idle:
            self._pending += 1
        try:
            self._pool.submit(self._guarded, generation_id, position, url, data)
        except RuntimeError:  # the pool shut down between the check and the submit
            self._dropped(generation_id, position)
            self._done()

    def save_all(self, images: Iterable[tuple[str, int, str]]) -> Iterator[ImageOutcome]:
        """Download and save each (generation_id, position, url) on the pool; yields their
        outcomes in the order given, as they come (for callers that wait and count)."""
        return self._pool.map(self._save_hosted, images)

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

    def _save(
        self, generation_id: str, position: int, url: str | None, data: bytes | None
    ) -> ImageOutcome:
        return save_image(
            self.engine,
            self._client,
            generation_id,
            position,
            url,
            data,
            archive_dir=self.archive_dir,
            max_bytes=self.max_bytes,
        )

    def _save_hosted(self, image: tuple[str, int, str]) -> ImageOutcome:
        generation_id, position, url = image
        return self._save(generation_id, position, url, None)

    def _guarded(
        self, generation_id: str, position: int, url: str | None, data: bytes | None
    ) -> None:
        try:
            self._save(generation_id, position, url, data)
        except Exception:
            log.exception("thumbnail job failed")
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    @staticmethod
    def _dropped(generation_id: str, position: int) -> None:
        log.warning("thumbnail worker closed: image %s/%s not processed", generation_id, position)

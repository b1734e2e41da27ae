"""A pool of download threads that saves images (`store.media.saving.save_image`) while their
URLs still live.

Provider URLs die within the hour (BFL after 10 minutes), so the recorder hands every image to
this pool the moment its row is inserted (`submit`, in the background). `imagelog thumbnails`
and `check` use the same pool and the same path, and wait for the results (`save_all`).

A host is anyone's (logged URLs come from imports and gateways), and a slow one holds a thread
for a download's whole deadline: at most `per_host` downloads from one host run at once and
its other images wait their turn, so the other hosts' images keep being saved. `close()` is
bounded by its timeout: what is not done by then is dropped with a log line, and `imagelog
thumbnails` fills it in later (the rows are stored; only the thumbnail is missing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine

from store.media.archive import Archive
from store.media.daemon_pool import DaemonPool
from store.media.fetch import DEFAULT_MAX_BYTES, make_client
from store.media.network_guard import AllowedNetworks
from store.media.saving import ImageOutcome, save_image

log = logging.getLogger(__name__)

#: Downloads from one host at a time: half of the default four threads.
PER_HOST = 2


class ThumbnailWorker:
    """`submit()` an image, get it saved in the background; `join()` to wait. Or `save_all()`.

    Thread-safe; `submit` never blocks or raises into the caller (a recorder must not slow or
    break the call it records). One httpx client is shared by the pool (it is thread-safe and
    reuses connections to the same CDN): `make_client(allowed_networks=...)`'s unless `client`
    is given. `archive`: where full-size originals are kept too (none by default).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        archive: Archive | None = None,
        workers: int = 4,
        client: httpx.Client | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allowed_networks: AllowedNetworks = None,
        per_host: int = PER_HOST,
    ) -> None:
        self.engine = engine
        self.archive = archive
        self.max_bytes = max_bytes
        self._owns_client = client is None
        self._client = client or make_client(allowed_networks=allowed_networks)
        # Daemon threads: they serve the recorder's drain at exit.
        self._pool = DaemonPool(workers, "imagelog-thumb", per_key=per_host)
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
            host = _host(url) if data is None else None  # bytes at hand: no download
            self._pool.submit(self._guarded, generation_id, position, url, data, key=host)
        except RuntimeError:  # the pool shut down between the check and the submit
            self._dropped(generation_id, position)
            self._done()

    def save_all(self, images: Iterable[tuple[str, int, str]]) -> Iterator[ImageOutcome]:
        """Download and save each (generation_id, position, url) on the pool; yields their
        outcomes in the order given, as they come (for callers that wait and count)."""
        return self._pool.map(self._save_hosted, self._counted(images), key=lambda i: _host(i[2]))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every image submitted or queued by `save_all` is stored (or given up
        on); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the submitted work (up to `timeout`), then stop the threads and the client.

        Returns within `timeout`: images still waiting then are dropped, and downloads still
        running are left to their daemon threads (they end with the program at the latest);
        one log line counts both.
        """
        finished = self.join(timeout)
        self._closed = True
        dropped = self._pool.shutdown(wait=finished, cancel_futures=True)
        with self._idle:
            self._pending -= dropped
            running = self._pending
            self._idle.notify_all()
        if dropped or running:
            log.warning(
                "thumbnail worker closed with %d image(s) not saved (%d waiting, "
                "%d downloading): `imagelog thumbnails` saves them later",
                dropped + running,
                dropped,
                running,
            )
        if self._owns_client and not running:  # a running download still uses it
            self._client.close()

    def __enter__(self) -> ThumbnailWorker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        # Interrupted (Ctrl-C, an error in the caller's loop): stop now, not after the queue.
        self.close(0 if exc_type else None)

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
            archive=self.archive,
            max_bytes=self.max_bytes,
        )

    def _counted(self, images: Iterable[tuple[str, int, str]]) -> Iterator[tuple[str, int, str]]:
        """The images, each counted as pending as it is queued (as `submit` counts its own)."""
        for image in images:
            with self._idle:
                self._pending += 1
            yield image

    def _save_hosted(self, image: tuple[str, int, str]) -> ImageOutcome:
        generation_id, position, url = image
        try:
            return self._save(generation_id, position, url, None)
        finally:
            self._done()

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


def _host(url: str | None) -> str | None:
    """The host and port a download goes to: the unit of the per-host limit."""
    if url is None:
        return None
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2].lower() or None

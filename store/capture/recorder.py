"""The recorder: every way a call is captured ends in its queue, and nothing it does can fail or
slow the call it records.

`record()` only enqueues. One background thread drains the queue in batches, turns captured
HTTP exchanges into records (parsing happens here, not on the caller's thread), inserts them
with `store.capture.writer.insert_calls`, and hands each image to the thumbnail worker while its URL
still lives. When the database cannot be reached, batches go to the spool file and are replayed
once it answers again. Every failure is logged (never with a secret) and swallowed.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from store.capture.openai_exchange import Exchange, exchange_to_record
from store.capture.providers import infer_route
from store.capture.redaction import describe_exception
from store.capture.spool import Spool, default_spool_path
from store.capture.tracking import TrackedCall
from store.capture.transport import async_recording_client, recording_client
from store.capture.writer import insert_calls
from store.media.network_guard import AllowedNetworks
from store.media.thumbnail_worker import ThumbnailWorker
from store.schema.config import database_url as configured_url
from store.schema.db import UNAVAILABLE_ERRORS, make_engine, upgrade_schema
from store.schema.models import Status
from store.schema.records import CallRecord

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database could not be reached; the batch belongs in the spool."""


class _Barrier:
    """Put in the queue by `flush()`: released once everything queued before it is handled."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.stored = False  # True when nothing was left waiting in the spool


_STOP = object()
_LIVE: weakref.WeakSet[Recorder] = weakref.WeakSet()


class Recorder:
    """Records image-generation calls into the log database, in the background.

    `database_url`: any SQLAlchemy URL; default `IMAGELOG_DATABASE_URL`, else the SQLite file
    of `store.schema.config`. `archive_dir`: keep full-size copies there (off by default).
    `thumbnails=False` skips the thumbnail worker. `spool_path`: where records wait while the
    database is down (default: beside a SQLite file, or in the data folder). A batch holds up
    to `batch_size` records gathered for up to `batch_wait` seconds; an absent database is
    tried again every `retry_interval` seconds; the drain at exit waits `exit_timeout`.
    `allowed_networks`: the networks thumbnail downloads may reach besides public addresses
    (default `IMAGELOG_ALLOWED_NETWORKS`; see `store.media.network_guard`).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        archive_dir: str | Path | None = None,
        thumbnails: bool = True,
        thumbnail_workers: int = 4,
        spool_path: str | Path | None = None,
        batch_size: int = 500,
        batch_wait: float = 0.1,
        max_queue: int = 10_000,
        retry_interval: float = 5.0,
        exit_timeout: float = 10.0,
        allowed_networks: AllowedNetworks = None,
    ) -> None:
        url = configured_url(database_url)
        # No connection yet: a database that is down must not stop the caller's program.
        self.engine: Engine = make_engine(url, upgrade=False)
        self.spool = Spool(Path(spool_path) if spool_path else default_spool_path(url))
        self.thumbnails: ThumbnailWorker | None = (
            ThumbnailWorker(
                self.engine,
                archive_dir=archive_dir,
                workers=thumbnail_workers,
                allowed_networks=allowed_networks,
            )
            if thumbnails
            else None
        )
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.retry_interval = retry_interval
        self.exit_timeout = exit_timeout
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._schema_ready = False
        self._retry_at = 0.0  # monotonic time before which the database is taken to be down
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="imagelog-writer", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    # --- ways in ------------------------------------------------------------------------------

    def record(self, call: CallRecord | Exchange) -> None:
        """Queue a call for writing; returns at once and never raises."""
        if not isinstance(call, CallRecord | Exchange):
            log.error("record() takes a CallRecord, got %s: ignored", type(call).__name__)
            return
        if self._closed:  # no writer thread any more: keep it in the spool
            self._spool_items([call])
            return
        try:
            self._queue.put_nowait(call)
        except queue.Full:
            log.warning("recorder queue full: writing one record to the spool directly")
            self._spool_items([call])
        except Exception:
            log.exception("could not queue a record")

    def httpx_client(
        self, *, transport: httpx.BaseTransport | None = None, **kwargs: Any
    ) -> httpx.Client:
        """An `httpx.Client` that records images calls; pass it as `OpenAI(http_client=...)`.

        It has the SDK's own timeout, connection limits and redirects, and honours proxy
        settings as httpx does. `transport`: a transport of your own to wrap; other keyword
        arguments go to `httpx.Client`.
        """
        return recording_client(self.record, transport, **kwargs)

    def async_httpx_client(
        self, *, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
    ) -> httpx.AsyncClient:
        """The async twin of `httpx_client`, for `AsyncOpenAI(http_client=...)`."""
        return async_recording_client(self.record, transport, **kwargs)

    def track(
        self,
        *,
        provider: str,
        model: str = "",
        prompt: str = "",
        params: dict[str, Any] | None = None,
        operation: str = "generate",
        **fields: Any,
    ) -> TrackedCall:
        """A context manager that records a call made through any other SDK.

        Extra keyword arguments (`user`, `request_id`, `metadata`, `cost_usd`...) are
        `CallRecord` fields.
        """
        return TrackedCall(
            self.record,
            provider=provider,
            model=model,
            prompt=prompt,
            params=params or {},
            operation=operation,
            **fields,
        )

    # --- waiting and closing ------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is in the database and has its thumbnail.

        Returns False on timeout, or when records still wait in the spool (database down).
        """
        if self._closed:
            return not self.spool.pending()
        deadline = None if timeout is None else time.monotonic() + timeout
        barrier = _Barrier()
        try:
            self._queue.put(barrier, timeout=timeout)
        except queue.Full:
            return False
        if not barrier.done.wait(_remaining(deadline)):
            return False
        if self.thumbnails is not None and not self.thumbnails.join(_remaining(deadline)):
            return False
        return barrier.stored

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to `timeout`), stop the threads and release the database.

        Anything still queued when time runs out goes to the spool: nothing is dropped.
        """
        with self._close_lock:
            if self._closed:
                return
            deadline = None if timeout is None else time.monotonic() + timeout
            self.flush(timeout)
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(_remaining(deadline))
            self._spool_items(_drain(self._queue))
            if self.thumbnails is not None:
                self.thumbnails.close(_remaining(deadline))
            self.engine.dispose()
            _LIVE.discard(self)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        # Upgrade an existing log on start, as the app does; an absent database is retried later.
        with contextlib.suppress(Exception):
            self._ensure_schema()
        while True:
            items = self._next_batch()
            barriers = [item for item in items if isinstance(item, _Barrier)]
            stop = any(item is _STOP for item in items)
            calls = [i for i in items if not isinstance(i, _Barrier) and i is not _STOP]
            try:
                self._handle(calls, force_replay=bool(barriers))
            except Exception:  # the thread must outlive any bug: log and go on
                log.exception("recorder writer failed on a batch of %d", len(calls))
            for barrier in barriers:
                barrier.stored = not self.spool.pending()
                barrier.done.set()
            if stop:
                return

    def _next_batch(self) -> list[Any]:
        """Up to `batch_size` items: waits `batch_wait` after the first for more to come, since
        one insert of many rows costs a fraction of many inserts of one (and so does the CPU
        taken from the caller's threads). A flush or close cuts the wait short."""
        try:
            items = [self._queue.get(timeout=self.retry_interval)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_wait
        while len(items) < self.batch_size and not _urgent(items[-1]):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                items.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return items

    def _handle(self, calls: list[Any], *, force_replay: bool) -> None:
        records = [_to_record(call) for call in calls]
        if records:
            if self._database_resting():
                self.spool.append(records)
            else:
                try:
                    self._write(records)
                except DatabaseUnavailable:
                    self.spool.append(records)
        if self.spool.pending() and (force_replay or not self._database_resting()):
            # An outage is logged by _write; the spool keeps everything for the next try.
            with contextlib.suppress(DatabaseUnavailable):
                self.spool.replay(self._write)

    def _database_resting(self) -> bool:
        return time.monotonic() < self._retry_at

    def _write(self, records: Sequence[CallRecord]) -> None:
        """Insert a batch and queue its thumbnails; DatabaseUnavailable when the database is away.

        A batch the database refuses for its content is retried record by record, and the
        records it still refuses are set aside in the spool's rejected file, with the reason.
        """
        self._ensure_schema()  # no schema, no insert: DatabaseUnavailable keeps the batch for later
        try:
            insert_calls(self.engine, records)
        except UNAVAILABLE_ERRORS as exc:
            raise self._unavailable(exc) from exc
        except Exception:
            self._write_one_by_one(records)
            return
        if self._retry_at:
            log.info("database reachable again")
        self._retry_at = 0.0
        self._submit_thumbnails(records)

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        """Note the outage (no new attempt before `retry_interval`) and log it, secret-free.

        Logged as a warning when it starts, at debug level while it lasts.
        """
        level = logging.DEBUG if self._retry_at else logging.WARNING
        self._retry_at = time.monotonic() + self.retry_interval
        log.log(level, "database unavailable (%s)", describe_exception(exc))
        return DatabaseUnavailable(describe_exception(exc))

    def _write_one_by_one(self, records: Sequence[CallRecord]) -> None:
        for record in records:
            try:
                insert_calls(self.engine, [record])
            except UNAVAILABLE_ERRORS as exc:
                raise self._unavailable(exc) from exc
            except Exception as exc:
                self.spool.reject(record, f"database refused the record: {describe_exception(exc)}")
                continue
            self._submit_thumbnails([record])

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            try:
                upgrade_schema(self.engine)
            except Exception as exc:
                raise self._unavailable(exc) from exc
            self._schema_ready = True

    def _submit_thumbnails(self, records: Sequence[CallRecord]) -> None:
        if self.thumbnails is None:
            return
        for record in records:
            for position, image in enumerate(record.images):
                if image.thumbnail is None and (image.url or image.data):
                    self.thumbnails.submit(record.id, position, image.url, image.data)

    def _spool_items(self, items: Sequence[Any]) -> None:
        records = [_to_record(item) for item in items if item is not _STOP]
        try:
            self.spool.append(records)
        except Exception:
            log.exception("could not write %d record(s) to the spool", len(records))


def _to_record(call: CallRecord | Exchange) -> CallRecord:
    """A record for the queue item; an exchange that cannot be parsed still leaves a trace."""
    if isinstance(call, CallRecord):
        return call
    try:
        return exchange_to_record(call)
    except Exception as exc:
        log.exception("could not parse a recorded images call")
        url = httpx.URL(call.url)
        return CallRecord(
            created_at=call.started_at,
            provider=infer_route(url.host, url.path, {}).provider,
            status=Status.error,
            error=f"imagelog could not parse this call: {describe_exception(exc)}",
            http_status=call.status,
            latency_ms=call.latency_ms,
            source="httpx",
        )


def _urgent(item: Any) -> bool:
    return item is _STOP or isinstance(item, _Barrier)


def _drain(q: queue.Queue[Any]) -> list[Any]:
    """Everything left in the queue, without waiting."""
    items: list[Any] = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            break
    return items


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _close_all() -> None:
    """At exit, drain every live recorder, each for up to its `exit_timeout`.

    A plain `atexit` handler runs once the program's own (non-daemon) threads are joined, so
    their last records are queued by then; the writer thread and the thumbnail worker's
    `DaemonPool` are daemon threads, so they are still serving while it drains.
    """
    for recorder in list(_LIVE):
        try:
            recorder.close(recorder.exit_timeout)
        except Exception:
            log.exception("recorder drain at exit failed")


atexit.register(_close_all)

"""The recorder: every way a call is captured ends in its queue, and nothing it does can fail or
slow the call it records.

`record()` only enqueues. One background thread drains the queue in batches, turns captured
HTTP exchanges into records (parsing happens here, not on the caller's thread), inserts them
with `store.capture.writer.insert_calls`, and hands each image to the thumbnail worker while its URL
still lives. When the database cannot be reached, batches go to the spool file and are replayed
once it answers again, a batch at a time between the queue's own batches. Every failure is
logged (never with a secret) and swallowed.

Nothing here waits on the caller's thread. When the writer falls behind and its queue is full,
a record goes to a second queue of the same size, which a spooler thread appends to the spool
(no database, so it keeps up while the writer waits on one); only when both are full is a record
dropped, logged and counted in `dropped`. `close()` and the exit hook return within their
timeout whatever the database and the image hosts do, leaving what is unfinished in the spool
(records) or to `imagelog thumbnails` (thumbnails).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from store.capture.context import CallContext, call_context, checked
from store.capture.context import current as current_context
from store.capture.openai_exchange import Exchange, exchange_to_record
from store.capture.providers import configured_hosts, infer_route
from store.capture.redaction import describe_exception
from store.capture.spool import Spool, default_spool_path
from store.capture.tracking import TrackedCall
from store.capture.transport import async_recording_client, recording_client, stack_of
from store.capture.writer import insert_calls
from store.media.archive import Archive
from store.media.network_guard import AllowedNetworks
from store.media.thumbnail_worker import ThumbnailWorker
from store.schema.config import database_url as configured_url
from store.schema.db import UNAVAILABLE_ERRORS, make_engine, upgrade_schema
from store.schema.models import Status
from store.schema.records import CallRecord

log = logging.getLogger(__name__)

#: How often the writer looks again while a flush waits for overflowing records to be spooled.
FLUSH_POLL = 0.05


class DatabaseUnavailable(Exception):
    """The database could not be reached; the batch belongs in the spool."""


class _Barrier:
    """Put in the queue by `flush()`: released once everything queued before it is handled."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.stored = False  # True when every record before it is in the database
        self.missing = ""  # else what was not stored, and where it is


_STOP = object()
_LIVE: weakref.WeakSet[Recorder] = weakref.WeakSet()


class Recorder:
    """Records image-generation calls into the log database, in the background.

    `database_url`: any SQLAlchemy URL; default `IMAGELOG_DATABASE_URL`, else the SQLite file
    of `store.schema.config`. `archive`: keep every full-size original there too, a folder or
    any fsspec URL (`s3://bucket/prefix`; default `IMAGELOG_ARCHIVE`, else off), opened with
    `archive_options` (fsspec storage options such as an `endpoint_url`; credentials come from
    the store's environment, see `store.media.archive`). A location that is not one (a password
    or token in it, a `..`) raises ValueError here, before any call is recorded.
    `thumbnails=False` skips the thumbnail worker. `spool_path`: where records wait while the
    database is down (default: beside a SQLite file, or in the data folder). A batch holds up
    to `batch_size` records gathered for up to `batch_wait` seconds; an absent database is
    tried again every `retry_interval` seconds; the drain at exit waits `exit_timeout`.
    `allowed_networks`: the networks thumbnail downloads may reach besides public addresses
    (default `IMAGELOG_ALLOWED_NETWORKS`; see `store.media.network_guard`).
    A malformed `IMAGELOG_PROVIDER_HOSTS` raises ValueError here (see `store.capture.providers`).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        archive: str | PathLike[str] | None = None,
        archive_options: Mapping[str, Any] | None = None,
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
        configured_hosts()  # a bad IMAGELOG_PROVIDER_HOSTS fails here, loudly, not per call
        # No connection yet: a database that is down must not stop the caller's program.
        self.engine: Engine = make_engine(url, upgrade=False)
        self.spool = Spool(Path(spool_path) if spool_path else default_spool_path(url))
        self.archive = Archive.configured(archive, storage_options=archive_options)
        self.thumbnails: ThumbnailWorker | None = (
            ThumbnailWorker(
                self.engine,
                archive=self.archive,
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
        self._overflow: queue.Queue[Any] = queue.Queue(maxsize=max_queue)  # for the spooler
        self._schema_ready = False
        self._retry_at = 0.0  # monotonic time before which the database is taken to be down
        self._closed = False
        self._close_lock = threading.Lock()
        self.dropped = 0  # records dropped: the queue and the overflow were both full
        self._dropped_lock = threading.Lock()
        self._in_hand: list[CallRecord] = []  # the batch the writer is writing right now
        self._reported = (0, 0)  # rejected and dropped counts already told by a flush
        self._thread = threading.Thread(target=self._run, name="imagelog-writer", daemon=True)
        self._thread.start()
        self._spooler = threading.Thread(target=self._spool_overflow, name="imagelog-spooler")
        self._spooler.daemon = True
        self._spooler.start()
        _LIVE.add(self)

    # --- ways in ------------------------------------------------------------------------------

    def record(self, call: CallRecord | Exchange) -> None:
        """Queue a call for writing; returns at once and never raises.

        Never waits: when the queue is full, the record goes to the spooler's queue; when that
        is full too, it is dropped, logged and counted in `dropped`, and the next `flush()`
        returns False. After `close()` it is appended to the spool on the caller's thread.
        """
        if not isinstance(call, CallRecord | Exchange):
            log.error("record() takes a CallRecord, got %s: ignored", type(call).__name__)
            return
        if self._closed:  # no writer thread any more: keep it in the spool
            self._spool_items([call])
            return
        try:
            self._queue.put_nowait(call)
        except queue.Full:
            self._overflow_or_drop(call)
        except Exception:
            log.exception("could not queue a record")

    def httpx_client(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        provider: str | None = None,
        user: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Client:
        """An `httpx.Client` that records images calls; pass it as `OpenAI(http_client=...)`.

        It has the SDK's own timeout, connection limits and redirects, and honours proxy
        settings as httpx does. `transport`: a transport of your own to wrap. `provider`,
        `user` and `metadata`: the call context of every call it records (a narrower scope
        wins: see `context()`). Other keyword arguments go to `httpx.Client`.
        """
        return self._client("httpx", False, transport, provider, user, metadata, kwargs)

    def async_httpx_client(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        provider: str | None = None,
        user: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> httpx.AsyncClient:
        """The async twin of `httpx_client`, for `AsyncOpenAI(http_client=...)`."""
        return self._client("httpx", True, transport, provider, user, metadata, kwargs)

    def httpx2_client(
        self,
        *,
        transport: Any = None,
        provider: str | None = None,
        user: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """`httpx_client` made of httpx2 (an `httpx2.Client`), the library openai 3.x is built
        on: the SDK then takes it as its own kind of client, and an `httpx2.MockTransport` of
        the SDK's test tooling can be wrapped as `transport`. httpx2 must be installed."""
        return self._client("httpx2", False, transport, provider, user, metadata, kwargs)

    def async_httpx2_client(
        self,
        *,
        transport: Any = None,
        provider: str | None = None,
        user: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The async twin of `httpx2_client` (an `httpx2.AsyncClient`)."""
        return self._client("httpx2", True, transport, provider, user, metadata, kwargs)

    def http_client_for(
        self,
        sdk: Any,
        *,
        asynchronous: bool = False,
        transport: Any = None,
        provider: str | None = None,
        user: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The recording client made of the HTTP library `sdk` is built on (httpx2 for openai
        3.x, httpx before), so a program carries one HTTP stack: `OpenAI(http_client=
        recorder.http_client_for(openai))`. `sdk`: the SDK's module, a class or a client of
        it; `asynchronous=True` for `AsyncOpenAI`. The other arguments are `httpx_client`'s.
        """
        stack = stack_of(sdk)
        return self._client(stack, asynchronous, transport, provider, user, metadata, kwargs)

    def _client(
        self,
        stack: str,
        asynchronous: bool,
        transport: Any,
        provider: str | None,
        user: str | None,
        metadata: Mapping[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> Any:
        context = checked(provider=provider, user=user, metadata=metadata)
        make = async_recording_client if asynchronous else recording_client
        return make(self.record, transport, context=context, stack=stack, **kwargs)

    @contextlib.contextmanager
    def context(
        self,
        *,
        provider: str | None = None,
        user: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[CallContext]:
        """`with recorder.context(user="u-1", metadata={"team": "ads"}):` every call recorded
        in the block, by a client or `track()`, in this thread or an asyncio task it starts,
        gets this user, provider and metadata.

        The narrowest scope wins: a request's own `x-imagelog-*` headers (and its body's
        `user`, its Portkey metadata), then the innermost block, then the client's arguments,
        then what imagelog infers. Metadata merges key by key in that order.
        """
        with call_context(provider=provider, user=user, metadata=metadata) as context:
            yield context

    def track(
        self,
        *,
        provider: str | None = None,
        model: str = "",
        prompt: str = "",
        params: dict[str, Any] | None = None,
        operation: str = "generate",
        **fields: Any,
    ) -> TrackedCall:
        """A context manager that records a call made through any other SDK.

        `provider` may be left to the enclosing `context(provider=...)`; TypeError when neither
        names one. Extra keyword arguments (`user`, `request_id`, `metadata`, `cost_usd`...) are
        `CallRecord` fields; the enclosing `context()` fills the user and metadata they leave out.
        """
        provider = provider or current_context().provider
        if not provider:
            raise TypeError("track() needs a provider, or a recorder.context(provider=...) block")
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

        True only if every record since the previous flush is stored. False, with a warning
        that says why, on timeout, or when a record was not stored: it waits in the spool (the
        database is down), it was set aside in the rejected file (the database refused it, or
        a spool line was unreadable), or it was dropped (see `record()`).
        """
        if self._closed:
            if self.spool.pending():
                log.warning("flush after close: records wait in the spool %s", self.spool.path)
            return not self.spool.pending()
        deadline = None if timeout is None else time.monotonic() + timeout
        barrier = _Barrier()
        try:
            self._queue.put(barrier, timeout=timeout)
        except queue.Full:
            log.warning("flush timed out after %ss: the recorder queue stayed full", timeout)
            return False
        if not barrier.done.wait(_remaining(deadline)):
            log.warning("flush timed out after %ss: records still being written", timeout)
            return False
        if self.thumbnails is not None and not self.thumbnails.join(_remaining(deadline)):
            log.warning("flush timed out after %ss: thumbnails still being saved", timeout)
            return False
        if not barrier.stored:
            log.warning("flush: not every record was stored: %s", barrier.missing)
        return barrier.stored

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to `timeout`), stop the threads and release the database.

        Returns within `timeout` (plus an fsync): records not written by then go to the spool,
        those still queued and those the writer holds (a database that does not answer), so
        no record is dropped. Thumbnails still waiting or downloading are dropped with a log
        line; their rows are stored, and `imagelog thumbnails` saves them later.
        """
        with self._close_lock:
            if self._closed:
                return
            deadline = None if timeout is None else time.monotonic() + timeout
            self.flush(timeout)
            self._closed = True
            for items in (self._queue, self._overflow):
                with contextlib.suppress(queue.Full):  # full: its thread stops once it is empty
                    items.put_nowait(_STOP)
            self._thread.join(_remaining(deadline))
            self._spooler.join(_remaining(deadline))
            # A writer stuck in the database keeps its batch: spool a copy (ids dedupe a replay).
            stuck = list(self._in_hand) if self._thread.is_alive() else []
            left = _drain(self._queue)
            self._spool_items([*stuck, *left, *_drain(self._overflow)])
            for barrier in (item for item in left if isinstance(item, _Barrier)):
                barrier.missing = f"the recorder closed first; records kept in {self.spool.path}"
                barrier.done.set()  # a flush from another thread: answered False, not left waiting
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
        waiting: list[_Barrier] = []  # flushes waiting for the spool to be replayed
        while True:
            if self.spool.pending() and not self._database_resting():
                items = self._next_batch(0.0, 0.0)  # what is queued, then back to the replay
            elif waiting:  # a flush waits for the spooler: look again soon
                items = self._next_batch(FLUSH_POLL, self.batch_wait)
            else:
                items = self._next_batch(self.retry_interval, self.batch_wait)
            barriers = [item for item in items if isinstance(item, _Barrier)]
            stop = any(item is _STOP for item in items) or (self._closed and not items)
            calls = [i for i in items if not isinstance(i, _Barrier) and i is not _STOP]
            outage = False
            try:
                outage = self._handle(calls)
            except Exception:  # the thread must outlive any bug: log and go on
                log.exception("recorder writer failed on a batch of %d", len(calls))
            # One batch of the spool between two of the queue: callers' records keep flowing.
            # A flush tries the database at once, unless this batch just found it away.
            if self.spool.pending() and not outage and (barriers or not self._database_resting()):
                self._replay_step()
            waiting += barriers
            if waiting and (stop or self._all_written() or self._database_resting()):
                self._release(waiting)
                waiting = []
            if stop:
                return

    def _next_batch(self, wait: float, gather: float) -> list[Any]:
        """Up to `batch_size` items, the first awaited up to `wait` seconds, then more for up to
        `gather` seconds (`batch_wait`), since one insert of many rows costs a fraction of many
        inserts of one (and so does the CPU taken from the caller's threads). Items already
        queued are taken without waiting; a flush or close cuts the gathering short."""
        try:
            items = [self._queue.get(timeout=wait)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + gather
        while len(items) < self.batch_size and not _urgent(items[-1]):
            try:  # a timeout of 0 still takes an item that is already there
                items.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return items

    def _handle(self, calls: list[Any]) -> bool:
        """Write the calls, or spool them while the database is away; True when this try found
        it away (an outage is logged by _write)."""
        records = [_to_record(call) for call in calls]
        if not records:
            return False
        self._in_hand = records
        try:
            if self._database_resting():
                self.spool.append(records)
                return False
            try:
                self._write(records)
            except DatabaseUnavailable:
                self.spool.append(records)
                return True
            return False
        finally:
            self._in_hand = []

    def _replay_step(self) -> None:
        """Write the spool's next batch; the spool keeps everything for the next try."""
        try:
            self.spool.replay_step(self._write)
        except DatabaseUnavailable:
            pass  # logged by _unavailable
        except Exception:
            log.exception("spool replay failed; tried again in %ss", self.retry_interval)
            self._retry_at = time.monotonic() + self.retry_interval
        else:
            if not self.spool.pending():
                log.info("spool %s replayed", self.spool.path)

    def _all_written(self) -> bool:
        """Nothing waits in the spool or on its way there."""
        return not self.spool.pending() and not self._overflow.unfinished_tasks

    def _release(self, barriers: list[_Barrier]) -> None:
        """Tell waiting flushes whether every record since the last one is stored."""
        now = (self.spool.rejected, self.dropped)
        rejected, dropped = now[0] - self._reported[0], now[1] - self._reported[1]
        self._reported = now
        missing = []
        if not self._all_written():
            missing.append(f"records wait in the spool {self.spool.path} (database unavailable)")
        if rejected:
            missing.append(f"{rejected} set aside in {self.spool.rejected_path}")
        if dropped:
            missing.append(f"{dropped} dropped (the queue was full and the spool locked)")
        for barrier in barriers:
            barrier.missing = "; ".join(missing)
            barrier.stored = not missing
            barrier.done.set()

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
        records = [_to_record(item) for item in items if isinstance(item, CallRecord | Exchange)]
        try:
            self.spool.append(records)
        except Exception:
            log.exception("could not write %d record(s) to the spool", len(records))

    def _overflow_or_drop(self, call: CallRecord | Exchange) -> None:
        try:
            self._overflow.put_nowait(call)
            return
        except queue.Full:
            pass
        with self._dropped_lock:
            self.dropped += 1
            dropped = self.dropped
        if dropped == 1 or dropped % 1000 == 0:
            log.error("recorder queue and overflow full: record dropped (%d so far)", dropped)

    def _spool_overflow(self) -> None:
        """The spooler thread: what overflowed the writer's queue goes to the spool, in
        batches, without waiting for the database; the writer replays it from there."""
        while True:
            try:
                items = [self._overflow.get(timeout=self.retry_interval)]
            except queue.Empty:
                if self._closed:
                    return
                continue
            while len(items) < self.batch_size:
                try:
                    items.append(self._overflow.get_nowait())
                except queue.Empty:
                    break
            self._spool_items(items)
            for _ in items:
                self._overflow.task_done()
            if any(item is _STOP for item in items):
                return


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

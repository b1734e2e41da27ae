"""An append-only JSONL file that keeps records while the database cannot take them.

When the database is down the recorder appends each batch here, one `CallRecord` per line
(image bytes included as `b64_json`, so b64 images still get their thumbnails later), and
replays the file once the database answers again. Replay inserts through the same writer,
which skips ids already stored, so a replay cut short by a new outage, or a crash, is simply
run again: nothing is lost and nothing is written twice.

A replay goes one batch at a time (`replay_step`), so the recorder's writer keeps serving its
queue between batches, and appends never wait for a replay: an append takes only the append
lock, for the few milliseconds of one write, while a replay holds its own lock and reads the
lines already complete. The file is removed once a replay has read to its end under the
append lock. Several processes may share one spool (the default one sits beside the default
database), so each lock is a thread lock plus an exclusive `flock` on a lock file beside it.

A crash in the middle of an append leaves a torn last line. The next append ends it with a
newline before writing, so the torn line stays a line of its own and the records after it are
kept; a replay sets it aside like any line that cannot be read. Unreadable lines, and records
the database refuses for their content, go to `<spool>.rejected.jsonl` with the reason, so one
bad record never blocks the rest.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from sqlalchemy.engine import make_url

from store.schema.config import default_data_dir
from store.schema.db import display_url
from store.schema.records import CallRecord

log = logging.getLogger(__name__)

REPLAY_BATCH = 500
#: Enough of a spool file's start to hold its first record's id, which no other file shares.
HEAD_BYTES = 64


def default_spool_path(database_url: str) -> Path:
    """Beside a SQLite file (`<db>.spool.jsonl`); in the data folder, named by URL, otherwise."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().with_name(Path(url.database).name + ".spool.jsonl")
    # The URL (password hidden) names the file, so two databases never share a spool.
    digest = hashlib.sha256(display_url(database_url).encode()).hexdigest()[:16]
    return default_data_dir() / f"spool-{digest}.jsonl"


def spool_line(record: CallRecord) -> str:
    """One record as a JSON line, with image bytes as `b64_json` (the JSON shape omits them)."""
    data = record.model_dump(mode="json", exclude_none=True)
    for image, dumped in zip(record.images, data.get("images", []), strict=True):
        if image.data is not None:
            dumped["b64_json"] = base64.b64encode(image.data).decode("ascii")
    return json.dumps(data, separators=(",", ":"))


@dataclass(frozen=True)
class _Cursor:
    """How far this process's replay has read, in which file: the file is told by its first
    bytes (a record's unique id), since a file that another process replayed and removed can
    come back under the same inode number."""

    head: bytes
    offset: int = 0
    line: int = 0  # lines read, for the number in a rejection's reason


class Spool:
    """`append(records)` while the database is down; `replay(write)` when it is back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rejected_path = self.path.with_name(self.path.name + ".rejected.jsonl")
        self._append_lock = _FileLock(self.path.with_name(self.path.name + ".lock"))
        self._replay_lock = _FileLock(self.path.with_name(self.path.name + ".replay.lock"))
        self._reject_lock = threading.Lock()
        self._cursor: _Cursor | None = None
        #: Records and lines this object has set aside in the rejected file, ever.
        self.rejected = 0

    def pending(self) -> bool:
        """True when records wait in the file."""
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def append(self, records: Sequence[CallRecord]) -> None:
        """Add records at the end of the file, flushed and fsynced before returning."""
        if not records:
            return
        payload = _payload(records)
        with self._append_lock.held():
            _append_bytes(self.path, payload)
        log.info("%d record(s) kept in the spool %s", len(records), self.path)

    def replay(self, write: Callable[[Sequence[CallRecord]], object]) -> int:
        """Hand every spooled record to `write` in batches, then remove the file.

        If `write` raises (the database went away again) the file is left whole and the
        exception propagates; the records already written are skipped by the next replay.
        """
        count = 0
        while self.pending():
            count += self.replay_step(write)
        if count:
            log.info("spool replayed: %d record(s) written to the database", count)
        return count

    def replay_step(self, write: Callable[[Sequence[CallRecord]], object]) -> int:
        """Hand the next batch (up to REPLAY_BATCH records) to `write`; returns its size.

        The file is removed once read to its end, so `pending()` tells whether more is left.
        If `write` raises, the exception propagates and the next step reads the batch again.
        """
        with self._replay_lock.held():
            try:
                spool = self.path.open("rb")
            except FileNotFoundError:
                self._cursor = None
                return 0
            with spool:
                records, unreadable, cursor, at_end = self._read_batch(spool)
            if records:
                write(records)
            for number, line in unreadable:
                self.reject(None, f"spool line {number} unreadable", line=line)
            self._cursor = cursor
            if at_end:
                self._finish(cursor)
            return len(records)

    def reject(self, record: CallRecord | None, reason: str, *, line: str | None = None) -> None:
        """Set a record (or an unreadable line) aside with the reason the store refused it."""
        entry = {"reason": reason, "record": json.loads(spool_line(record)) if record else None}
        if line is not None:
            entry["line"] = line
        with self._reject_lock:
            _append_bytes(self.rejected_path, (json.dumps(entry) + "\n").encode())
            self.rejected += 1
        log.error("record set aside in %s: %s", self.rejected_path, reason)

    def _read_batch(
        self, spool: BinaryIO
    ) -> tuple[list[CallRecord], list[tuple[int, str]], _Cursor, bool]:
        """The records of the next complete lines, the unreadable ones (number, text), the
        cursor after them, and whether that is the end of what is complete."""
        head = spool.read(HEAD_BYTES)
        cursor = self._cursor
        if (
            cursor is None
            or cursor.head != head
            or cursor.offset > os.fstat(spool.fileno()).st_size
        ):
            cursor = _Cursor(head)  # a new file (another process replayed the last one)
        spool.seek(cursor.offset)
        offset, number = cursor.offset, cursor.line
        records: list[CallRecord] = []
        unreadable: list[tuple[int, str]] = []
        while len(records) < REPLAY_BATCH:
            raw = spool.readline()
            if not raw.endswith(b"\n"):  # the end, or a line still being written
                return records, unreadable, _Cursor(head, offset, number), True
            offset += len(raw)
            number += 1
            if not raw.strip():
                continue
            record, torn = _parse(raw)
            if record is not None:
                records.append(record)
            if torn is not None:
                unreadable.append((number, torn.decode("utf-8", "replace").rstrip("\n")))
        return records, unreadable, _Cursor(head, offset, number), False

    def _finish(self, cursor: _Cursor) -> None:
        """At the end of the complete lines: remove the file if nothing follows them.

        Under the append lock no append is half-written, so bytes after the last newline are a
        line torn by a crash: it is ended with a newline, for the next step to set aside.
        """
        with self._append_lock.held(), contextlib.suppress(FileNotFoundError):
            with self.path.open("rb") as spool:
                if spool.read(HEAD_BYTES) != cursor.head:
                    return  # a new file since: the next step reads it
                size = os.fstat(spool.fileno()).st_size
            if size == cursor.offset:
                self.path.unlink()
                self._cursor = None
                return
            _append_bytes(self.path, b"")  # ends a torn last line, if there is one


def _payload(records: Sequence[CallRecord]) -> bytes:
    return "".join(spool_line(record) + "\n" for record in records).encode()


def _parse(raw: bytes) -> tuple[CallRecord | None, bytes | None]:
    """The record on a line, and the torn piece of the line that holds no record, if any."""
    try:
        return CallRecord.model_validate_json(raw), None
    except ValueError:
        pass
    # A torn line that a later append continued (spools written before appends ended a torn
    # line first): the record that starts after the torn piece is whole.
    start = raw.rfind(b'{"id":', 1)
    if start > 0:
        try:
            return CallRecord.model_validate_json(raw[start:]), raw[:start]
        except ValueError:
            pass
    return None, raw


class _FileLock:
    """A thread lock plus an exclusive `flock` on a lock file, which other processes see too
    (the lock file is opened once and kept)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._file: TextIO | None = None  # opened at first use, under the thread lock

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)


def _append_bytes(path: Path, payload: bytes) -> None:
    """Append `payload`, fsynced; a last line left torn by a crash is ended first, so it
    stays a line of its own."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:  # its folder is gone (or not made yet)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            log.warning("%s ends in a torn line (a crash mid-write?): ended it", path)
            payload = b"\n" + payload
        if not payload:
            return
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)

"""An append-only JSONL file that keeps records while the database cannot take them.

When the database is down the recorder appends each batch here, one `CallRecord` per line
(image bytes included as `b64_json`, so b64 images still get their thumbnails later), and
replays the file once the database answers again. Replay inserts through the same writer,
which skips ids already stored, so a replay cut short by a new outage, or a crash, is simply
run again: nothing is lost and nothing is written twice.

Several processes may share one spool (the default one sits beside the default database), so
appends and replays take an exclusive `flock` on a lock file beside it where the platform has
one; within a process a lock does the same. Lines that cannot be read, and records the
database refuses for their content, go to `<spool>.rejected.jsonl` with the reason, so one bad
record never blocks the rest.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from store.schema.config import default_data_dir
from store.schema.db import display_url
from store.schema.records import CallRecord

log = logging.getLogger(__name__)

REPLAY_BATCH = 500


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


class Spool:
    """`append(records)` while the database is down; `replay(write)` when it is back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rejected_path = self.path.with_name(self.path.name + ".rejected.jsonl")
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.Lock()
        self._reject_lock = threading.Lock()  # apart: replay rejects lines while holding the other

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
        payload = "".join(spool_line(record) + "\n" for record in records).encode()
        with self._locked():
            _append_bytes(self.path, payload)
        log.info("%d record(s) kept in the spool %s", len(records), self.path)

    def replay(self, write: Callable[[Sequence[CallRecord]], object]) -> int:
        """Hand every spooled record to `write` in batches, then empty the file.

        If `write` raises (the database went away again) the file is left whole and the
        exception propagates; the records already written are skipped by the next replay.
        """
        with self._locked():
            if not self.pending():
                return 0
            count = 0
            for batch in self._batches():
                write(batch)
                count += len(batch)
            self.path.unlink()
        log.info("spool replayed: %d record(s) written to the database", count)
        return count

    def reject(self, record: CallRecord | None, reason: str, *, line: str | None = None) -> None:
        """Set a record (or an unreadable line) aside with the reason the store refused it."""
        entry = {"reason": reason, "record": json.loads(spool_line(record)) if record else None}
        if line is not None:
            entry["line"] = line
        with self._reject_lock:
            _append_bytes(self.rejected_path, (json.dumps(entry) + "\n").encode())
        log.error("record set aside in %s: %s", self.rejected_path, reason)

    def _batches(self) -> Iterator[list[CallRecord]]:
        batch: list[CallRecord] = []
        with self.path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    batch.append(CallRecord.model_validate_json(raw))
                except ValueError as exc:  # a torn last line after a crash, or a hand edit
                    reason = f"spool line {number} unreadable: {type(exc).__name__}"
                    self.reject(None, reason, line=raw.decode("utf-8", "replace").rstrip("\n"))
                    continue
                if len(batch) >= REPLAY_BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:  # and a flock, which other processes see too
            self._lock_path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock_path.open("a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)


def _append_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)

"""Writing records that come back from a log (an import, a copy) into a database.

What the log already holds (`ids_in_log`, `count_calls`), so a rerun skips it; inserting the
rest as it came (`keep_carried`); and setting aside what the database refuses. `import` and
`copy` write thousands of records a transaction; one record the database will not take (a
NaN in a JSON value on PostgreSQL, a value a trigger or constraint forbids) would otherwise
cost the whole batch. So a refused batch is retried record by record, every record the
database takes is stored, and each one it still refuses goes to a rejected file with the
reason. "Refused" is any error but the database being unavailable (`UNAVAILABLE_ERRORS`):
an unreachable server, a locked or unwritable file stops the job instead, and a rerun
finishes it.

A rejected file is JSON lines shaped like the recorder's spool rejects: `{"reason": ...,
"record": {...}}`, plus `"line_number"` when the record came from a numbered line.
`jq -c .record` gives back lines that `import` reads, once the reason is dealt with.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from sqlalchemy import Engine, func, select

from store.capture.redaction import describe_exception
from store.capture.writer import GENERATIONS, insert_calls
from store.schema.config import default_data_dir
from store.schema.db import UNAVAILABLE_ERRORS
from store.schema.records import CallRecord


class RejectedFileError(Exception):
    """The rejected file cannot be written (so a refused record would have nowhere to go)."""


def ids_in_log(engine: Engine, ids: Collection[str]) -> set[str]:
    """The ids among `ids` that the log already holds (one `IN` query)."""
    if not ids:
        return set()
    with engine.connect() as connection:
        query = select(GENERATIONS.c.id).where(GENERATIONS.c.id.in_(list(ids)))
        return set(connection.scalars(query))


def count_calls(engine: Engine) -> int:
    """How many calls the log holds (what a whole-log job counts its progress against)."""
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(GENERATIONS)) or 0


def insert_refusing_alone(engine: Engine, records: Sequence[CallRecord]) -> dict[int, str]:
    """Insert `records` as they come from a log (`keep_carried`); returns, by position in
    `records`, the reason of each one the database refused even alone.

    One transaction for the batch; only when the database refuses it, one per record. The
    database being unavailable is raised, whichever attempt meets it.
    """
    if _refusal(engine, records) is None:
        return {}
    refused: dict[int, str] = {}
    for index, record in enumerate(records):
        if (reason := _refusal(engine, [record])) is not None:
            refused[index] = reason
    return refused


def _refusal(engine: Engine, records: Sequence[CallRecord]) -> str | None:
    """Why the database refused `records` as one transaction; None once they are stored."""
    try:
        insert_calls(engine, records, keep_carried=True)
    except UNAVAILABLE_ERRORS:
        raise
    except Exception as exc:  # whatever the content made go wrong, it is this batch's reason
        return describe_exception(exc)
    return None


class RejectedFile:
    """The file the records the database refused go to, created on the first one (a job that
    stores everything leaves no file behind); a file left by an earlier run is replaced then."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._out: BinaryIO | None = None

    def add(self, record_json: str | bytes, reason: str, *, line_number: int | None = None) -> None:
        """Set one record aside: `record_json` is its JSON text (an import keeps the line as
        it was written, so the refused value is there to see)."""
        entry = (
            {"reason": reason}
            if line_number is None
            else {"line_number": line_number, "reason": reason}
        )
        text = record_json.encode() if isinstance(record_json, str) else record_json
        head = json.dumps(entry)[:-1].encode()  # the entry without its closing brace
        try:
            if self._out is None:
                if self.path.parent.resolve() == default_data_dir().resolve():
                    self.path.parent.mkdir(parents=True, exist_ok=True)  # only that one
                self._out = self.path.open("wb")
            self._out.write(head + b', "record": ' + text.strip() + b"}\n")
            self._out.flush()
        except OSError as exc:
            raise RejectedFileError(
                f"cannot write the rejected file {self.path}: {exc.strerror or exc}"
            ) from exc
        self.count += 1

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> RejectedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

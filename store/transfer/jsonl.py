"""JSONL import, and JSONL / CSV export, of call records.

One format both ways: a line is a `CallRecord` as JSON, so what `export` writes `import` reads
back. Import validates each line on its own, so one bad line is reported (with its number and
why) and skipped while the rest of the file still goes in; it writes through
`store.capture.writer.insert_calls` in batches, and ids already in the log are counted as
duplicates, never inserted twice. The serialisers stream (one record at a time) and are
shared by the CLI
and the dashboard's download button, so both give the same bytes.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from pydantic import ValidationError
from sqlalchemy import Engine, select

from store.capture.writer import GENERATIONS, insert_calls
from store.queries import LogFilter, iter_records
from store.schema.progress import Progress, no_progress
from store.schema.records import CallRecord

#: `source` of an imported record whose line does not say where it came from.
IMPORT_SOURCE = "import"

#: CSV columns: every CallRecord field, in declaration order; dicts and lists as compact JSON.
#: The record's fields by their record names, the names its JSON uses.
CSV_COLUMNS: tuple[str, ...] = tuple(
    field.serialization_alias or name for name, field in CallRecord.model_fields.items()
)


class UnreadableFile(Exception):
    """The file cannot be opened or read at all (as opposed to a bad line in it)."""


@dataclass(frozen=True)
class LineProblem:
    """Why one line of an import file was skipped."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportSummary:
    """What an import did, line by line: every non-blank line is in exactly one count."""

    imported: int = 0
    duplicates: int = 0  # ids already in the log, or repeated earlier in the same file
    skipped: int = 0  # bad lines, each reported as a LineProblem

    @property
    def lines(self) -> int:
        return self.imported + self.duplicates + self.skipped

    @property
    def failed(self) -> bool:
        """True when the file had lines but not one of them was a valid record."""
        return self.skipped > 0 and self.imported + self.duplicates == 0

    def describe(self) -> str:
        return (
            f"imported {self.imported}, skipped {self.skipped} bad lines, "
            f"{self.duplicates} duplicates (ids already imported)"
        )


def parse_line(text: str | bytes) -> CallRecord:
    """One JSONL line as a record; raises ValueError with a one-line reason when it is bad."""
    try:
        record = CallRecord.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(_validation_reason(exc)) from exc
    if "source" not in record.model_fields_set:
        record.source = IMPORT_SOURCE
    return record


def _validation_reason(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"])
        reasons.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(reasons)


def import_jsonl(
    engine: Engine,
    path: Path,
    *,
    batch_size: int = 1000,
    report: Callable[[LineProblem], None] | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import the JSONL file at `path` ('-': standard input) into the log.

    Bad lines go to `report` and are skipped; valid ones are inserted `batch_size` at a time.
    Progress counts bytes read (of a total unknown on standard input). Raises UnreadableFile
    when the file cannot be opened or read.
    """
    try:
        stream, total = _open_binary(path)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from exc
    with stream:
        try:
            return import_lines(
                engine,
                _counting(stream, total, on_progress or no_progress),
                batch_size=batch_size,
                report=report,
            )
        except OSError as exc:
            raise UnreadableFile(f"reading {path} failed: {exc.strerror or exc}") from exc


def _open_binary(path: Path) -> tuple[BinaryIO, int | None]:
    if str(path) == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False), None
    stream = path.open("rb")
    return stream, path.stat().st_size


def _counting(lines: Iterable[bytes], total: int | None, report: Progress) -> Iterator[bytes]:
    """`lines`, reporting the bytes read so far as each one is taken."""
    done = 0
    report(done, total)
    for line in lines:
        done += len(line)
        report(done, total)
        yield line


def import_lines(
    engine: Engine,
    lines: Iterable[bytes | str],
    *,
    batch_size: int = 1000,
    report: Callable[[LineProblem], None] | None = None,
) -> ImportSummary:
    """Import JSONL lines (bytes or str, numbered from 1); the core of `import_jsonl`."""
    summary = ImportSummary()
    # Keyed by id, so a line repeated within a batch counts once; a repeat in a later batch is
    # found in the log by `_insert_new`. Memory stays one batch, whatever the file's size.
    batch: dict[str, CallRecord] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = parse_line(line)
        except ValueError as exc:
            summary.skipped += 1
            if report is not None:
                report(LineProblem(number, str(exc)))
            continue
        if record.id in batch:
            summary.duplicates += 1
            continue
        batch[record.id] = record
        if len(batch) >= batch_size:
            _insert_new(engine, list(batch.values()), summary)
            batch = {}
    _insert_new(engine, list(batch.values()), summary)
    return summary


def _insert_new(engine: Engine, batch: Sequence[CallRecord], summary: ImportSummary) -> None:
    """Insert the records of `batch` whose id is not in the log yet, and count both kinds."""
    if not batch:
        return
    with engine.connect() as connection:
        present = set(
            connection.scalars(
                select(GENERATIONS.c.id).where(GENERATIONS.c.id.in_([r.id for r in batch]))
            )
        )
    new = [record for record in batch if record.id not in present]
    insert_calls(engine, new)  # still skips ids a concurrent writer added in between
    summary.imported += len(new)
    summary.duplicates += len(batch) - len(new)


# --- export -----------------------------------------------------------------------------------


def records_to_jsonl(records: Iterable[CallRecord], out: TextIO) -> int:
    """Write one JSON line per record (what `import` reads back); returns how many."""
    count = 0
    for record in records:
        out.write(record.model_dump_json(exclude_none=True))
        out.write("\n")
        count += 1
    return count


def records_to_csv(records: Iterable[CallRecord], out: TextIO) -> int:
    """Write a header and one flat CSV row per record; returns how many.

    Columns are the record's fields; the nested ones (params, metadata, usage, request,
    response, images) are compact JSON text, so nothing in the record is left out.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        data = record.model_dump(mode="json")
        writer.writerow(_csv_cell(data.get(column)) for column in CSV_COLUMNS)
        count += 1
    return count


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


SERIALISERS: dict[str, Callable[[Iterable[CallRecord], TextIO], int]] = {
    "jsonl": records_to_jsonl,
    "csv": records_to_csv,
}


def export_records(engine: Engine, flt: LogFilter, fmt: str, out: TextIO) -> int:
    """Stream the calls matching `flt` from the database to `out` as `fmt` (jsonl or csv)."""
    return SERIALISERS[fmt](iter_records(engine, flt), out)

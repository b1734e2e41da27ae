"""JSONL import, and JSONL / CSV export, of call records.

One format both ways: a line is a `CallRecord` as JSON, so what `export` writes `import` reads
back, row for row: an exported line gives every column (nulls included) and import stores the
columns a line gives as they are, working out only those it leaves out (`keep_carried`).
Import validates each line on its own, so one bad line is reported (with its number and why)
and skipped while the rest of the file still goes in; it writes in batches, a batch the
database refuses is retried record by record (`store.transfer.storing`), and a record the
database still refuses is reported by its line number and set aside in a rejected file. Ids
already in the log are counted as duplicates, never inserted twice. The serialisers stream
(one record at a time) and are shared by the CLI and the dashboard's download button, so both
give the same bytes.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from pydantic import ValidationError
from sqlalchemy import Engine

from store.queries import LogFilter, iter_records
from store.schema.config import default_data_dir
from store.schema.models import utcnow
from store.schema.progress import Progress, no_progress
from store.schema.records import CallRecord
from store.transfer.storing import RejectedFile, ids_in_log, insert_refusing_alone

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
    """Why one line of an import file was not stored: a bad line, or one the database refused."""

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
    refused: int = 0  # valid lines the database refused, each reported and set aside
    rejected_path: Path | None = None  # where the refused ones were set aside, if any

    @property
    def lines(self) -> int:
        return self.imported + self.duplicates + self.skipped + self.refused

    @property
    def complete(self) -> bool:
        """True when every line is in the log now (imported, or there already)."""
        return self.skipped == 0 and self.refused == 0

    def describe(self) -> str:
        text = (
            f"imported {self.imported}, skipped {self.skipped} bad lines, "
            f"{self.duplicates} duplicates (ids already imported), "
            f"{self.refused} refused by the database"
        )
        if self.rejected_path is not None:
            text += f" (set aside with the reasons in {self.rejected_path})"
        return text


def default_rejected_path(source: Path) -> Path:
    """Where an import of `source` sets aside what the database refuses: `<file>.rejected.jsonl`
    beside the file; for standard input ('-'), `import-<UTC time>.rejected.jsonl` in the data
    folder (a PostgreSQL log has no folder of its own to put it beside)."""
    if str(source) == "-":
        return default_data_dir() / f"import-{utcnow():%Y%m%dT%H%M%SZ}.rejected.jsonl"
    return source.with_name(source.name + ".rejected.jsonl")


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
    rejected: Path | None = None,
    batch_size: int = 1000,
    report: Callable[[LineProblem], None] | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import the JSONL file at `path` ('-': standard input) into the log.

    Bad lines go to `report` and are skipped; valid ones are inserted `batch_size` at a time;
    those the database refuses go to `report` too, and to the file `rejected` (default:
    `default_rejected_path`), created only if there are any. Progress counts bytes read (of a
    total unknown on standard input). Raises UnreadableFile when the file cannot be opened or
    read, RejectedFileError when the rejected file cannot be written.
    """
    try:
        stream, total = _open_binary(path)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from exc
    with stream, RejectedFile(rejected or default_rejected_path(path)) as refused_file:
        return import_lines(
            engine,
            _reading(stream, path, total, on_progress or no_progress),
            rejected=refused_file,
            batch_size=batch_size,
            report=report,
        )


def _open_binary(path: Path) -> tuple[BinaryIO, int | None]:
    if str(path) == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False), None
    stream = path.open("rb")
    return stream, path.stat().st_size


def _reading(stream: BinaryIO, path: Path, total: int | None, report: Progress) -> Iterator[bytes]:
    """The lines of `stream`, reporting the bytes read so far as each one is taken; a read
    that fails is UnreadableFile (a database error met in between is not)."""
    done = 0
    report(done, total)
    try:
        for line in stream:
            done += len(line)
            report(done, total)
            yield line
    except OSError as exc:
        raise UnreadableFile(f"reading {path} failed: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class _Line:
    """A valid line waiting in a batch: its number and text stay with it, so a record the
    database refuses is reported by line and set aside as it was written."""

    number: int
    text: bytes | str
    record: CallRecord


def import_lines(
    engine: Engine,
    lines: Iterable[bytes | str],
    *,
    rejected: RejectedFile,
    batch_size: int = 1000,
    report: Callable[[LineProblem], None] | None = None,
) -> ImportSummary:
    """Import JSONL lines (bytes or str, numbered from 1); the core of `import_jsonl`."""
    summary = ImportSummary()
    tell = report or (lambda _problem: None)
    # Keyed by id, so a line repeated within a batch counts once; a repeat in a later batch is
    # found in the log by `_store`. Memory stays one batch, whatever the file's size.
    batch: dict[str, _Line] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = parse_line(text)
        except ValueError as exc:
            summary.skipped += 1
            tell(LineProblem(number, str(exc)))
            continue
        if record.id in batch:
            summary.duplicates += 1
            continue
        batch[record.id] = _Line(number, text, record)
        if len(batch) >= batch_size:
            _store(engine, list(batch.values()), summary, rejected, tell)
            batch = {}
    _store(engine, list(batch.values()), summary, rejected, tell)
    summary.rejected_path = rejected.path if rejected.count else None
    return summary


def _store(
    engine: Engine,
    batch: list[_Line],
    summary: ImportSummary,
    rejected: RejectedFile,
    tell: Callable[[LineProblem], None],
) -> None:
    """Store the lines of `batch` whose id is not in the log yet; count and report each kind."""
    present = ids_in_log(engine, [line.record.id for line in batch])
    new = [line for line in batch if line.record.id not in present]
    # Still skips ids a concurrent writer added in between (counted as imported).
    refusals = insert_refusing_alone(engine, [line.record for line in new])
    for index, reason in refusals.items():
        line = new[index]
        rejected.add(line.text, reason, line_number=line.number)
        tell(LineProblem(line.number, f"refused by the database: {reason}"))
    summary.imported += len(new) - len(refusals)
    summary.refused += len(refusals)
    summary.duplicates += len(batch) - len(new)


# --- export -----------------------------------------------------------------------------------


def records_to_jsonl(records: Iterable[CallRecord], out: TextIO) -> int:
    """Write one JSON line per record (what `import` reads back); returns how many.

    Every field, nulls included, and each image's thumbnail as base64: for a URL that has
    expired, the thumbnail is the only copy of the image left, and a null written out is a
    value import keeps rather than works out again.
    """
    count = 0
    for record in records:
        out.write(record.model_dump_json())
        out.write("\n")
        count += 1
    return count


def records_to_csv(records: Iterable[CallRecord], out: TextIO) -> int:
    """Write a header and one flat CSV row per record; returns how many.

    Columns are the record's fields; the nested ones (params, metadata, usage, request,
    response, images) are compact JSON text. Thumbnails are left out: CSV is for reading in a
    spreadsheet, where kilobytes of base64 per image only get in the way; JSONL carries them.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        data = record.model_dump(mode="json", exclude=_CSV_EXCLUDED)
        writer.writerow(_csv_cell(data.get(column)) for column in CSV_COLUMNS)
        count += 1
    return count


#: What CSV leaves out of a record (see `records_to_csv`).
_CSV_EXCLUDED = {"images": {"__all__": {"thumbnail"}}}


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

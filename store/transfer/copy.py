"""Copy a whole log from one database to another: SQLite to PostgreSQL is the path a team
takes when one machine is no longer enough (and PostgreSQL to SQLite, for a laptop copy).

Calls stream out of the source in keyset batches (`iter_records`, the export's reader), so
memory stays one batch whatever the log's size, and go into the target as they were stored
(`keep_carried`: no price or expiry worked out again). Ids the target already holds are
skipped, so an interrupted copy is finished by running it again, and a copy of a log still
being written to is brought up to date the same way. A call the target refuses (PostgreSQL
takes no NaN in JSON, SQLite does) is set aside in a rejected file while the rest is copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from store.queries import LogFilter, iter_records
from store.schema.config import default_data_dir
from store.schema.models import utcnow
from store.schema.progress import Progress, no_progress
from store.schema.records import CallRecord
from store.transfer.storing import RejectedFile, count_calls, ids_in_log, insert_refusing_alone


@dataclass
class CopySummary:
    """What a copy did: every call of the source is in exactly one count."""

    copied: int = 0
    images: int = 0  # of the copied calls
    present: int = 0  # already in the target (an earlier copy, or the same call recorded there)
    refused: int = 0  # set aside in the rejected file
    rejected_path: Path | None = None

    @property
    def complete(self) -> bool:
        """True when every call of the source is in the target now."""
        return self.refused == 0

    def describe(self) -> str:
        text = (
            f"copied {self.copied} calls ({self.images} images), "
            f"{self.present} already in the target, {self.refused} refused by the target"
        )
        if self.rejected_path is not None:
            text += f" (set aside with the reasons in {self.rejected_path})"
        return text


def default_copy_rejected_path() -> Path:
    """`copy-<UTC time>.rejected.jsonl` in the data folder (neither log need have a folder)."""
    return default_data_dir() / f"copy-{utcnow():%Y%m%dT%H%M%SZ}.rejected.jsonl"


def copy_log(
    source: Engine,
    target: Engine,
    *,
    rejected: Path | None = None,
    batch_size: int = 1000,
    on_progress: Progress | None = None,
) -> CopySummary:
    """Copy every call of `source` (with its images) that `target` does not hold yet.

    Progress counts the source's calls, newest first; a call the target refuses goes to the
    file `rejected` (default: `default_copy_rejected_path`), created only if there is one.
    """
    report = on_progress or no_progress
    total = count_calls(source)
    summary = CopySummary()
    done = 0
    report(done, total)
    with RejectedFile(rejected or default_copy_rejected_path()) as refused_file:
        for batch in _batches(iter_records(source, LogFilter(), batch_size), batch_size):
            _copy_batch(target, batch, summary, refused_file)
            done += len(batch)
            report(done, max(total, done))  # calls recorded since the count are copied too
        summary.rejected_path = refused_file.path if refused_file.count else None
    return summary


def _batches(records: Iterable[CallRecord], size: int) -> Iterator[list[CallRecord]]:
    batch: list[CallRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _copy_batch(
    target: Engine, batch: list[CallRecord], summary: CopySummary, rejected: RejectedFile
) -> None:
    present = ids_in_log(target, [record.id for record in batch])
    new = [record for record in batch if record.id not in present]
    refusals = insert_refusing_alone(target, new)
    for index, reason in refusals.items():
        rejected.add(new[index].model_dump_json(), reason)
    summary.copied += len(new) - len(refusals)
    summary.images += sum(
        len(record.images) for index, record in enumerate(new) if index not in refusals
    )
    summary.present += len(present)
    summary.refused += len(refusals)

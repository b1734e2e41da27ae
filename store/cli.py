"""The `imagelog` command (also `python -m store`): one argparse subcommand per job.

Each subcommand is a pair: an `_add_<name>(subparsers)` function that declares its arguments
and sets `run=`, and the `run` function `(args) -> exit code`. Modules are imported inside the
run functions so `imagelog --help` stays fast and one command's heavy imports never slow another.
To add a command, write the pair and append its `_add_<name>` to `COMMANDS` at the bottom.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.schema.enums import UNREAD, UNREVIEWED, Credentials, Status, UrlState, Verdict
from store.schema.lookalike import DEFAULT_MAX_DISTANCE, MAX_DISTANCE

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from store.media.archive import Archive
    from store.media.network_guard import Network
    from store.queries import LogFilter
    from store.schema.progress import Progress

Subparsers = Any  # argparse's _SubParsersAction is private; the type adds nothing here


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]), run the chosen command, return its exit code."""
    args = build_parser().parse_args(argv)  # `--help` exits here, before the heavy imports
    from store.capture.redaction import describe_exception
    from store.schema.db import UNAVAILABLE_ERRORS, display_url

    try:
        return int(args.run(args) or 0)
    except UNAVAILABLE_ERRORS as exc:  # unreachable server, locked or unwritable file, ...
        where = display_url(args.database_url)
        print(
            f"imagelog {args.command}: cannot use the database {where}: {describe_exception(exc)}",
            file=sys.stderr,
        )
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagelog", description="An audit log of image-generation calls."
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL of the log (default: $IMAGELOG_DATABASE_URL, else a SQLite file "
        "in the user's data folder)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


@contextmanager
def opened_engine(args: argparse.Namespace) -> Iterator[Engine]:
    """The engine every command uses (`--database-url`, else the configured default), closed
    when the command is done."""
    from store.schema.db import make_engine

    engine = make_engine(args.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def reading_engine(args: argparse.Namespace) -> Iterator[Engine]:
    """`opened_engine` for a command that reports on the log (stats, export, review list):
    URLs past their predicted expiry are marked expired (predicted) first, so no report calls
    a URL live after its expiry, whether or not `check` has run."""
    from store.expiry import expire_lapsed

    with opened_engine(args) as engine:
        expire_lapsed(engine)
        yield engine


@contextmanager
def progress_bar(
    desc: str, unit: str, *, enabled: bool = True, unit_scale: bool = False
) -> Iterator[Progress]:
    """A tqdm bar on stderr, driven by the `on_progress(done, total)` callback it yields: the
    library reports progress through callbacks, and this is the one place that draws it."""
    from tqdm import tqdm

    with tqdm(desc=desc, unit=unit, unit_scale=unit_scale, disable=not enabled) as bar:

        def on_progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield on_progress


def _utc_datetime(text: str) -> datetime:
    """An ISO date or datetime from the command line, read as dashboard links are read
    (a time without offset is UTC), so `--since` and the Logs page's `since=` agree."""
    from store.queries.filters import parse_utc_datetime

    if (value := parse_utc_datetime(text)) is None:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}")
    return value


def _count(text: str) -> int:
    """A whole number >= 0 from the command line."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {text!r}")
    return value


def _positive(text: str) -> int:
    """A whole number >= 1 from the command line."""
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


# --- import -----------------------------------------------------------------------------------


def _add_import(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="load calls from a JSONL file (one CallRecord per line)",
        description="Load calls from a JSONL file. Bad lines are reported by number and "
        "skipped; a record the database refuses is reported by number and set aside, with the "
        "reason, in a rejected file; everything else is stored. Ids already in the log are "
        "skipped, so importing a file twice is harmless. Exits 1 when any line was not stored.",
    )
    parser.add_argument("file", type=Path, help="the .jsonl file ('-' for standard input)")
    parser.add_argument(
        "--rejected",
        type=Path,
        metavar="PATH",
        help="where records the database refuses go (default: FILE.rejected.jsonl beside the "
        "file; for standard input, import-<UTC time>.rejected.jsonl in the data folder)",
    )
    parser.add_argument(
        "--batch-size", type=_positive, default=1000, help="records per insert batch"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_import)


def _run_import(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError
    from tqdm import tqdm  # writes above the progress bar instead of through it

    from store.capture.redaction import describe_exception
    from store.transfer.jsonl import UnreadableFile, import_jsonl
    from store.transfer.storing import RejectedFileError

    try:
        with (
            opened_engine(args) as engine,
            progress_bar(
                "import", "B", unit_scale=True, enabled=not args.no_progress
            ) as on_progress,
        ):
            summary = import_jsonl(
                engine,
                args.file,
                rejected=args.rejected,
                batch_size=args.batch_size,
                report=lambda problem: tqdm.write(str(problem), file=sys.stderr),
                on_progress=on_progress,
            )
    except UnreadableFile as exc:
        print(f"imagelog import: {exc}", file=sys.stderr)
        return 1
    except RejectedFileError as exc:
        print(
            f"imagelog import: {exc}\nThe lines stored before stay; run the same import again "
            "with --rejected PATH to finish (ids already in the log are skipped).",
            file=sys.stderr,
        )
        return 1
    except SQLAlchemyError as exc:  # the message only: SQLAlchemy's text carries every row
        print(
            f"imagelog import: the database failed: {describe_exception(exc)}\n"
            "The batches written before stay; "
            "run the same import again to finish (ids already in the log are skipped).",
            file=sys.stderr,
        )
        return 1
    print(summary.describe())
    return 0 if summary.complete else 1


# --- export -----------------------------------------------------------------------------------


def _add_export(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write calls as JSONL (importable) or CSV",
        description="Write the calls matching the filters, newest first, streamed from the "
        "database. A JSONL line is a call with every column (nulls included) and its images "
        "with their thumbnails (base64): `import` reads it back row for row. CSV has the same "
        "columns but no thumbnails.",
    )
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    _add_filter_arguments(parser)
    parser.set_defaults(run=_run_export)


#: `--last`'s values: store.queries.filters.QUICK_RANGES's names, written out so that
#: `imagelog --help` loads no SQLAlchemy (tests/test_cli.py holds the two lists equal).
LAST_CHOICES = ["1h", "24h", "7d", "30d"]


def _add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The filters `export` and `stats` share: they map onto `store.queries.LogFilter`."""
    parser.add_argument("--provider", action="append", help="only this provider (repeatable)")
    parser.add_argument("--model", action="append", help="only this model (repeatable)")
    parser.add_argument(
        "--status",
        choices=[status.value for status in Status],
        action="append",
        help="only calls with this status (repeatable)",
    )
    parser.add_argument("--user", help="only calls of this user id")
    parser.add_argument("--tag", metavar="KEY=VALUE", help="only calls with this metadata tag")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--since", type=_utc_datetime, help="created at or after (ISO, UTC)")
    start.add_argument(
        "--last",
        choices=LAST_CHOICES,
        help="only calls of the last hour, day, week or month (the dashboard's quick ranges)",
    )
    parser.add_argument("--until", type=_utc_datetime, help="created before (ISO, UTC)")
    parser.add_argument(
        "--url-state",
        choices=[state.value for state in UrlState],
        action="append",
        help="only calls with an image in this URL state (repeatable)",
    )
    parser.add_argument(
        "--credentials",
        choices=[*(state.value for state in Credentials), UNREAD],
        action="append",
        help="only calls with an image whose content credentials (C2PA) read so: trusted, "
        "valid, invalid, none (no manifest) or unread (repeatable)",
    )
    parser.add_argument(
        "--verdict",
        action="append",
        choices=[*(verdict.value for verdict in Verdict), UNREVIEWED],
        help="only calls with an image with this verdict (repeatable)",
    )
    parser.add_argument("--search", help="full-text search in prompts")
    parser.add_argument("--min-cost", type=_cost, help="cost at least this many USD")
    parser.add_argument("--max-cost", type=_cost, help="cost at most this many USD")


def _cost(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of USD: {text!r}") from None
    if not value >= 0 or value == float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"a cost is 0 or more USD, not {text!r}")
    return value


def _log_filter(args: argparse.Namespace, engine: Engine) -> LogFilter:
    """The flags' filter. A provider, model or user that no call has is named on stderr (a
    typo must not pass for "no calls match")."""
    from store.queries import LogFilter, facets
    from store.queries.filters import quick_range_start
    from store.schema.models import utcnow

    flt = LogFilter(
        providers=tuple(args.provider or ()),
        models=tuple(args.model or ()),
        statuses=tuple(args.status or ()),
        url_states=tuple(args.url_state or ()),
        credentials=tuple(args.credentials or ()),
        verdicts=tuple(args.verdict or ()),
        since=quick_range_start(args.last, utcnow()) if args.last else args.since,
        until=args.until,
        min_cost=args.min_cost,
        max_cost=args.max_cost,
        user=args.user,
        tag=args.tag,
        search=args.search,
    )
    present = facets(engine)
    asked = {
        "provider": (flt.providers, present.providers),
        "model": (flt.models, present.models),
        "user": ((flt.user,) if flt.user else (), present.users),
    }
    for name, (values, known) in asked.items():
        for value in values:
            if value not in known:
                print(f"imagelog {args.command}: no call has {name} {value!r}", file=sys.stderr)
    return flt


def _run_export(args: argparse.Namespace) -> int:
    from store.transfer.jsonl import export_records

    try:
        with reading_engine(args) as engine:
            flt = _log_filter(args, engine)
            if args.output is None:
                count = export_records(engine, flt, args.format, sys.stdout)
            else:
                with args.output.open("w", encoding="utf-8", newline="") as out:
                    count = export_records(engine, flt, args.format, out)
    except BrokenPipeError:  # `imagelog export | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"imagelog export: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"exported {count} calls", file=sys.stderr)
    return 0


# --- copy -------------------------------------------------------------------------------------


def _add_copy(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "copy",
        help="copy the whole log to another database (e.g. SQLite to PostgreSQL)",
        description="Copy every call and image of the log (--database-url, else the configured "
        "one) to the database at --to, as stored, newest first. Calls the target already holds "
        "are skipped, so running it again finishes an interrupted copy or brings the target up "
        "to date. A call the target refuses is set aside, with the reason, in a rejected file "
        "and the rest is copied. Exits 1 when any call was not copied.",
    )
    parser.add_argument(
        "--to",
        required=True,
        type=_database_url,
        metavar="URL",
        help="SQLAlchemy URL of the target log (its schema is created or upgraded)",
    )
    parser.add_argument(
        "--rejected",
        type=Path,
        metavar="PATH",
        help="where calls the target refuses go "
        "(default: copy-<UTC time>.rejected.jsonl in the data folder)",
    )
    parser.add_argument("--batch-size", type=_positive, default=1000, help="calls per batch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_copy)


def _database_url(text: str) -> str:
    """A SQLAlchemy URL from the command line, checked for its form and its database kind
    (not for a server)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(text).get_dialect()
    except ArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _run_copy(args: argparse.Namespace) -> int:
    from store.capture.redaction import describe_exception
    from store.schema.db import UNAVAILABLE_ERRORS, display_url, make_engine
    from store.transfer.copy import copy_log
    from store.transfer.storing import RejectedFileError

    with opened_engine(args) as source:
        try:
            target = make_engine(args.to)
        except UNAVAILABLE_ERRORS as exc:
            where = display_url(args.to)
            print(
                f"imagelog copy: cannot use the target database {where}: {describe_exception(exc)}",
                file=sys.stderr,
            )
            return 1
        try:
            with progress_bar("copy", "calls", enabled=not args.no_progress) as on_progress:
                summary = copy_log(
                    source,
                    target,
                    rejected=args.rejected,
                    batch_size=args.batch_size,
                    on_progress=on_progress,
                )
        except RejectedFileError as exc:
            return _copy_stopped(str(exc))
        except UNAVAILABLE_ERRORS as exc:
            return _copy_stopped(f"a database failed: {describe_exception(exc)}")
        finally:
            target.dispose()
    print(summary.describe())
    return 0 if summary.complete else 1


def _copy_stopped(reason: str) -> int:
    print(
        f"imagelog copy: {reason}\nThe calls copied before stay; run the same copy again "
        "to finish (calls the target holds are skipped).",
        file=sys.stderr,
    )
    return 1


# --- stats ------------------------------------------------------------------------------------


def _add_stats(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="calls, errors, cost (and unpriced calls) and latency by provider (or model)",
    )
    parser.add_argument(
        "--by", choices=["provider", "model"], default="provider", help="group rows by"
    )
    _add_filter_arguments(parser)
    parser.set_defaults(run=_run_stats)


def _run_stats(args: argparse.Namespace) -> int:
    from store.queries import provider_summary

    with reading_engine(args) as engine:
        summary = provider_summary(engine, _log_filter(args, engine), by=args.by)
    print(format_summary_table(summary.to_dict("records")))
    return 0


def _add_similar(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "similar",
        help="clusters of look-alike images (near perceptual hashes)",
        description="Group the images of the filtered calls whose perceptual hashes are at "
        "most --max-distance bits apart (chained: a cluster holds every image within the "
        "distance of another of it), largest cluster first, each image with its call id, "
        "position, hash, distance to the cluster's first image, time, provider, model and "
        "prompt.",
    )
    parser.add_argument(
        "--hash-missing",
        action="store_true",
        help="first hash the images stored before hashes were kept (from their thumbnails, "
        "no network)",
    )
    parser.add_argument(
        "--max-distance",
        type=_distance,
        default=DEFAULT_MAX_DISTANCE,
        metavar="N",
        help=f"bits of 64 apart that still look alike, 0 to {MAX_DISTANCE} (0: the same "
        "picture; default %(default)s)",
    )
    _add_filter_arguments(parser)
    parser.set_defaults(run=_run_similar)


def _distance(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of bits: {text!r}") from None
    if not 0 <= value <= MAX_DISTANCE:
        raise argparse.ArgumentTypeError(f"a distance is 0 to {MAX_DISTANCE} bits, not {value}")
    return value


def _run_similar(args: argparse.Namespace) -> int:
    from store.media.lookalike import hamming, hash_missing
    from store.queries import clusters

    distance = args.max_distance
    with opened_engine(args) as engine:
        if args.hash_missing:
            print(f"hashed {hash_missing(engine):,} images from their thumbnails")
        found = clusters(engine, _log_filter(args, engine), max_distance=distance)
    if not found:
        print(f"no look-alike images within {distance} bits")
        return 0
    for number, cluster in enumerate(found, 1):
        print(f"cluster {number}: {len(cluster)} images within {distance} bits")
        first = cluster[0].phash
        for member in cluster:
            prompt = " ".join(member.prompt.split())
            print(
                f"  {member.generation_id} {member.position:>2} {member.phash} "
                f"d={hamming(first, member.phash):<2} {member.created_at:%Y-%m-%d %H:%M} "
                f"{member.provider}/{member.model} {prompt[:60]}"
            )
    images = sum(len(cluster) for cluster in found)
    print(f"{len(found)} clusters, {images} images")
    return 0


def _seconds(milliseconds: float | None) -> str:
    if milliseconds is None or milliseconds != milliseconds:  # None, or NaN from pandas
        return "-"
    return f"{milliseconds / 1000:.1f}"


#: The stats table's columns: (heading, key in provider_summary's rows, how a value is shown).
STATS_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("provider", "provider", str),
    ("model", "model", lambda model: "" if model is None else str(model) or "-"),
    ("calls", "calls", lambda n: f"{int(n):,}"),
    ("errors", "errors", lambda n: f"{int(n):,}"),
    ("images", "images", lambda n: f"{int(n or 0):,}"),
    ("cost USD", "cost_usd", lambda cost: f"{float(cost):,.2f}"),
    ("unpriced", "unpriced", lambda n: f"{int(n or 0):,}"),
    ("p50 s", "p50_latency_ms", _seconds),
    ("p95 s", "p95_latency_ms", _seconds),
)
_NUMERIC_HEADINGS = {"calls", "errors", "images", "cost USD", "unpriced", "p50 s", "p95 s"}


def format_summary_table(rows: Sequence[Mapping[Hashable, Any]]) -> str:
    """A plain-text table of `provider_summary` rows with a total line (latency: no total).

    `unpriced` counts the calls without a price beside the cost they are not part of (a cost
    of 0.00 with unpriced calls is not "free")."""
    if not rows:
        return "no calls match"
    columns = [column for column in STATS_COLUMNS if column[1] in rows[0]]
    total: dict[Hashable, Any] = {
        "provider": "total",
        "model": None,
        **{
            key: sum(row.get(key) or 0 for row in rows)
            for key in ("calls", "errors", "images", "unpriced")
        },
        "cost_usd": sum(row["cost_usd"] or 0.0 for row in rows),
        "p50_latency_ms": None,
        "p95_latency_ms": None,
    }
    table = [[heading for heading, _, _ in columns]]
    table += [[show(row[key]) for _, key, show in columns] for row in [*rows, total]]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = [
        "  ".join(
            cell.rjust(width) if heading in _NUMERIC_HEADINGS else cell.ljust(width)
            for cell, width, (heading, _, _) in zip(line, widths, columns, strict=True)
        ).rstrip()
        for line in table
    ]
    rule = "-" * len(lines[0])
    return "\n".join([lines[0], rule, *lines[1:-1], rule, lines[-1]])


# --- demo -------------------------------------------------------------------------------------


def _add_demo(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="fill the log with realistic demo calls over the last 14 days"
    )
    parser.add_argument("--count", type=_count, default=2000, help="how many calls (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from store.transfer.demo import load_demo

    with (
        opened_engine(args) as engine,
        progress_bar("demo", "calls", enabled=not args.no_progress) as on_progress,
    ):
        result = load_demo(engine, count=args.count, seed=args.seed, on_progress=on_progress)
    print(result.describe())
    return 0


# --- thumbnails -------------------------------------------------------------------------------


def _add_thumbnails(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "thumbnails",
        help="download again the images that have a URL but no thumbnail",
        description="Retry every image with a URL and no thumbnail that is not known to be "
        "expired. Each download also records whether the URL is still live.",
    )
    parser.add_argument("--limit", type=int, help="at most this many images")
    parser.add_argument("--workers", type=int, default=4, help="parallel downloads (default 4)")
    _add_archive_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_thumbnails)


def _run_thumbnails(args: argparse.Namespace) -> int:
    from store.media.retry import retry_missing_thumbnails

    allowed_networks = _allowed_networks(args)
    with (
        opened_engine(args) as engine,
        progress_bar("thumbnails", "image", enabled=not args.no_progress) as on_progress,
    ):
        summary = retry_missing_thumbnails(
            engine,
            limit=args.limit,
            workers=args.workers,
            archive=_archive(args),
            on_progress=on_progress,
            allowed_networks=allowed_networks,
        )
    print(summary.describe())
    return 0


def _add_archive_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive",
        metavar="LOCATION",
        help="keep the full-size originals here too: a folder or an fsspec URL such as "
        "s3://bucket/prefix (default: $IMAGELOG_ARCHIVE)",
    )


def _archive(args: argparse.Namespace) -> Archive | None:
    """`--archive`, else `IMAGELOG_ARCHIVE`, else None; a location that cannot be one (a
    credential in it, a `..`) is one clear line, before any work starts."""
    from store.media.archive import Archive, BadLocation

    try:
        return Archive.configured(getattr(args, "archive", None))
    except BadLocation as exc:
        raise SystemExit(f"imagelog {args.command}: {exc}") from None


def _allowed_networks(args: argparse.Namespace) -> list[Network]:
    """`IMAGELOG_ALLOWED_NETWORKS`, read before any work starts: a bad entry is one clear line."""
    from store.media.network_guard import allowed_networks_from_environment

    try:
        return allowed_networks_from_environment()
    except ValueError as exc:
        raise SystemExit(f"imagelog {args.command}: {exc}") from None


# --- archive ----------------------------------------------------------------------------------


def _add_archive(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "archive",
        help="keep the originals of images that have none in the archive",
        description="With --missing: for every image without an archived original, point it "
        "at the archive's copy of the same content, upload it from the pending folder (the "
        "store was down when it was saved), or download it again from its hosted URL while "
        "that lives (through the network guard; kept only if it hashes to the recorded "
        "sha256). Exits 1 when an original could not be archived for a reason a rerun may "
        "cure (see each row's archive_error).",
    )
    parser.add_argument(
        "--missing",
        action="store_true",
        required=True,
        help="archive the originals the log does not have yet",
    )
    _add_archive_argument(parser)
    parser.add_argument("--limit", type=_positive, help="at most this many images")
    parser.add_argument(
        "--workers", type=_positive, default=4, help="images handled at once (default 4)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_archive)


def _run_archive(args: argparse.Namespace) -> int:
    from store.media.archive_missing import Result, archive_missing

    archive = _archive(args)
    if archive is None:
        print(
            "imagelog archive: no archive location: give --archive LOCATION or set "
            "IMAGELOG_ARCHIVE",
            file=sys.stderr,
        )
        return 1
    allowed_networks = _allowed_networks(args)
    with (
        opened_engine(args) as engine,
        progress_bar("archive", "image", enabled=not args.no_progress) as on_progress,
    ):
        summary = archive_missing(
            engine,
            archive,
            limit=args.limit,
            workers=args.workers,
            on_progress=on_progress,
            allowed_networks=allowed_networks,
        )
    print(summary.describe())
    return 1 if summary.counts.get(Result.failed) else 0


# --- check ------------------------------------------------------------------------------------


def _add_check(subparsers: Subparsers) -> None:
    from store.expiry.probe_defaults import DEFAULT_CONCURRENCY

    parser = subparsers.add_parser(
        "check",
        help="probe hosted image URLs and mark them live, expired or unknown",
        description="Probe image URLs with a one-byte GET. --due (the default) checks URLs whose "
        "predicted expiry has passed, those not checked for --stale-after, and failed ones whose "
        "backoff is over; --all checks every URL. A URL whose signed expiry has passed is "
        "marked expired without a request. Timeouts and 5xx never mark a URL expired.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--due", dest="mode", action="store_const", const="due", default="due")
    which.add_argument("--all", dest="mode", action="store_const", const="all")
    parser.add_argument(
        "--stale-after",
        type=_duration,
        default="6h",
        metavar="DURATION",
        help="re-check URLs not checked for this long, e.g. 30m, 6h, 2d (default 6h)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"probes in flight at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_check)


def _duration(text: str) -> timedelta:
    from store.expiry.lifetimes import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _run_check(args: argparse.Namespace) -> int:
    from store.expiry import CheckOptions, check_images

    options = CheckOptions(
        mode=args.mode,
        stale_after=args.stale_after,
        concurrency=args.concurrency,
        allowed_networks=_allowed_networks(args),
        archive=_archive(args),
    )
    with (
        opened_engine(args) as engine,
        progress_bar("check", "url", enabled=not args.no_progress) as on_progress,
    ):
        summary = check_images(engine, options, on_progress=on_progress)
    print(summary.describe())
    return 0


# --- review -----------------------------------------------------------------------------------


def _add_review(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "review",
        help="list, give and trace reviewers' verdicts on images",
        description="Reviewers judge each image approved, flagged (with a reason) or "
        "needs_another_look. Every verdict is appended to the image's trail; none is ever "
        "changed or removed.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="the images of the filtered calls with their verdicts, newest first"
    )
    _add_filter_arguments(listing)
    listing.add_argument("--limit", type=_positive, default=50, help="at most this many images")
    listing.set_defaults(run=_run_review_list)
    given = actions.add_parser("set", help="give an image a verdict (appended to its trail)")
    given.add_argument("call_id", help="the call's id (32 hex characters)")
    given.add_argument("position", type=_count, help="the image's position in the call, from 0")
    given.add_argument("verdict", choices=[verdict.value for verdict in Verdict])
    given.add_argument("--reviewer", required=True, help="who gives the verdict")
    given.add_argument(
        "--reason", help="why the image is flagged: one of the configured reasons (flagged only)"
    )
    given.add_argument("--note", help="a note for the trail")
    given.set_defaults(run=_run_review_set)
    trail = actions.add_parser("trail", help="every verdict given to a call's images, in order")
    trail.add_argument("call_id", help="the call's id (32 hex characters)")
    trail.add_argument("position", type=_count, nargs="?", help="only this image of the call")
    trail.set_defaults(run=_run_review_trail)


def _run_review_list(args: argparse.Namespace) -> int:
    from store.review import list_images

    with reading_engine(args) as engine:
        flt = _log_filter(args, engine)
        rows, more = list_images(engine, flt, limit=args.limit)
    if not rows:
        print("no images match")
        return 0
    table = [["time (UTC)", "call", "image", "provider / model", "verdict", "reviewer", "when"]]
    for row in rows:
        verdict = row.verdict or UNREVIEWED
        table.append(
            [
                f"{row.created_at:%Y-%m-%d %H:%M}",
                row.generation_id,
                str(row.position),
                f"{row.provider} / {row.model or '-'}",
                f"{verdict} ({row.reason})" if row.reason else verdict,
                row.reviewer or "",
                f"{row.reviewed_at:%Y-%m-%d %H:%M}" if row.reviewed_at else "",
            ]
        )
    widths = [max(len(line[k]) for line in table) for k in range(len(table[0]))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    if more:
        print(f"(the newest {len(rows)}; more match: raise --limit)", file=sys.stderr)
    return 0


def _run_review_set(args: argparse.Namespace) -> int:
    from store.review import NoSuchImage, ReviewError, give_verdict

    try:
        with opened_engine(args) as engine:
            change = give_verdict(
                engine,
                args.call_id,
                args.position,
                args.verdict,
                args.reviewer,
                reason=args.reason,
                note=args.note,
            )
    except (ReviewError, NoSuchImage) as exc:
        print(f"imagelog review set: {exc}", file=sys.stderr)
        return 1
    print(f"call {change.generation_id} image {change.position}: {change.describe()}")
    return 0


def _run_review_trail(args: argparse.Namespace) -> int:
    from store.review import trail

    with opened_engine(args) as engine:
        changes = trail(engine, args.call_id, args.position)
    if not changes:
        which = "" if args.position is None else f" image {args.position}"
        print(f"no verdict was given to call {args.call_id}{which}")
    for change in changes:
        print(f"image {change.position}  {change.describe()}")
    return 0


# --- rollups ----------------------------------------------------------------------------------


def _add_rollups(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "rollups",
        help="the Analytics page's hourly rollups: count them again from the calls",
        description="The Analytics page reads hourly rollups that every write keeps in step. "
        "--rebuild counts them, and each call's URL-state summary, again from the calls and "
        "images (after the log was changed by hand, say).",
    )
    parser.add_argument(
        "--rebuild", action="store_true", required=True, help="count the rollups again"
    )
    parser.set_defaults(run=_run_rollups)


def _run_rollups(args: argparse.Namespace) -> int:
    import time

    from store.schema.rollups import rebuild

    with opened_engine(args) as engine:
        started = time.perf_counter()
        rows = rebuild(engine)
    print(f"Rebuilt the rollups: {rows:,} rows in {time.perf_counter() - started:.1f} s.")
    return 0


# --- gateway ----------------------------------------------------------------------------------


def _add_gateway(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="run an OpenAI-compatible proxy that records images calls from any language",
        description="An OpenAI-compatible reverse proxy: point any SDK's base URL (or cURL) at "
        "it. /v1/images/generations, /edits and /variations are recorded; every other request "
        "passes through unrecorded. Upstreams come from configuration only: flags, then "
        "IMAGELOG_GATEWAY_* variables, then the TOML file (--config or "
        "IMAGELOG_GATEWAY_CONFIG), then the defaults.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="a TOML file of settings")
    parser.add_argument(
        "--upstream", metavar="URL", help="where requests go by default (https://api.openai.com)"
    )
    parser.add_argument(
        "--portkey-upstream",
        metavar="URL",
        help="where requests carrying x-portkey-* headers go (https://api.portkey.ai)",
    )
    parser.add_argument(
        "--route",
        action="append",
        metavar="NAME=URL",
        help="a named upstream, reached as /routes/NAME/... or with the header "
        "x-imagelog-route: NAME (repeatable)",
    )
    parser.add_argument("--host", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=_count, help="port to listen on (8790)")
    parser.add_argument(
        "--max-body-bytes",
        type=_count,
        metavar="BYTES",
        help="larger request bodies are answered 413 (64 MiB)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="how long an upstream may take to answer before the caller gets a 504 (600)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="at shutdown, how long to wait for records to be written (the rest is spooled)",
    )
    parser.set_defaults(run=_run_gateway)


def _run_gateway(args: argparse.Namespace) -> int:
    from store.gateway.config import ConfigError, load_config

    flags = {
        "upstream": args.upstream,
        "portkey_upstream": args.portkey_upstream,
        "routes": args.route,
        "host": args.host,
        "port": args.port,
        "max_body_bytes": args.max_body_bytes,
        "timeout": args.timeout,
    }
    try:
        config = load_config(flags, file=args.config)
    except ConfigError as exc:
        print(f"imagelog gateway: {exc}", file=sys.stderr)
        return 2
    from store.capture.recorder import Recorder
    from store.gateway.server import make_server

    routes = "".join(f", route {name} -> {url}" for name, url in config.routes.items())
    print(
        f"imagelog gateway: default upstream {config.upstream}, "
        f"x-portkey-* requests -> {config.portkey_upstream}{routes}",
        file=sys.stderr,
    )
    recorder = Recorder(args.database_url)
    make_server(config, recorder, drain_timeout=args.drain_timeout, log_level="info").run()
    return 0


# --- the command list: add yours here -----------------------------------------------------------

# --- dashboard --------------------------------------------------------------------------------


def _add_dashboard(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="run the Streamlit dashboard over the log",
        description="Runs the dashboard (the app/ pages, installed with the package as "
        "imagelog_app) with its bundled .streamlit/config.toml, on the log of --database-url "
        "or $IMAGELOG_DATABASE_URL.",
    )
    parser.add_argument("--port", type=_port, default=8501, help="port to serve on (8501)")
    parser.add_argument(
        "--address",
        help="address to listen on (default: Streamlit's, every interface; 127.0.0.1 for "
        "this machine only)",
    )
    parser.set_defaults(run=_run_dashboard)


def _port(text: str) -> int:
    value = _count(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (1-65535): {text!r}")
    return value


def dashboard_script() -> Path:
    """The dashboard's main.py: the installed `imagelog_app` package, else the checkout's app/
    (an editable install from a checkout without the package mapping)."""
    import importlib.util

    spec = importlib.util.find_spec("imagelog_app")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (script := Path(folder) / "main.py").is_file():
            return script
    return Path(__file__).resolve().parents[1] / "app" / "main.py"


def _run_dashboard(args: argparse.Namespace) -> int:
    """Replace this process with `python -m streamlit run main.py`: Streamlit then owns the
    signals and the exit code, as if started by hand."""
    script = dashboard_script()
    if not script.is_file():
        print(f"imagelog dashboard: the app is missing ({script})", file=sys.stderr)
        return 1
    if args.database_url:
        os.environ["IMAGELOG_DATABASE_URL"] = args.database_url
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port"]
    command.append(str(args.port))
    if args.address:
        command += ["--server.address", args.address]
    sys.stdout.flush()
    os.execv(sys.executable, command)


COMMANDS: list[Callable[[Subparsers], None]] = [
    _add_import,
    _add_export,
    _add_copy,
    _add_stats,
    _add_similar,
    _add_demo,
    _add_thumbnails,
    _add_archive,
    _add_check,
    _add_review,
    _add_rollups,
    _add_dashboard,
    _add_gateway,
]

"""Records per second of `import` (store.transfer.jsonl.import_jsonl), on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/import_throughput.py                       # 100k calls, both
    .venv/bin/python benchmarks/import_throughput.py --count 10000 --backend sqlite
    .venv/bin/python benchmarks/import_throughput.py --file /tmp/calls.jsonl  # made once, reused

The file is what `export` writes for demo calls (store.transfer.demo: several providers,
signed URLs, request / response JSON, metadata); images carry URLs and facts but no b64
payload, so the figure is about validation and the database, not base64 decoding. Each run
goes into a new database. The anchors, measured in the same run on new databases, read the
same lines with `json.loads` and hand the same rows straight to the driver in batches of the
same size (SQLite's `executemany`, PostgreSQL's `COPY`): no validation, no duplicate check, no
pricing, no expiry prediction, no scrub. "bare" goes into tables without keys or indexes (the
issue's anchor), "log's tables" into the log's own schema (what its indexes cost). The ratios
say how close `import` comes; "validate only" isolates pydantic's share.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.queries import LogFilter
from store.schema.db import make_engine
from store.schema.models import GENERATIONS, IMAGES
from store.transfer.demo import load_demo
from store.transfer.jsonl import export_records, import_jsonl, parse_line

DEFAULT_POSTGRES = os.environ.get(
    "IMAGELOG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def make_file(path: Path, count: int) -> None:
    """`count` demo calls as `export` writes them: loaded into a scratch log, then exported
    (an export carries every column, so import stores them as given)."""
    source = path.with_suffix(".source.db")
    engine = make_engine(f"sqlite:///{source}")
    try:
        load_demo(engine, count=count, seed=11)
        with path.open("w", encoding="utf-8") as out:
            export_records(engine, LogFilter(), "jsonl", out)
    finally:
        engine.dispose()
        _unlink_sqlite(source)


def fresh_databases(backend: str, scratch: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """New, empty database URLs for `backend`, each with a function that drops it."""
    number = 0
    while True:
        number += 1
        if backend == "sqlite":
            path = scratch / f"import_{number}.db"
            yield f"sqlite:///{path}", lambda path=path: _unlink_sqlite(path)
            continue
        schema = f"bench_import_{os.getpid()}_{number}"
        admin = create_engine(DEFAULT_POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in DEFAULT_POSTGRES else "?"
        url = f"{DEFAULT_POSTGRES}{separator}options=-csearch_path%3D{schema}"
        yield url, lambda admin=admin, schema=schema: _drop_schema(admin, schema)


def _unlink_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _drop_schema(admin: Engine, schema: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


class Timer:
    """Wall seconds and this process's CPU seconds since it was made. On a loaded machine the
    CPU time is the steadier figure (waiting for a core is not in it); on PostgreSQL it leaves
    out the server's share."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def time_import(engine: Engine, path: Path, batch_size: int) -> tuple[tuple[float, float], int]:
    timer = Timer()
    summary = import_jsonl(engine, path, batch_size=batch_size)
    return timer.seconds(), summary.imported


def bare_tables(engine: Engine) -> None:
    """`bare_generations` and `bare_images`: the columns of the log's tables, and nothing else
    (no key, index, constraint or trigger)."""
    with engine.begin() as connection:
        for table in (GENERATIONS, IMAGES):
            connection.exec_driver_sql(
                f"CREATE TABLE bare_{table.name} AS SELECT * FROM {table.name} WHERE 1 = 0"
            )


def time_bare(
    engine: Engine, path: Path, batch_size: int, *, bare: bool
) -> tuple[tuple[float, float], int]:
    """The anchor: `json.loads` of each line and the same rows handed straight to the driver,
    in batches of the same size: SQLite's `executemany`, PostgreSQL's `COPY`. No validation,
    no duplicate check, no pricing, no expiry prediction, no scrub. `bare`: into tables
    without keys or indexes (the figure the issue's goal is set against), else into the
    log's own tables (what the database itself costs a row)."""
    if bare:
        bare_tables(engine)
    timer = Timer()
    inserted = 0
    generations: list[tuple[Any, ...]] = []
    images: list[tuple[Any, ...]] = []
    with path.open("rb") as lines:
        for line in lines:
            generation, its_images = raw_rows(json.loads(line))
            generations.append(generation)
            images.extend(its_images)
            if len(generations) >= batch_size:
                inserted += _insert_bare(engine, generations, images, bare)
                generations, images = [], []
    inserted += _insert_bare(engine, generations, images, bare)
    return timer.seconds(), inserted


def _insert_bare(
    engine: Engine, generations: list[tuple[Any, ...]], images: list[tuple[Any, ...]], bare: bool
) -> int:
    if not generations:
        return 0
    prefix = "bare_" if bare else ""
    with engine.begin() as connection:
        cursor = connection.connection.cursor()
        for table, columns, rows in (
            (f"{prefix}generations", GENERATION_COLUMNS, generations),
            (f"{prefix}images", IMAGE_COLUMNS, images),
        ):
            names = ", ".join(columns)
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        cursor.close()
    return len(generations)


GENERATION_COLUMNS = (
    "id", "created_at", "provider", "model", "operation", "prompt", "revised_prompt", "size",
    "quality", "n", "params_json", "status", "error", "http_status", "latency_ms", "cost_usd",
    "cost_source", "cost_note", "usage_json", "request_id", "trace_id", "user_id",
    "metadata_json", "request_json", "response_json", "image_count", "source",
)  # fmt: skip
IMAGE_COLUMNS = (
    "generation_id", "position", "url", "url_host", "revised_prompt", "expires_at",
    "expires_source", "url_state", "last_checked_at", "check_failures", "sha256", "width",
    "height", "format", "byte_size",
)  # fmt: skip


def raw_rows(data: dict[str, Any]) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """A JSON line's rows as driver values, field by field with no checks (the anchor's whole
    job): times as datetimes, JSON as its text."""
    params = data.get("params", {})
    generation = (
        data["id"],
        _time(data["created_at"]),
        data["provider"],
        data.get("model", ""),
        data.get("operation", "generate"),
        data.get("prompt", ""),
        data.get("revised_prompt"),
        params.get("size"),
        params.get("quality"),
        params.get("n", 1),
        _json(params),
        data.get("status", "ok"),
        data.get("error"),
        data.get("http_status"),
        data.get("latency_ms"),
        data.get("cost_usd"),
        data.get("cost_source", "unknown"),
        data.get("cost_note"),
        _json(data.get("usage")),
        data.get("request_id"),
        data.get("trace_id"),
        data.get("user"),
        _json(data.get("metadata", {})),
        _json(data.get("request")),
        _json(data.get("response")),
        len(data.get("images", [])),
        data.get("source", "import"),
    )
    images = [
        (
            data["id"],
            position,
            image.get("url"),
            image.get("url_host"),
            image.get("revised_prompt"),
            _time(image.get("expires_at")),
            image.get("expires_source"),
            image.get("url_state", "unknown"),
            _time(image.get("last_checked_at")),
            0,
            image.get("sha256"),
            image.get("width"),
            image.get("height"),
            image.get("format"),
            image.get("byte_size"),
        )
        for position, image in enumerate(data.get("images", []))
    ]
    return generation, images


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def time_validation(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as lines:
        for line in lines:
            parse_line(line)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--file", type=Path, help="JSONL to reuse (made once if missing)")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]

    with tempfile.TemporaryDirectory(prefix="imagelog-import-") as scratch_dir:
        scratch = Path(scratch_dir)
        path = args.file or scratch / "calls.jsonl"
        if not path.exists():
            make_file(path, args.count)
        with path.open("rb") as lines:
            count = sum(1 for _ in lines)
        size_mb = path.stat().st_size / 1e6
        validate_s = time_validation(path)
        report = io.StringIO()
        print(
            f"import of {count:,} calls ({size_mb:.0f} MB JSONL, URLs, no b64), "
            f"batches of {args.batch_size:,}; validate only: {count / validate_s:,.0f} rec/s",
            file=report,
        )
        header = ("backend", "import rec/s", "bare", "import/bare", "log's tables", "import/log")
        print(
            f"{header[0]:<16}{header[1]:>13}{header[2]:>9}{header[3]:>13}"
            f"{header[4]:>14}{header[5]:>12}",
            file=report,
        )
        for backend in backends:
            timings = time_backend(backend, scratch, path, args)
            for clock, label in ((0, "wall"), (1, "CPU")):
                import_rate, bare_rate, log_rate = (count / times[clock] for times in timings)
                print(
                    f"{backend + ' ' + label:<16}{import_rate:>13,.0f}{bare_rate:>9,.0f}"
                    f"{import_rate / bare_rate:>13.2f}{log_rate:>14,.0f}"
                    f"{import_rate / log_rate:>12.2f}",
                    file=report,
                )
        print(
            "bare: json.loads + the driver's executemany (SQLite) / COPY (PostgreSQL) into "
            "tables without keys or indexes; log's tables: the same into the log's schema. "
            "wall: elapsed time; CPU: this process's CPU time (PostgreSQL's server work is "
            "not in it). Goal: import/bare >= 0.35",
            file=report,
        )
        print(
            f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
            file=report,
        )
        print(report.getvalue(), end="")
    return 0


def time_backend(
    backend: str, scratch: Path, path: Path, args: argparse.Namespace
) -> list[tuple[float, float]]:
    """(wall, CPU) seconds for `import`, the bare anchor and the anchor into the log's tables,
    each on a new database of `backend`."""
    databases = fresh_databases(backend, scratch)
    timings = []
    for run in ("import", "bare", "log"):
        url, drop = next(databases)
        engine = make_engine(url)
        try:
            if run == "import":
                seconds, stored = time_import(engine, path, args.batch_size)
            else:
                seconds, stored = time_bare(engine, path, args.batch_size, bare=run == "bare")
        finally:
            engine.dispose()
            drop()
        assert stored > 0, (run, stored)
        timings.append(seconds)
    return timings


if __name__ == "__main__":
    raise SystemExit(main())

"""Records per second of `import` (store.transfer.jsonl.import_jsonl), on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/import_throughput.py                       # 100k calls, both
    .venv/bin/python benchmarks/import_throughput.py --count 10000 --backend sqlite

The file is what `export` writes for demo calls (store.transfer.demo: several providers,
signed URLs, request / response JSON, metadata); images carry URLs and facts but no b64
payload, so the
figure is about validation and the database, not base64 decoding. Each run imports into a new
database. The raw baseline, measured in the same run on another new database, inserts the same
lines with `json.loads` and a plain SQLAlchemy Core `executemany` in batches of the same size:
no validation, no duplicate check, no pricing, no expiry prediction. The ratio says what
`import` costs over the bare insert; "validate only" isolates pydantic's share.
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


def time_import(engine: Engine, path: Path, batch_size: int) -> tuple[float, int]:
    started = time.perf_counter()
    summary = import_jsonl(engine, path, batch_size=batch_size)
    return time.perf_counter() - started, summary.imported


def time_raw(engine: Engine, path: Path, batch_size: int) -> tuple[float, int]:
    """The baseline: json.loads and a plain executemany of the same rows, same batch size."""
    started = time.perf_counter()
    inserted = 0
    generations: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    with path.open("rb") as lines:
        for line in lines:
            generation, its_images = raw_rows(json.loads(line))
            generations.append(generation)
            images.extend(its_images)
            if len(generations) >= batch_size:
                inserted += _insert_raw(engine, generations, images)
                generations, images = [], []
    inserted += _insert_raw(engine, generations, images)
    return time.perf_counter() - started, inserted


def _insert_raw(engine: Engine, generations: list[dict], images: list[dict]) -> int:
    if not generations:
        return 0
    with engine.begin() as connection:
        connection.execute(GENERATIONS.insert(), generations)
        if images:
            connection.execute(IMAGES.insert(), images)
    return len(generations)


def raw_rows(data: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A JSON line's rows, mapped field by field with no checks (the baseline's whole job)."""
    params = data.get("params", {})
    generation = {
        "id": data["id"],
        "created_at": datetime.fromisoformat(data["created_at"]),
        "provider": data["provider"],
        "model": data.get("model", ""),
        "operation": data.get("operation", "generate"),
        "prompt": data.get("prompt", ""),
        "revised_prompt": data.get("revised_prompt"),
        "size": params.get("size"),
        "quality": params.get("quality"),
        "n": params.get("n", 1),
        "params_json": params,
        "status": data.get("status", "ok"),
        "error": data.get("error"),
        "http_status": data.get("http_status"),
        "latency_ms": data.get("latency_ms"),
        "cost_usd": data.get("cost_usd"),
        "cost_source": data.get("cost_source", "unknown"),
        "cost_note": data.get("cost_note"),
        "usage_json": data.get("usage"),
        "request_id": data.get("request_id"),
        "trace_id": data.get("trace_id"),
        "user_id": data.get("user"),
        "metadata_json": data.get("metadata", {}),
        "request_json": data.get("request"),
        "response_json": data.get("response"),
        "image_count": len(data.get("images", [])),
        "source": data.get("source", "import"),
    }
    images = [
        {
            "generation_id": data["id"],
            "position": position,
            "url": image.get("url"),
            "revised_prompt": image.get("revised_prompt"),
            "expires_at": _time(image.get("expires_at")),
            "url_state": image.get("url_state", "unknown"),
            "last_checked_at": _time(image.get("last_checked_at")),
            "check_failures": 0,
            "sha256": image.get("sha256"),
            "width": image.get("width"),
            "height": image.get("height"),
            "format": image.get("format"),
            "byte_size": image.get("byte_size"),
        }
        for position, image in enumerate(data.get("images", []))
    ]
    return generation, images


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
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]

    with tempfile.TemporaryDirectory(prefix="imagelog-import-") as scratch_dir:
        scratch = Path(scratch_dir)
        path = scratch / "calls.jsonl"
        make_file(path, args.count)
        size_mb = path.stat().st_size / 1e6
        validate_s = time_validation(path)
        report = io.StringIO()
        print(
            f"import of {args.count:,} calls ({size_mb:.0f} MB JSONL, URLs, no b64), "
            f"batches of {args.batch_size:,}; validate only: {args.count / validate_s:,.0f} rec/s",
            file=report,
        )
        header = ("backend", "import rec/s", "raw executemany rec/s", "raw/import")
        print(f"{header[0]:<11} {header[1]:>13} {header[2]:>22} {header[3]:>10}", file=report)
        for backend in backends:
            databases = fresh_databases(backend, scratch)
            (import_url, drop_import), (raw_url, drop_raw) = next(databases), next(databases)
            import_engine, raw_engine = make_engine(import_url), make_engine(raw_url)
            try:
                import_s, imported = time_import(import_engine, path, args.batch_size)
                raw_s, inserted = time_raw(raw_engine, path, args.batch_size)
            finally:
                import_engine.dispose()
                raw_engine.dispose()
                drop_import()
                drop_raw()
            assert imported == inserted == args.count, (imported, inserted)
            import_rate, raw_rate = args.count / import_s, args.count / raw_s
            print(
                f"{backend:<11} {import_rate:>13,.0f} {raw_rate:>22,.0f} "
                f"{raw_rate / import_rate:>9.2f}x",
                file=report,
            )
        print(report.getvalue(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

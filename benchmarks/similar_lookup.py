"""How long the Detail page's "similar images" lookup takes at a million images, against a full
scan of every hash in the same run, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/similar_lookup.py                      # 1,000,000 images, both
    .venv/bin/python benchmarks/similar_lookup.py --count 100000 --backend sqlite

The log is built once and reused: SQLite in benchmarks/out/similar_<count>.db, PostgreSQL in
the schema bench_similar_<count>. It holds `count` calls of one image each (all of the
schema's indexes in place), whose hashes are look-alike families as a busy log has them: a
picture generated again and again (50 variants of each base hash, each 0 to 8 bits away from
it), so each lookup has real neighbours to find besides the chance band collisions.

With --clusters, `imagelog similar`'s grouping of the whole log is timed once too, at 3
and 6 bits.

Timed per query hash (drawn from the log), as the median and p95 of --queries lookups:
`similar_images` at 3, 6 and 11 bits (the banded index reads, the exact distances, and the
rows of the 12 nearest joined to their calls). The raw baseline is what a log without the
bands must do: read every image's hash and count the distance to each (a full scan), timed
in the same run; on PostgreSQL also the scan done by the server (`bit_count` of the XOR).
The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_queries import DEFAULT_POSTGRES, OUT, postgres_schema_url

from store.media.lookalike import hamming
from store.queries import LogFilter
from store.queries.similar import clusters, similar_images
from store.schema.db import make_engine
from store.schema.models import IMAGES, phash_bands

FAMILY = 50  # variants per base picture
MAX_VARIANT_BITS = 8
DISTANCES = (3, 6, 11)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def sqlite_url(count: int) -> str:
    OUT.mkdir(exist_ok=True)
    return f"sqlite:///{OUT / f'similar_{count}.db'}"


def postgres_url(base: str, count: int) -> str:
    return postgres_schema_url(base, f"bench_similar_{count}")


def hashes(count: int, seed: int = 13) -> list[str]:
    """`count` hashes in look-alike families of FAMILY."""
    rng = random.Random(seed)
    found: list[str] = []
    while len(found) < count:
        base = rng.getrandbits(64)
        for _ in range(min(FAMILY, count - len(found))):
            value = base
            for bit in rng.sample(range(64), rng.randint(0, MAX_VARIANT_BITS)):
                value ^= 1 << bit
            found.append(f"{value:016x}")
    return found


def ensure_images(engine: Engine, count: int) -> None:
    """Fill the log with `count` one-image calls (a no-op when a previous run left them)."""
    with engine.connect() as connection:
        present = connection.execute(select(func.count()).select_from(IMAGES)).scalar_one()
    if present >= count:
        return
    if present:
        raise SystemExit(f"{engine.url}: holds {present:,} images, not {count:,}: drop it first")
    print(f"{engine.dialect.name}: writing {count:,} calls with one hashed image ...", flush=True)
    started = time.perf_counter()
    generations, images = [], []
    for index, phash in enumerate(hashes(count)):
        call_id = f"{index:032x}"
        created = (T0 + timedelta(seconds=index * 1.3)).isoformat(sep=" ")
        generations.append((call_id, created, "openai", "gpt-image-1", f"picture {index}"))
        bands = list(phash_bands(phash).values())
        images.append((call_id, phash, *bands))
    if engine.dialect.name == "postgresql":
        _copy_postgres(engine, generations, images)
    else:
        _insert_sqlite(engine, generations, images)
    print(f"  written in {time.perf_counter() - started:,.0f} s", flush=True)


_GENERATION_COLUMNS = (
    "id, created_at, provider, model, prompt, operation, n, status, cost_source, "
    "image_count, source, params_json, metadata_json"
)
_IMAGE_COLUMNS = (
    "generation_id, position, url_state, check_failures, phash, "
    "phash_band0, phash_band1, phash_band2, phash_band3"
)


def _insert_sqlite(engine: Engine, generations: list, images: list) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.executemany(
            f"INSERT INTO generations ({_GENERATION_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, 'generate', 1, 'ok', 'unknown', 1, 'bench', '{}', '{}')",
            generations,
        )
        cursor.executemany(
            f"INSERT INTO images ({_IMAGE_COLUMNS}) VALUES (?, 0, 'none', 0, ?, ?, ?, ?, ?)",
            images,
        )
        raw.commit()
    finally:
        raw.close()


def _copy_postgres(engine: Engine, generations: list, images: list) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY generations ({_GENERATION_COLUMNS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in generations:
                copy.write_row((*row, "generate", 1, "ok", "unknown", 1, "bench", "{}", "{}"))
        with cursor.copy(f"COPY images ({_IMAGE_COLUMNS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for call_id, phash, *bands in images:
                copy.write_row((call_id, 0, "none", 0, phash, *bands))
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE generations"))
        connection.execute(text("VACUUM ANALYZE images"))


def timings_ms(run, queries: list[str]) -> tuple[float, float]:
    """Median and p95 milliseconds of `run(query)` over the queries (one warm-up first)."""
    run(queries[0])
    spent = []
    for query in queries:
        started = time.perf_counter()
        run(query)
        spent.append((time.perf_counter() - started) * 1000)
    spent.sort()
    return statistics.median(spent), spent[min(len(spent) - 1, int(len(spent) * 0.95))]


def full_scan(engine: Engine, query: str, max_distance: int) -> list[int]:
    """The raw baseline: every image's hash read, every distance counted."""
    with engine.connect() as connection:
        rows = connection.execute(select(IMAGES.c.id, IMAGES.c.phash)).all()
    return [image_id for image_id, phash in rows if phash and hamming(query, phash) <= max_distance]


def server_scan(engine: Engine, query: str, max_distance: int) -> list[int]:
    """PostgreSQL's own full scan: the XOR's bit count for every row, in the server."""
    sql = text(
        "SELECT id FROM images WHERE bit_count(('x' || phash)::bit(64) # "
        "('x' || :q)::bit(64)) <= :d"
    )
    with engine.connect() as connection:
        return list(connection.scalars(sql, {"q": query, "d": max_distance}))


def bench(engine: Engine, count: int, queries: int) -> None:
    drawn = random.Random(5).sample(range(1, count), queries)
    with engine.connect() as connection:
        sample = connection.scalars(select(IMAGES.c.phash).where(IMAGES.c.id.in_(drawn))).all()
    scan_queries = sample[:5]
    print(f"\n{engine.dialect.name}: {count:,} images, {len(sample)} query hashes")
    print("found: images within the distance, the query's own included, mean of 5 queries")
    print(f"{'lookup':<34} {'median ms':>10} {'p95 ms':>9} {'found':>7}")
    medians = {}
    for distance in DISTANCES:
        found = [
            len(similar_images(engine, query, max_distance=distance, limit=1000))
            for query in scan_queries
        ]
        medians[distance], p95 = timings_ms(
            lambda query, d=distance: similar_images(engine, query, max_distance=d), sample
        )
        print(
            f"{'banded, max distance ' + str(distance):<34} {medians[distance]:>10.2f} "
            f"{p95:>9.2f} {statistics.mean(found):>7.1f}"
        )
    scanned: list[int] = []  # the warm-up's count first, then one per timed query
    scan_median, scan_p95 = timings_ms(
        lambda query: scanned.append(len(full_scan(engine, query, 6))), scan_queries
    )
    print(
        f"{'full scan in Python, distance 6':<34} {scan_median:>10.2f} {scan_p95:>9.2f} "
        f"{statistics.mean(scanned[1:]):>7.1f}"
    )
    banded_median = medians[6]
    print(f"ratio full scan / banded (distance 6): {scan_median / banded_median:,.0f}x")
    if engine.dialect.name == "postgresql":
        server_median, server_p95 = timings_ms(
            lambda query: server_scan(engine, query, 6), scan_queries
        )
        print(
            f"{'full scan in PostgreSQL, distance 6':<34} {server_median:>10.2f} {server_p95:>9.2f}"
        )
        print(f"ratio server scan / banded (distance 6): {server_median / banded_median:,.0f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="images in the log")
    parser.add_argument("--queries", type=int, default=100, help="lookups timed per case")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument(
        "--clusters",
        action="store_true",
        help="also time `imagelog similar`'s clustering of the whole log once (3 and 6 bits)",
    )
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        url = (
            sqlite_url(args.count)
            if backend == "sqlite"
            else postgres_url(args.postgres_url, args.count)
        )
        engine = make_engine(url)
        try:
            ensure_images(engine, args.count)
            bench(engine, args.count, args.queries)
            for distance in (3, 6) if args.clusters else ():
                started = time.perf_counter()
                found = clusters(engine, LogFilter(), max_distance=distance)
                spent = time.perf_counter() - started
                members = sum(len(cluster) for cluster in found)
                print(
                    f"clusters of the whole log, distance {distance}: {len(found):,} clusters "
                    f"of {members:,} images in {spent:,.1f} s",
                    flush=True,
                )
        finally:
            engine.dispose()
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

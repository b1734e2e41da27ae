"""A log of a million (or ten million) calls, built in SQL in minutes, for the issue-10 figures.

    .venv/bin/python benchmarks/scale_log.py --count 1000000 --backend sqlite

The demo generator (benchmarks/dashboard_queries.py) writes realistic calls through the
writer at a few hundred a second on a shared machine: hours for a million. This builds the
same shape straight in the database instead, one INSERT ... SELECT over a generated series
(SQLite's recursive CTE, PostgreSQL's generate_series: the server writes the rows, as COPY
would, with no Python per row): 30 days of calls over six providers and twelve models,
latencies spread over two orders of magnitude, 3% errors with their HTTP status, 10%
unpriced, one image per successful call (60% expired, 10% live, 25% unknown, 5% base64),
prompts from a word list (for the search), users and tags. The summary columns are written
with the rows and the rollups counted once by `rebuild` (timed: what `imagelog rollups
--rebuild` costs at that size). Reused when present: SQLite in benchmarks/out/, PostgreSQL in
its own schema.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard_queries import DEFAULT_POSTGRES, OUT, postgres_schema_url

from store.schema.db import make_engine
from store.schema.models import GENERATIONS
from store.schema.rollups import rebuild

#: (provider, model, price per image or None, typical latency in ms)
MODELS = [
    ("openai", "dall-e-3", 0.04, 12_000),
    ("openai", "gpt-image-1", 0.042, 30_000),
    ("openai", "dall-e-2", 0.02, 6_000),
    ("azure-openai", "dall-e-3", 0.04, 14_000),
    ("azure-openai", "gpt-image-1", 0.042, 32_000),
    ("replicate", "flux-schnell", 0.003, 2_000),
    ("replicate", "sdxl", None, 5_000),
    ("bfl", "flux-pro-1.1", 0.04, 9_000),
    ("bfl", "flux-pro-1.1-ultra", 0.06, 15_000),
    ("google", "imagen-4", 0.04, 8_000),
    ("stability", "sd3.5-large", 0.065, 7_000),
    ("stability", "core", None, 4_000),
]
WORDS = [
    *("lighthouse", "castle", "fox", "harbor", "forest", "robot", "portrait", "city"),
    *("night", "river", "mountain", "dragon", "garden", "desert", "tower", "ocean"),
    *("village", "market", "bridge", "storm", "sunset", "neon", "winter", "meadow"),
    *("cathedral", "astronaut", "tiger", "illustration", "watercolor", "poster", "logo"),
]
DAYS = 30
#: A multiplicative hash of the row number: deterministic "random" picks both backends agree on.
HASH = 2654435761


def sqlite_scale_url(count: int) -> str:
    return f"sqlite:///{OUT / f'scale_{count}.db'}"


def scale_url(backend: str, count: int, base: str = DEFAULT_POSTGRES) -> str:
    if backend == "sqlite":
        OUT.mkdir(exist_ok=True)
        return sqlite_scale_url(count)
    return postgres_schema_url(base, f"bench_scale_{count}")


def ensure_scale_log(engine: Engine, count: int) -> None:
    """Build the log of `count` calls in `engine` unless it is there already."""
    with engine.connect() as connection:
        present = connection.execute(select(func.count()).select_from(GENERATIONS)).scalar_one()
    if present >= count:
        return
    if present:
        raise SystemExit(f"{engine.url}: holds {present:,} calls, not {count:,}: remove it first")
    dialect = engine.dialect.name
    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in _statements(dialect, count):
            connection.execute(text(statement))
    built = time.perf_counter() - started
    started = time.perf_counter()
    rows = rebuild(engine)
    rebuilt = time.perf_counter() - started
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in ("generations", "images", "call_rollups"):
                connection.execute(text(f"VACUUM ANALYZE {table}"))
    print(
        f"{dialect}: built {count:,} calls in {built:.0f} s ({count / built:,.0f}/s); "
        f"rollups --rebuild: {rows:,} rows in {rebuilt:.1f} s",
        flush=True,
    )


def _statements(dialect: str, count: int) -> list[str]:
    models = " UNION ALL ".join(
        f"SELECT {k} AS k, '{provider}' AS provider, '{model}' AS model, "
        f"{'NULL' if price is None else price} AS price, {latency} AS latency"
        for k, (provider, model, price, latency) in enumerate(MODELS)
    )
    words = " UNION ALL ".join(f"SELECT {k} AS k, '{word}' AS word" for k, word in enumerate(WORDS))
    if dialect == "postgresql":
        series = f"SELECT x FROM generate_series(1, {count}) AS x"
        step = DAYS * 86400.0 / count
        moment = f"timestamptz '2026-11-01 00:00:00+00' - (x * {step}) * interval '1 second'"
        hex_id = "lpad(to_hex(x), 32, '0')"
        hashed = f"((x::bigint * {HASH}) % 1000003)"
        text_of = "::text"
    else:
        series = (
            f"WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt "
            f"WHERE x < {count}) SELECT x FROM cnt"
        )
        moment = (
            f"strftime('%Y-%m-%d %H:%M:%f', 1793491200 - x * {DAYS * 86400.0 / count}, "
            "'unixepoch') || '000'"
        )
        hex_id = "printf('%032x', x)"
        hashed = f"((x * {HASH}) % 1000003)"
        text_of = ""
    pick = f"({hashed} % 100)"
    failed = f"({pick} < 3)"
    state = (
        f"CASE WHEN {failed} THEN NULL WHEN ({hashed} / 7) % 100 < 60 THEN 'expired' "
        f"WHEN ({hashed} / 7) % 100 < 70 THEN 'live' WHEN ({hashed} / 7) % 100 < 95 "
        "THEN 'unknown' ELSE 'none' END"
    )
    calls = f"""
        SELECT x, {hex_id} AS id, {moment} AS created_at, m.provider, m.model, m.price,
               m.latency * exp((({hashed} / 13) % 1000) / 1000.0 * 2.3 - 0.8) AS latency_ms,
               {failed} AS failed, {state} AS state,
               'a ' || w1.word || ' and a ' || w2.word || ' at ' || w3.word AS prompt,
               'user' || ({hashed} % 50){text_of} AS user_id, ({hashed} / 11) % 20 AS batch
        FROM ({series}) AS numbers
        JOIN ({models}) AS m ON m.k = {hashed} % {len(MODELS)}
        JOIN ({words}) AS w1 ON w1.k = ({hashed} / 3) % {len(WORDS)}
        JOIN ({words}) AS w2 ON w2.k = ({hashed} / 5) % {len(WORDS)}
        JOIN ({words}) AS w3 ON w3.k = (x / 17) % {len(WORDS)}
    """
    json_object = "json_object" if dialect == "sqlite" else "jsonb_build_object"
    json_tag, json_params = f"{json_object}('batch', batch)", f"{json_object}('size', '1024x1024')"
    generations = f"""
        INSERT INTO generations (id, created_at, provider, model, operation, prompt, size, n,
            params_json, status, error, http_status, latency_ms, cost_usd, cost_source,
            user_id, metadata_json, image_count, source,
            images_live, images_expired, images_unknown, images_none)
        SELECT id, created_at, provider, model, 'generate', prompt, '1024x1024', 1,
            {json_params},
            CASE WHEN failed THEN 'error' ELSE 'ok' END,
            CASE WHEN failed THEN 'rate_limit_exceeded: slow down' END,
            CASE WHEN failed THEN (CASE x % 3 WHEN 0 THEN 400 WHEN 1 THEN 429 ELSE 500 END)
                 ELSE 200 END,
            latency_ms,
            CASE WHEN failed OR price IS NULL THEN NULL ELSE price END,
            CASE WHEN failed OR price IS NULL THEN 'unknown' ELSE 'per_image' END,
            user_id, {json_tag},
            CASE WHEN failed THEN 0 ELSE 1 END, 'import',
            CASE WHEN state = 'live' THEN 1 ELSE 0 END,
            CASE WHEN state = 'expired' THEN 1 ELSE 0 END,
            CASE WHEN state = 'unknown' THEN 1 ELSE 0 END,
            CASE WHEN state = 'none' THEN 1 ELSE 0 END
        FROM ({calls}) AS calls
    """
    images = """
        INSERT INTO images (generation_id, position, url, url_host, url_state, check_failures)
        SELECT id, 0,
            CASE WHEN images_none > 0 THEN NULL ELSE 'https://img.example/' || id || '.png' END,
            CASE WHEN images_none > 0 THEN NULL ELSE 'img.example' END,
            CASE WHEN images_live > 0 THEN 'live' WHEN images_expired > 0 THEN 'expired'
                 WHEN images_unknown > 0 THEN 'unknown' ELSE 'none' END,
            0
        FROM generations WHERE image_count > 0 ORDER BY created_at
    """
    return [generations, images]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args(argv)
    engine = make_engine(scale_url(args.backend, args.count, args.postgres_url))
    try:
        ensure_scale_log(engine, args.count)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

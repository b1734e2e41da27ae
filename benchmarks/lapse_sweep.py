"""What the lapse sweep costs: when there is nothing to do (every dashboard run may pay it) and
when many URLs lapse at once (a log imported from elsewhere), plus `check --due`'s new branch.

    .venv/bin/python benchmarks/lapse_sweep.py                       # 100,000 images, SQLite
    .venv/bin/python benchmarks/lapse_sweep.py --images 300000 --lapsed 50000
    .venv/bin/python benchmarks/lapse_sweep.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The log: `--images` calls of one image each: 60% expired (a probe found them gone), 30% live
with hours left, 5% unknown with no predicted expiry, 5% no URL; and `--lapsed` more live URLs
whose expiry lies between the two clocks the sweep is run "as of" (`now=`): before it, there is
nothing to sweep; after it, every one of them has lapsed. The log is built once per run in a
new SQLite file (or a new PostgreSQL schema, dropped at the end).

Figures, each beside a raw baseline measured in the same run:
- idle sweep: `expire_lapsed` finding nothing (median of 200) vs the same two SELECTs in raw
  SQL on one connection (the sweep takes a connection per read, so that a long sweep never
  holds a read open while it writes); PostgreSQL's table is ANALYZEd first, as autovacuum
  would have done after the load;
- lapse of `--lapsed` URLs: `expire_lapsed` vs one set-based `UPDATE ... WHERE` of the same rows
  (which cannot tell which calls changed, or keep the last probe per row); rows are put back to
  live between rounds, and rounds alternate;
- `check --due`'s branch for estimated expiries (rows to confirm with a probe) vs counting the
  expired rows from the index alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, func, select, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store.capture.writer import insert_calls  # noqa: E402
from store.expiry.check import due_query  # noqa: E402
from store.expiry.lapse import expire_lapsed  # noqa: E402
from store.expiry.prediction import (  # noqa: E402
    ESTIMATE_PASSED,
    PREDICTED_EXPIRY_CODES,
    PROVIDER_LIFETIME,
)
from store.schema.db import make_engine  # noqa: E402
from store.schema.models import IMAGES, utcnow  # noqa: E402
from store.schema.records import CallRecord, ImageRecord  # noqa: E402

BATCH = 2000
#: The live arm's "no probe since its expiry", in raw SQL for the baseline.
PROBED_SINCE = "(last_checked_at IS NULL OR last_checked_at < expires_at)"


def build(engine: Engine, images: int, lapsed: int, now: datetime) -> None:
    """The log described in the module's docstring; lapsed URLs expire within 1 h of `now`."""
    started = time.perf_counter()
    records = []
    for index in range(images + lapsed):
        created = now - timedelta(minutes=(index % 20_000) + 90)
        url = f"https://replicate.delivery/pbxt/{index:08d}/out-0.webp"
        provider = "replicate"
        if index >= images:
            image = ImageRecord(
                url=url,
                url_state="live",
                expires_at=now + timedelta(seconds=1 + index % 3500),
                expires_source=PROVIDER_LIFETIME,
                last_checked_at=created,
                last_http_status=200,
            )
        elif index % 20 < 12:
            image = ImageRecord(
                url=url,
                url_state="expired",
                expires_at=created + timedelta(hours=1),
                expires_source=PROVIDER_LIFETIME,
                last_checked_at=created + timedelta(hours=1, minutes=5),
                last_http_status=404,
            )
        elif index % 20 < 18:
            image = ImageRecord(
                url=url,
                url_state="live",
                expires_at=now + timedelta(hours=5),
                last_checked_at=created,
                last_http_status=200,
            )
        elif index % 20 == 18:
            # A host and provider with no known lifetime: no predicted expiry.
            url = f"https://images.example.com/{index:08d}.png"
            image = ImageRecord(url=url, url_state="unknown")
            provider = "self-hosted"
        else:
            image = ImageRecord(url_state="none")
        records.append(CallRecord(provider=provider, created_at=created, images=[image]))
        if len(records) == BATCH:
            insert_calls(engine, records)
            records = []
    if records:
        insert_calls(engine, records)
    print(f"built {images + lapsed:,} images in {time.perf_counter() - started:.0f} s")


def put_back(engine: Engine) -> None:
    """The swept rows live again, as they were before the sweep."""
    with engine.begin() as connection:
        connection.execute(
            update(IMAGES)
            .where(IMAGES.c.last_error_code.in_(list(PREDICTED_EXPIRY_CODES)))
            .values(url_state="live", last_error_code=None)
        )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--lapsed", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="PostgreSQL (a new schema is made and dropped)")
    args = parser.parse_args()

    schema = None
    if args.database_url:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in args.database_url else "?"
        url = f"{args.database_url}{separator}options={quote(f'-csearch_path={schema}')}"
    else:
        folder = ROOT / "benchmarks" / "out"
        folder.mkdir(exist_ok=True)
        path = folder / f"lapse_{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
    engine = make_engine(url)
    try:
        now = utcnow()
        build(engine, args.images, args.lapsed, now)
        before, after = now, now + timedelta(hours=1)
        total = args.images + args.lapsed
        print(f"{engine.dialect.name}, {total:,} images, load {os.getloadavg()}")

        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:  # what autovacuum does soon after a bulk load
                connection.exec_driver_sql("ANALYZE images")

        def bare_select() -> None:
            with engine.connect() as connection:
                for extra in ("url_state = 'unknown'", "url_state = 'live' AND " + PROBED_SINCE):
                    connection.execute(
                        text(
                            "SELECT id, generation_id, expires_source, last_checked_at, "
                            f"last_http_status, check_failures FROM images WHERE {extra} "
                            "AND expires_at <= :now LIMIT 5000"
                        ),
                        {"now": before},
                    ).all()

        idle = [timed(lambda: expire_lapsed(engine, before)) for _ in range(200)]
        bare = [timed(bare_select) for _ in range(200)]
        ours, raw = statistics.median(idle), statistics.median(bare)
        print(
            f"idle sweep: {ours * 1000:.2f} ms median vs its two SELECTs in raw SQL "
            f"{raw * 1000:.2f} ms (ratio {ours / raw:.1f})"
        )

        def set_based() -> None:
            with engine.begin() as connection:
                connection.execute(
                    update(IMAGES)
                    .where(
                        IMAGES.c.url_state.in_(["live", "unknown"]),
                        IMAGES.c.expires_at <= after,
                        IMAGES.c.last_checked_at < IMAGES.c.expires_at,
                    )
                    .values(url_state="expired", last_error_code=ESTIMATE_PASSED)
                )

        sweeps, updates = [], []
        for _ in range(args.rounds):
            sweeps.append(timed(lambda: expire_lapsed(engine, after)))
            put_back(engine)
            updates.append(timed(set_based))
            put_back(engine)
        ours, raw = statistics.median(sweeps), statistics.median(updates)
        print(
            f"lapse of {args.lapsed:,} URLs: {ours:.2f} s ({args.lapsed / ours:,.0f} rows/s) vs "
            f"one set-based UPDATE {raw:.2f} s (ratio {ours / raw:.1f})"
        )

        expire_lapsed(engine, after)
        due = due_query(after, timedelta(days=3650)).subquery()

        def due_count() -> None:
            with engine.connect() as connection:
                connection.execute(select(func.count()).select_from(due)).scalar_one()

        def expired_count() -> None:
            with engine.connect() as connection:
                connection.execute(
                    select(func.count()).where(IMAGES.c.url_state == "expired")
                ).scalar_one()

        ours = statistics.median(timed(due_count) for _ in range(args.rounds))
        raw = statistics.median(timed(expired_count) for _ in range(args.rounds))
        print(
            f"check --due selection (incl. {args.lapsed:,} estimates to confirm): {ours:.3f} s vs "
            f"counting expired rows from the index {raw:.3f} s (ratio {ours / raw:.1f}); "
            f"load {os.getloadavg()}"
        )
    finally:
        engine.dispose()
        if schema is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        else:
            for suffix in ("", "-wal", "-shm", ".upgrade-lock"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()

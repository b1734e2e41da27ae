"""How many image URLs `check` probes per second, and how many live or flaky URLs it marks expired.

    .venv/bin/python benchmarks/probe_throughput.py                     # 5,000 URLs x 3 rounds
    .venv/bin/python benchmarks/probe_throughput.py --urls 20000 --concurrency 128
    .venv/bin/python benchmarks/probe_throughput.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

What is measured: the wall time of `check_images` (mode "all") over N image rows whose
URLs point at the loopback signed host (tests/standins/signed_host.py), run in its own process
so it does not share this interpreter. That time covers the whole job: the SELECT of the rows,
the signed-expiry parse of every URL, one `GET Range: bytes=0-0` per URL, classifying each
answer, and the batched UPDATEs. URLs/s = N / that time. The host is a single host, so the
per-host limit is set to the concurrency: both sides then keep the same number of requests in
flight.

Raw baselines, same run, same host, same concurrency, same mix of URLs (fresh names): plain
httpx workers sending the same GETs through `AsyncClient`s, with no classification and no
database — once through one client of `--concurrency` connections (how one would write it),
once through clients of 4 connections, the pool size the prober uses (httpcore's pool scales
badly with its size). check/small pools is what paging, classification and the UPDATEs cost
net of what the prober saves by sending through httpx transports rather than clients;
check/1 pool is what the prober gains over the obvious code.

The URL mix per 100: 70 live (Azure SAS with user-delegation key, S3 SigV4, GCS V4, unsigned,
a GET-only host), 15 gone (404, 410), 15 flaky (503, 429, 503-then-200, connection reset).
"False expired" counts rows marked expired whose URL the host serves or only failed
transiently; it must be 0. Rounds alternate baseline and ours so machine noise hits both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import create_engine, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store.capture.writer import IMAGES, insert_calls  # noqa: E402
from store.expiry import CheckOptions, check_images  # noqa: E402
from store.expiry.probe import CONNECTIONS_PER_POOL, PROBE_HEADERS  # noqa: E402
from store.schema.db import make_engine  # noqa: E402
from store.schema.models import utcnow  # noqa: E402
from store.schema.records import CallRecord, ImageRecord  # noqa: E402
from tests.standins.signed_host import SignedUrls  # noqa: E402

#: (kind, truth, count per 100 URLs). truth: what a correct check must conclude.
MIX = (
    ("azure", "live", 35),
    ("s3", "live", 15),
    ("gcs", "live", 10),
    ("live", "live", 5),
    ("get-only", "live", 5),
    ("gone", "expired", 10),
    ("removed", "expired", 5),
    ("unavailable", "flaky", 6),
    ("throttled", "flaky", 4),
    ("flaky/1", "flaky", 4),  # 503 the first time, then the image: live or unknown, never expired
    ("reset", "flaky", 1),
)


def make_urls(urls: SignedUrls, count: int, tag: str) -> list[tuple[str, str]]:
    """`count` (url, truth) pairs in MIX's proportions, every name unique to this `tag`."""
    now = utcnow()
    pattern = [(kind, truth) for kind, truth, share in MIX for _ in range(share)]
    made = []
    for index in range(count):
        kind, truth = pattern[index % len(pattern)]
        name = f"{tag}-{index}.png"
        if kind == "azure":
            url = urls.azure_url(
                name, expires_at=now + timedelta(hours=1), key_expires_at=now + timedelta(hours=9)
            )
        elif kind == "s3":
            url = urls.s3_url(name, signed_at=now)
        elif kind == "gcs":
            url = urls.gcs_url(name, signed_at=now)
        else:
            url = urls.plain_url(kind, name)
        made.append((url, truth))
    return made


async def raw_baseline(urls: list[str], concurrency: int, pool_size: int) -> float:
    """Seconds for plain httpx to GET every URL with `concurrency` workers, on clients of
    `pool_size` connections each (`concurrency`: the usual single client)."""
    limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
    clients = [
        httpx.AsyncClient(limits=limits, headers=PROBE_HEADERS, timeout=10)
        for _ in range(-(-concurrency // pool_size))
    ]
    pending = iter(urls)

    async def work(worker: int) -> None:
        client = clients[worker // pool_size]
        for url in pending:
            try:
                response = await client.get(url)
                response.read()
            except httpx.HTTPError:
                pass  # the reset host: the baseline does not care why

    started = time.perf_counter()
    await asyncio.gather(*(work(worker) for worker in range(concurrency)))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(client.aclose() for client in clients))
    return elapsed


def ours(database_url: str, pairs: list[tuple[str, str]], concurrency: int) -> tuple[float, int]:
    """Seconds for `check_images` over rows with these URLs, and how many it falsely expired."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:  # a fresh log each round
            connection.execute(text("DELETE FROM images"))
            connection.execute(text("DELETE FROM generations"))
        records = [
            CallRecord(provider="bench", images=[ImageRecord(url=url) for url, _ in chunk])
            for chunk in (pairs[i : i + 10] for i in range(0, len(pairs), 10))
        ]
        insert_calls(engine, records)
        options = CheckOptions(
            mode="all",
            concurrency=concurrency,
            per_host=concurrency,
            fetch_thumbnails=False,
            allowed_networks="127.0.0.0/8",  # the signed host is on loopback
        )
        summary = check_images(engine, options)
        truth = dict(pairs)
        with engine.connect() as connection:
            expired = connection.execute(
                select(IMAGES.c.url).where(IMAGES.c.url_state == "expired")
            ).scalars()
            false_expired = sum(truth[url] != "expired" for url in expired)
        assert summary.checked == len(pairs), summary
        return summary.seconds, false_expired
    finally:
        engine.dispose()


@contextmanager
def signed_host_process() -> Iterator[str]:
    """The signed host in its own Python process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.signed_host"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.kill()
        process.wait()


@contextmanager
def scratch_database(database_url: str | None) -> Iterator[str]:
    """A throwaway SQLite file, or a throwaway schema in the given PostgreSQL database."""
    if database_url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/probe_bench.db"
        return
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    schema = f"bench_probe_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=5000, help="URLs per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight (default 64)")
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: a temp SQLite file)")
    args = parser.parse_args()

    with signed_host_process() as base_url, scratch_database(args.database_url) as db_url:
        signer = SignedUrls(base_url)
        backend = db_url.split(":", 1)[0]
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"{args.urls} URLs per round, concurrency {args.concurrency}, {backend}")
        print(f"{os.cpu_count()} CPUs, load average {load} (other work on the machine skews both)")
        print(
            f"{'round':>5}  {'httpx 1 pool':>12}  {'httpx small pools':>17}  {'check':>6}  "
            "check/1 pool  check/small pools  false expired"
        )
        rates: dict[str, list[float]] = {"one": [], "small": [], "check": []}
        false_total = 0
        for round_index in range(args.rounds):
            for name, pool_size in (("one", args.concurrency), ("small", CONNECTIONS_PER_POOL)):
                urls = [url for url, _ in make_urls(signer, args.urls, f"{name}{round_index}")]
                seconds = asyncio.run(raw_baseline(urls, args.concurrency, pool_size))
                rates[name].append(args.urls / seconds)
            pairs = make_urls(signer, args.urls, f"check{round_index}")
            seconds, false_expired = ours(db_url, pairs, args.concurrency)
            rates["check"].append(args.urls / seconds)
            false_total += false_expired
            one, small, check = (rates[name][-1] for name in ("one", "small", "check"))
            print(
                f"{round_index + 1:>5}  {one:>12,.0f}  {small:>17,.0f}  {check:>6,.0f}  "
                f"{check / one:>12.2f}  {check / small:>17.2f}  {false_expired}"
            )
        one, small, check = (statistics.median(rates[name]) for name in ("one", "small", "check"))
        print(
            f"median URLs/s: check {check:,.0f}; raw httpx, one pool {one:,.0f} "
            f"(ratio {check / one:.2f}), same small pools as the prober {small:,.0f} "
            f"(ratio {check / small:.2f}); false expired {false_total} of "
            f"{args.urls * args.rounds} URLs (must be 0)"
        )


if __name__ == "__main__":
    main()

"""How fast the dashboard's queries are at a million logs, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/dashboard_queries.py                 # both backends, 1M calls
    .venv/bin/python benchmarks/dashboard_queries.py --count 50000 --backend sqlite

The log is filled by the demo generator (`store.transfer.demo.load_demo`, the same calls `python -m
store demo` writes) once and reused: SQLite in benchmarks/out/, PostgreSQL in its own schema.
Each query runs once to warm the cache, then `--runs` times; the median is printed beside
the same run's raw baseline (a plain newest-first `SELECT ... LIMIT 50` on the same
connection pool), so the figures stay comparable across machines. Issue 3's bar: every Logs
page query well under 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.capture.writer import GENERATIONS
from store.cli import progress_bar
from store.queries import (
    LogFilter,
    count_logs,
    facets,
    get_log,
    list_gallery,
    list_logs,
    overview,
    provider_summary,
)
from store.schema.db import make_engine
from store.transfer.demo import load_demo

OUT = Path(__file__).parent / "out"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BASELINE_SQL = (
    "SELECT id, created_at, provider, model, prompt FROM generations "
    "ORDER BY created_at DESC, id DESC LIMIT 50"
)
#: The Logs page must stay under this (issue 3); the report flags anything above.
LOGS_PAGE_BUDGET_S = 0.5


@dataclass(frozen=True)
class Case:
    """One timed dashboard call; `logs_page` ones are held to LOGS_PAGE_BUDGET_S."""

    name: str
    run: Callable[[Engine], Any]
    logs_page: bool = True


def sqlite_url(count: int) -> str:
    return f"sqlite:///{OUT / f'dashboard_{count}.db'}"


def postgres_url(base: str, count: int) -> str:
    return postgres_schema_url(base, f"bench_dashboard_{count}")


def postgres_schema_url(base: str, schema: str) -> str:
    """`base` with its search path set to `schema`, made if missing: each benchmark's log
    lives in a schema of its own in the test database."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


def ensure_calls(engine: Engine, count: int) -> None:
    """Fill the log up to `count` demo calls (a no-op when a previous run left them)."""
    with engine.connect() as connection:
        present = connection.execute(select(func.count()).select_from(GENERATIONS)).scalar_one()
    if present >= count:
        return
    print(f"{engine.dialect.name}: writing {count - present:,} demo calls ...", flush=True)
    with progress_bar("demo", "calls") as on_progress:
        result = load_demo(engine, count=count - present, seed=present, on_progress=on_progress)
    print(result.describe(), flush=True)
    if engine.dialect.name == "postgresql":
        # What autovacuum does after a bulk load: statistics for the planner, and the
        # visibility map that lets index-only scans skip the table.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE generations"))
            connection.execute(text("VACUUM ANALYZE images"))


def median_seconds(run: Callable[[], Any], runs: int) -> float:
    run()  # warm the page cache and the statement cache, as a dashboard that is in use
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def cases(engine: Engine) -> list[Case]:
    """The Logs page's queries (filters people use), then Gallery, Detail, Analytics and the
    `stats` command's table."""
    known = facets(engine)
    provider = known.providers[0] if "openai" not in known.providers else "openai"
    model = list_logs(engine, LogFilter(providers=(provider,)), limit=1).rows["model"].iloc[0]
    last = known.last_at
    day = LogFilter(since=last - timedelta(days=4), until=last - timedelta(days=3))
    first_page = list_logs(engine, LogFilter())
    second = first_page.next_cursor
    some_id = first_page.rows["id"].iloc[0]
    pair = LogFilter(providers=(provider,), models=(model,))
    expired = LogFilter(url_states=("expired",))
    common = LogFilter(search="illustration")  # ~17% of demo prompts
    rare = LogFilter(search="bloody")  # ~0.5%
    absent = LogFilter(search="zeppelin")  # in no prompt: the worst case for a time-ordered scan
    combined = LogFilter(
        providers=(provider,), url_states=("expired",), since=last - timedelta(days=7)
    )
    return [
        Case("logs: first page", lambda e: list_logs(e, LogFilter())),
        Case("logs: next page (cursor)", lambda e: list_logs(e, LogFilter(), after=second)),
        Case(f"logs: provider+model {provider}/{model}", lambda e: list_logs(e, pair)),
        Case("logs: url_state=expired", lambda e: list_logs(e, expired)),
        Case("logs: url_state=unknown", lambda e: list_logs(e, LogFilter(url_states=("unknown",)))),
        Case("logs: one day, 3 days ago", lambda e: list_logs(e, day)),
        Case("logs: status=error", lambda e: list_logs(e, LogFilter(statuses=("error",)))),
        Case("logs: search (common word)", lambda e: list_logs(e, common)),
        Case("logs: search (rare word)", lambda e: list_logs(e, rare)),
        Case("logs: search (absent word)", lambda e: list_logs(e, absent)),
        Case("logs: provider+expired+7 days", lambda e: list_logs(e, combined)),
        Case("logs: count (capped 10k)", lambda e: count_logs(e, LogFilter())),
        Case("logs: count provider+model", lambda e: count_logs(e, pair)),
        Case("logs: count search (rare)", lambda e: count_logs(e, rare)),
        Case("facets (sidebar choices)", lambda e: facets(e)),
        Case("detail: get_log", lambda e: get_log(e, some_id)),
        Case("gallery: first page", lambda e: list_gallery(e, LogFilter()), logs_page=False),
        Case("gallery: expired", lambda e: list_gallery(e, expired), logs_page=False),
        Case("analytics: overview per day", lambda e: overview(e, LogFilter()), False),
        Case("analytics: overview per hour, 1 day", lambda e: overview(e, day, "hour"), False),
        Case(
            "stats: p50/p95 by provider",
            lambda e: provider_summary(e, LogFilter()),
            logs_page=False,
        ),
        Case(
            "stats: p50/p95 by model, 1 day",
            lambda e: provider_summary(e, day, by="model"),
            logs_page=False,
        ),
    ]


def measure(engine: Engine, runs: int) -> tuple[float, list[tuple[Case, float]]]:
    def baseline() -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql(BASELINE_SQL).all()

    base = median_seconds(baseline, runs)
    return base, [
        (case, median_seconds(lambda c=case: c.run(engine), runs)) for case in cases(engine)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="calls in the log")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query (median)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--build-only", action="store_true", help="fill the logs, time nothing")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, tuple[float, list[tuple[Case, float]]]] = {}
    for backend in backends:
        url = (
            sqlite_url(args.count)
            if backend == "sqlite"
            else postgres_url(args.postgres_url, args.count)
        )
        engine = make_engine(url)
        try:
            ensure_calls(engine, args.count)
            if not args.build_only:
                results[backend] = measure(engine, args.runs)
        finally:
            engine.dispose()
    if results:
        print_report(results, args.count, args.runs)
    over = [
        (backend, case.name, seconds)
        for backend, (_, timed) in results.items()
        for case, seconds in timed
        if case.logs_page and seconds >= LOGS_PAGE_BUDGET_S
    ]
    for backend, name, seconds in over:
        print(f"OVER BUDGET: {backend} {name}: {seconds * 1000:.0f} ms", file=sys.stderr)
    return 1 if over else 0


def print_report(
    results: dict[str, tuple[float, list[tuple[Case, float]]]], count: int, runs: int
) -> None:
    backends = list(results)
    print(f"\n{count:,} calls; median of {runs} runs; ratio = query / raw baseline\n")
    header = f"{'query':42}" + "".join(f"{b + ' ms':>14}{'ratio':>8}" for b in backends)
    print(header)
    print("-" * len(header))
    baseline_row = f"{'raw baseline: SELECT ... LIMIT 50':42}"
    for backend in backends:
        baseline_row += f"{results[backend][0] * 1000:>14.2f}{1:>8.1f}"
    print(baseline_row)
    names = [case.name for case, _ in results[backends[0]][1]]
    for index, name in enumerate(names):
        row = f"{name:42}"
        for backend in backends:
            base, timed = results[backend]
            seconds = timed[index][1]
            row += f"{seconds * 1000:>14.2f}{seconds / base:>8.1f}"
        print(row)


if __name__ == "__main__":
    sys.exit(main())

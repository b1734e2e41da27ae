"""How long the Analytics page takes at a million logs, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/analytics_page.py                     # 1,000,000 calls, both
    .venv/bin/python benchmarks/analytics_page.py --count 20000 --backend sqlite --runs 2

The page runs under Streamlit's AppTest (app/main.py opened on the Analytics page, the script
`streamlit run` serves) against the demo logs benchmarks/dashboard_queries.py builds (filled up
to --count on first use, reused after). Figures are medians of --runs:

- cold run: caches empty, as on a first visit or right after Refresh (every query runs);
- warm rerun: the same view again within the cache TTL (what most clicks cost);
- filter change: a new sidebar value on a page that has run (the new view's queries run).

With --issue10 it prints instead issue 10's Analytics figures (every view the issue times,
beside a full-scan GROUP BY of the calls) on the scale log (benchmarks/issue10_figures.py).

The targets: a cold script run under 1.5 s with no filter, a filter change under 1 s. Each
figure is printed beside the raw baseline measured in the same run on the same engine: one
`SELECT count(*)` of the whole log, the least any exact whole-log figure costs, so the ratio
says what the page's dozen exact figures cost next to counting the calls once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest's bare-mode notes, per run
sys.path.insert(0, str(Path(__file__).parent))

import issue10_figures  # noqa: E402
import logs_page  # noqa: E402
import streamlit as st  # noqa: E402
from dashboard_queries import DEFAULT_POSTGRES, ensure_calls, postgres_url, sqlite_url  # noqa: E402
from logs_page import median_seconds, new_app  # noqa: E402
from scale_log import ensure_scale_log, scale_url  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from store.schema.db import make_engine  # noqa: E402

PAGE = "views/analytics.py"
RUN_BUDGET_S = 1.5
FILTER_BUDGET_S = 1.0
BASELINE_SQL = "SELECT count(*) FROM generations"

#: Filter changes an auditor makes on the Analytics page: (widget kind, key, value).
FILTER_CHANGES: list[tuple[str, str, object]] = [
    ("multiselect", "provider", ["openai"]),
    ("pills", "status", ["error"]),
    ("pills", "url_state", ["expired"]),
    ("text_input", "q", "lighthouse"),
]


def checked(app: AppTest) -> AppTest:
    """The app after a run that must have drawn the Analytics page without an exception."""
    if app.exception:
        raise RuntimeError(app.exception[0].value)
    if app.title[0].value != "Analytics" or not app.metric:
        raise RuntimeError("the run did not draw the Analytics page")
    return app


def opened() -> AppTest:
    app = new_app()
    app.switch_page(PAGE)
    return checked(app.run())


def cold_run() -> None:
    st.cache_data.clear()
    opened()


def filter_change(kind: str, key: str, value: object, runs: int) -> float:
    """Median time of the rerun that applies `value` to a freshly shown Analytics page."""
    return logs_page.filter_change(kind, key, value, runs, open_page=opened, check=checked)


def measure(url: str, count: int, runs: int) -> list[tuple[str, float, float | None]]:
    """(figure, seconds, budget) rows for one database; the first row is the raw baseline."""
    engine = make_engine(url)  # upgrades the schema: a new index is built here, once
    try:
        ensure_calls(engine, count)
        os.environ["IMAGELOG_DATABASE_URL"] = url
        st.cache_resource.clear()
        opened()  # imports, the app's engine and its schema check: paid once per server
        raw = median_seconds(lambda: _baseline(engine), runs)
        cold = median_seconds(cold_run, runs)
        warm_app = opened()
        warm = median_seconds(lambda: checked(warm_app.run()), runs)
        rows: list[tuple[str, float, float | None]] = [
            ("raw baseline: SELECT count(*)", raw, None),
            ("script run, cold caches", cold, RUN_BUDGET_S),
            ("rerun, warm caches", warm, RUN_BUDGET_S),
        ]
        for kind, key, value in FILTER_CHANGES:
            seconds = filter_change(kind, key, value, runs)
            rows.append((f"filter change: {key}={value}", seconds, FILTER_BUDGET_S))
        return rows
    finally:
        engine.dispose()


def _baseline(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text(BASELINE_SQL)).scalar_one()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="demo calls in the log")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument(
        "--issue10",
        action="store_true",
        help="print issue 10's Analytics figures on the scale log (benchmarks/issue10_figures.py)",
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if args.issue10:
        return issue10(args.count, backends, args.runs, args.postgres_url)
    over = 0
    for backend in backends:
        url = (
            sqlite_url(args.count)
            if backend == "sqlite"
            else postgres_url(args.postgres_url, args.count)
        )
        rows = measure(url, args.count, args.runs)
        raw = rows[0][1]
        print(f"\nAnalytics page at {args.count:,} calls, {backend}; median of {args.runs} runs")
        print(f"{'figure':<40}{'median':>10}{'x raw':>9}{'budget':>10}  verdict")
        for name, seconds, budget in rows:
            verdict = "" if budget is None else ("ok" if seconds < budget else "OVER")
            over += verdict == "OVER"
            limit = "" if budget is None else f"{budget * 1000:7.0f} ms"
            print(f"{name:<40}{seconds * 1000:8.0f} ms{seconds / raw:8.1f}x{limit:>10}  {verdict}")
    return 1 if over else 0


def issue10(count: int, backends: list[str], runs: int, postgres: str) -> int:
    """Issue 10's Analytics rows, per backend, on the scale log; 1 if a goal was missed."""
    missed = 0
    for name in backends:
        engine = make_engine(scale_url(name, count, postgres))
        try:
            ensure_scale_log(engine, count)
            title = f"Issue 10, Analytics at {count:,} calls, {name}"
            missed += issue10_figures.report(
                title, engine, issue10_figures.analytics_figures(engine), runs
            )
        finally:
            engine.dispose()
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How long the Logs page takes at a million logs: a full script run, and a filter change.

    .venv/bin/python benchmarks/logs_page.py                  # 1,000,000 demo calls, SQLite
    .venv/bin/python benchmarks/logs_page.py --count 20000    # a quick look while developing

The page runs under Streamlit's AppTest (app/main.py, the same script `streamlit run` serves),
against the demo log benchmarks/dashboard_queries.py builds in benchmarks/out/ (it is filled
up to --count on first use and reused after). Figures are medians of --runs:

- cold run: caches empty, as on a first visit or right after Refresh (every query runs);
- warm rerun: the same view again within the cache TTL (what most clicks cost);
- filter change: a new sidebar value on an app that has run (the new view's queries run).

With --issue10 it prints instead issue 10's Logs figures (the URL-state filters beside the
provider filter and a raw indexed page) on the scale log, for --backend sqlite, postgresql
or both (benchmarks/issue10_figures.py).

Issue 3's budget: a script run under 1 s, a filter change under 0.5 s. Each figure is printed
beside the raw baseline measured in the same run: the bare newest-first `SELECT ... LIMIT 50`
of the page's rows on the same engine, so the ratio says what the page adds to the one query
it cannot do without.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest's bare-mode notes, per run
sys.path.insert(0, str(Path(__file__).parent))

import issue10_figures  # noqa: E402
import streamlit as st  # noqa: E402
from dashboard_queries import BASELINE_SQL, ensure_calls, sqlite_url  # noqa: E402
from scale_log import ensure_scale_log, scale_url  # noqa: E402
from sqlalchemy import text  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from store.schema.db import make_engine  # noqa: E402

APP = ROOT / "app" / "main.py"
RUN_BUDGET_S = 1.0
FILTER_BUDGET_S = 0.5

#: Filter changes a user makes on the Logs page: (widget kind, key, value).
FILTER_CHANGES: list[tuple[str, str, object]] = [
    ("multiselect", "provider", ["replicate"]),
    ("pills", "status", ["error"]),
    ("pills", "url_state", ["expired"]),
    ("text_input", "q", "lighthouse"),
]


def median_seconds(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def new_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=120)


def checked(app: AppTest) -> AppTest:
    """The app after a run that must have drawn the Logs table without an exception."""
    if app.exception:
        raise RuntimeError(app.exception[0].value)
    if app.title[0].value != "Logs" or not app.dataframe:
        raise RuntimeError("the run did not draw the Logs table")
    return app


def cold_run() -> None:
    st.cache_data.clear()
    checked(new_app().run())


def warm_rerun(app: AppTest) -> Callable[[], object]:
    return lambda: checked(app.run())


def opened() -> AppTest:
    return checked(new_app().run())


def filter_change(
    kind: str,
    key: str,
    value: object,
    runs: int,
    *,
    open_page: Callable[[], AppTest] = opened,
    check: Callable[[AppTest], AppTest] = checked,
) -> float:
    """Median time of the rerun that applies `value` to a freshly shown, unfiltered page."""
    times = []
    for _ in range(runs):
        st.cache_data.clear()
        app = open_page()  # the page as the user sees it before the change
        widget = getattr(app.sidebar, kind)(key=key)
        if kind == "text_input":
            widget.input(value)
        else:
            widget.set_value(value)
        started = time.perf_counter()
        check(app.run())
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="demo calls in the log")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument(
        "--issue10",
        action="store_true",
        help="print issue 10's Logs figures on the scale log (benchmarks/issue10_figures.py)",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    args = parser.parse_args(argv)
    if args.issue10:
        return issue10(args.count, args.backend, args.runs)

    url = sqlite_url(args.count)
    engine = make_engine(url)
    ensure_calls(engine, args.count)
    os.environ["IMAGELOG_DATABASE_URL"] = url
    checked(new_app().run())  # imports, the engine and its schema check: paid once per server

    def baseline() -> None:
        with engine.connect() as connection:
            connection.execute(text(BASELINE_SQL)).all()

    baseline()
    raw = median_seconds(baseline, args.runs)
    cold = median_seconds(cold_run, args.runs)
    warm_app = checked(new_app().run())
    warm = median_seconds(warm_rerun(warm_app), args.runs)
    changes = [
        (f"{key}={value}", filter_change(kind, key, value, args.runs))
        for kind, key, value in FILTER_CHANGES
    ]

    print(f"Logs page at {args.count:,} calls (SQLite {url.removeprefix('sqlite:///')})")
    print(f"raw baseline (newest 50 rows, one SELECT): {raw * 1000:8.1f} ms")
    print(f"{'figure':<38}{'median':>10}{'x raw':>9}{'budget':>9}  verdict")
    rows = [
        ("script run, cold caches", cold, RUN_BUDGET_S),
        ("rerun, warm caches", warm, RUN_BUDGET_S),
    ]
    rows += [(f"filter change: {name}", seconds, FILTER_BUDGET_S) for name, seconds in changes]
    over = 0
    for name, seconds, budget in rows:
        verdict = "ok" if seconds < budget else "OVER"
        over += verdict == "OVER"
        print(
            f"{name:<38}{seconds * 1000:8.0f} ms{seconds / raw:8.0f}x{budget * 1000:6.0f} ms  "
            f"{verdict}"
        )
    engine.dispose()
    return 1 if over else 0


def issue10(count: int, backend: str, runs: int) -> int:
    """Issue 10's Logs rows, per backend, on the scale log; returns 1 if a goal was missed."""
    missed = 0
    for name in ["sqlite", "postgresql"] if backend == "both" else [backend]:
        engine = make_engine(scale_url(name, count))
        try:
            ensure_scale_log(engine, count)
            title = f"Issue 10, Logs page at {count:,} calls, {name}"
            missed += issue10_figures.report(
                title, engine, issue10_figures.logs_figures(engine), runs
            )
        finally:
            engine.dispose()
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

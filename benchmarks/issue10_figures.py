"""Issue 10's Analytics and Logs figures at a million calls, each beside its raw anchor.

    .venv/bin/python benchmarks/analytics_page.py --issue10 --backend both
    .venv/bin/python benchmarks/logs_page.py --issue10 --backend both

Both scripts print their rows of the issue's table from here, on the log benchmarks/
scale_log.py builds (a million calls written in SQL in minutes; the demo log takes hours on a
shared machine). Each figure is the median of --runs after one warm-up, in milliseconds, with
its ratio to the raw anchor measured in the same run on the same engine, the issue's goal,
and the machine's load average (os.getloadavg) before and after: on a shared machine the load
says how much of a figure is the neighbours'.

- Analytics anchor: one full-scan GROUP BY of the calls by provider and model (what every
  figure of the page cost before the rollups); the figures are `store.queries.overview`, all
  the page's queries for one view.
- Logs anchor: a raw indexed page, the newest 50 keys of the time index; the figures are
  `store.queries.list_logs`, one page of the Logs table with its first images and verdicts.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text

from store.queries import LogFilter, facets, list_gallery, list_logs, overview

ANALYTICS_ANCHOR = (
    "SELECT provider, model, count(*), sum(image_count), sum(cost_usd), avg(latency_ms) "
    "FROM generations GROUP BY provider, model"
)
LOGS_ANCHOR = "SELECT created_at, id FROM generations ORDER BY created_at DESC, id DESC LIMIT 50"


@dataclass(frozen=True)
class Figure:
    name: str
    run: Callable[[Engine], Any]
    goal_s: float | None


def analytics_figures(engine: Engine) -> list[Figure]:
    last = facets(engine).last_at
    assert last is not None, "the log is empty"
    rollup_goal, raw_goal = 0.150, 1.5

    def view(flt: LogFilter) -> Callable[[Engine], Any]:
        return lambda e: overview(e, flt, "day")

    return [
        Figure("anchor: full-scan GROUP BY", _sql(ANALYTICS_ANCHOR), None),
        Figure("analytics, no filter", view(LogFilter()), rollup_goal),
        Figure(
            "analytics, url_state=expired", view(LogFilter(url_states=("expired",))), rollup_goal
        ),
        Figure("analytics, provider=openai", view(LogFilter(providers=("openai",))), rollup_goal),
        Figure("analytics, last day", view(LogFilter(since=last - timedelta(days=1))), rollup_goal),
        Figure("analytics, prompt search", view(LogFilter(search="lighthouse")), raw_goal),
        Figure("analytics, user", view(LogFilter(user="user7")), raw_goal),
        Figure("analytics, tag", view(LogFilter(tag="batch=3")), raw_goal),
        Figure("analytics, min cost", view(LogFilter(min_cost=0.05)), raw_goal),
    ]


def logs_figures(engine: Engine) -> list[Figure]:
    def page(flt: LogFilter) -> Callable[[Engine], Any]:
        return lambda e: list_logs(e, flt)

    return [
        Figure("anchor: raw indexed page", _sql(LOGS_ANCHOR), None),
        Figure(
            "logs, provider=openai (for comparison)", page(LogFilter(providers=("openai",))), 0.020
        ),
        Figure("logs, url_state=expired", page(LogFilter(url_states=("expired",))), 0.020),
        Figure("logs, url_state=live", page(LogFilter(url_states=("live",))), 0.020),
        Figure("logs, url_state=unknown", page(LogFilter(url_states=("unknown",))), 0.020),
        Figure(
            "logs, url_state=live or none",
            page(LogFilter(url_states=("live", "none"))),
            0.020,
        ),
        Figure(
            "gallery, url_state=expired",
            lambda e: list_gallery(e, LogFilter(url_states=("expired",))),
            0.020,
        ),
    ]


def _sql(statement: str) -> Callable[[Engine], Any]:
    def run(engine: Engine) -> Any:
        with engine.connect() as connection:
            return connection.execute(text(statement)).all()

    return run


def median_seconds(run: Callable[[], Any], runs: int) -> float:
    run()  # warm the page cache and statement cache, as on a dashboard in use
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def report(title: str, engine: Engine, figures: list[Figure], runs: int) -> int:
    """Print `figures` as a table (the first is the anchor); returns how many missed their goal."""
    load_before = os.getloadavg()
    measured = [
        (figure, median_seconds(lambda f=figure: f.run(engine), runs)) for figure in figures
    ]
    load_after = os.getloadavg()
    anchor = measured[0][1]
    print(f"\n{title}; median of {runs} runs")
    print(f"load average before {load_before[0]:.1f} / after {load_after[0]:.1f} (1 min)")
    print(f"{'figure':<44}{'median':>11}{'x anchor':>10}{'goal':>10}  verdict")
    missed = 0
    for figure, seconds in measured:
        goal = "" if figure.goal_s is None else f"{figure.goal_s * 1000:.0f} ms"
        verdict = "" if figure.goal_s is None else ("ok" if seconds <= figure.goal_s else "MISSED")
        missed += verdict == "MISSED"
        print(
            f"{figure.name:<44}{seconds * 1000:8.1f} ms{seconds / anchor:9.3f}x{goal:>10}  "
            f"{verdict}"
        )
    return missed

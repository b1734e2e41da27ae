"""The Analytics rollups and each call's URL-state summary stay equal to the raw rows.

Every figure of `call_rollups` is compared with an aggregate worked out here, in Python, from
the raw `generations` and `images` rows (not through the SQL that maintains the rollups),
after each way the log changes: recording, importing, checking, a signed expiry passing.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select, update

from store.capture.writer import insert_calls
from store.cli import main
from store.expiry import CheckOptions, check_images, expire_lapsed
from store.queries import LogFilter, overview, provider_summary
from store.schema.db import make_engine
from store.schema.models import (
    CALL_ROLLUPS,
    GENERATIONS,
    IMAGES,
    LATENCY_ROLLUPS,
    as_utc,
    utcnow,
)
from store.schema.records import CallRecord, ImageRecord
from store.schema.rollups import (
    KEYS,
    LATENCY_KEYS,
    NO_HTTP_STATUS,
    STATE_BITS,
    STATE_COLUMNS,
    SUMS,
    bucket_value,
    latency_bucket,
    rebuild,
)
from store.transfer.demo import load_demo
from store.transfer.jsonl import export_records, import_jsonl
from tests.standins.openai_server import _draw

HOUR = timedelta(hours=1)


def raw_rollups(engine) -> tuple[dict[tuple, dict[str, float]], dict[tuple, int]]:
    """Both rollup tables as the raw rows give them, worked out in Python."""
    with engine.connect() as connection:
        states: dict[str, Counter[str]] = defaultdict(Counter)
        for generation_id, state in connection.execute(
            select(IMAGES.c.generation_id, IMAGES.c.url_state)
        ):
            states[generation_id][state] += 1
        calls = connection.execute(select(GENERATIONS)).mappings().all()
    sums: dict[tuple, Counter] = defaultdict(Counter)
    histogram: Counter[tuple] = Counter()
    for call in calls:
        counted = states[call["id"]]
        hour = as_utc(call["created_at"]).replace(minute=0, second=0, microsecond=0)
        shared = (
            call["provider"],
            call["model"],
            call["status"],
            sum(bit for state, bit in STATE_BITS.items() if counted[state.value]),
        )
        row = sums[(hour, *shared, call["http_status"] or NO_HTTP_STATUS)]
        row["calls"] += 1
        row["images"] += call["image_count"]
        row["cost_usd"] += call["cost_usd"] or 0.0
        row["unpriced"] += call["cost_usd"] is None
        row["timed"] += call["latency_ms"] is not None
        for state, column in STATE_COLUMNS.items():
            row[column] += counted[state.value]
        if call["latency_ms"] is not None:
            histogram[(hour.replace(hour=0), *shared, latency_bucket(call["latency_ms"]))] += 1
    return {key: dict(row) for key, row in sums.items()}, dict(histogram)


def stored_rollups(engine) -> tuple[dict[tuple, dict[str, float]], dict[tuple, int]]:
    with engine.connect() as connection:
        rows = connection.execute(select(CALL_ROLLUPS)).mappings().all()
        latencies = connection.execute(select(LATENCY_ROLLUPS)).mappings().all()
    sums = {
        (as_utc(row["hour"]), *(row[key] for key in KEYS[1:])): {name: row[name] for name in SUMS}
        for row in rows
    }
    histogram = {
        (as_utc(row["day"]), *(row[key] for key in LATENCY_KEYS[1:])): row["calls"]
        for row in latencies
    }
    return sums, histogram


def summaries_match(engine) -> bool:
    """Every call's summary columns hold the counts of its images' states."""
    with engine.connect() as connection:
        counted: dict[str, Counter[str]] = defaultdict(Counter)
        for generation_id, state in connection.execute(
            select(IMAGES.c.generation_id, IMAGES.c.url_state)
        ):
            counted[generation_id][state] += 1
        rows = connection.execute(select(GENERATIONS)).mappings().all()
    return all(
        row[column] == counted[row["id"]][state.value]
        for row in rows
        for state, column in STATE_COLUMNS.items()
    )


def assert_in_step(engine) -> None:
    (raw, raw_histogram), (stored, histogram) = raw_rollups(engine), stored_rollups(engine)
    assert raw.keys() == stored.keys()
    for key, figures in raw.items():
        assert stored[key] == pytest.approx(figures, rel=1e-9, abs=1e-9), key
    assert histogram == raw_histogram
    assert summaries_match(engine)


def test_rollups_equal_the_raw_rows_after_recording_importing_checking_and_expiring(
    engine, recorder, openai_api, host, tmp_path
):
    # Recording: a hosted image downloads (live), a dead link fails (expired), b64 has no URL.
    recorder.record(CallRecord(provider="p", images=[ImageRecord(url=openai_api.host(_png()))]))
    recorder.record(CallRecord(provider="p", images=[ImageRecord(url=host.plain_url("gone", "a"))]))
    recorder.record(CallRecord(provider="p", latency_ms=812.5, images=[ImageRecord(data=_png())]))
    recorder.record(CallRecord(provider="p", status="error", http_status=429))
    assert recorder.flush(timeout=30)
    engine = recorder.engine
    assert_in_step(engine)

    # Importing: another log's demo calls, twice (the second import adds nothing).
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    now = (utcnow() - timedelta(days=1)).replace(hour=15, minute=0, second=0, microsecond=0)
    load_demo(other, count=300, seed=5, now=now)
    exported = tmp_path / "calls.jsonl"
    with exported.open("w") as out:
        export_records(other, LogFilter(), "jsonl", out)
    other.dispose()
    import_jsonl(engine, exported)
    import_jsonl(engine, exported)
    assert_in_step(engine)

    # Expiring: the signed URLs whose expiry passed are marked expired without a request.
    due = check_images(engine, CheckOptions(mode="due", stale_after=timedelta(days=365), now=now))
    assert due.predicted + due.changed > 0  # the lapse sweep runs first: most move there
    assert_in_step(engine)

    # Checking: the hosts answer (live, expired, unknown), calls with several images included.
    insert_calls(
        engine,
        [
            CallRecord(
                provider="p",
                latency_ms=40_000.0,
                images=[
                    ImageRecord(url=host.plain_url("get-only", "a.png")),
                    ImageRecord(url=host.plain_url("gone", "b.png")),
                    ImageRecord(url=host.plain_url("unavailable", "c.png")),
                ],
            )
        ],
    )
    assert_in_step(engine)
    check_images(engine, CheckOptions(mode="all", timeout=1.5, fetch_thumbnails=False))
    assert_in_step(engine)


def test_a_rebuild_repairs_rollups_and_summaries_changed_behind_their_back(engine, capsys):
    load_demo(engine, count=200, seed=3)
    with engine.begin() as connection:  # a hand edit that bypasses the upkeep
        connection.execute(update(IMAGES).values(url_state="expired"))
        connection.execute(update(CALL_ROLLUPS).values(calls=CALL_ROLLUPS.c.calls + 1))

    assert main(["--database-url", engine.url.render_as_string(False), "rollups", "--rebuild"]) == 0

    assert "Rebuilt the rollups" in capsys.readouterr().out
    assert_in_step(engine)
    sums, histogram = stored_rollups(engine)
    assert rebuild(engine) == len(sums) + len(histogram)


def test_a_latency_read_back_from_its_bucket_is_within_three_percent():
    for latency in (1.0, 3.7, 812.5, 14_900.0, 48_455.0, 300_000.0):
        assert bucket_value(latency_bucket(latency)) == pytest.approx(latency, rel=0.026)
    assert latency_bucket(None) < 0 <= latency_bucket(0.2)
    assert math.isclose(bucket_value(0), 0.5)


def _png() -> bytes:
    return _draw("64x48", "rollups")


def raw_totals(engine, flt: LogFilter) -> dict[str, dict[str, float]]:
    """Per provider: calls, errors, images, cost, unpriced of the calls `flt` keeps, from the
    raw rows in Python (URL states from `images`, not from the summary)."""
    with engine.connect() as connection:
        states: dict[str, set[str]] = defaultdict(set)
        for generation_id, state in connection.execute(
            select(IMAGES.c.generation_id, IMAGES.c.url_state)
        ):
            states[generation_id].add(state)
        calls = connection.execute(select(GENERATIONS)).mappings().all()
    totals: dict[str, Counter] = defaultdict(Counter)
    for call in calls:
        created = as_utc(call["created_at"])
        if (
            (flt.providers and call["provider"] not in flt.providers)
            or (flt.statuses and call["status"] not in flt.statuses)
            or (flt.url_states and not states[call["id"]] & set(flt.url_states))
            or (flt.since and created < flt.since)
            or (flt.until and created >= flt.until)
            or (flt.min_cost is not None and (call["cost_usd"] or 0) < flt.min_cost)
        ):
            continue
        row = totals[call["provider"]]
        row["calls"] += 1
        row["errors"] += call["status"] == "error"
        row["images"] += call["image_count"]
        row["cost_usd"] += call["cost_usd"] or 0.0
        row["unpriced"] += call["cost_usd"] is None
    return {provider: dict(row) for provider, row in totals.items()}


def demo_log(engine) -> datetime:
    now = (utcnow() - timedelta(days=1)).replace(hour=15, minute=0, second=0, microsecond=0)
    load_demo(engine, count=400, seed=11, now=now)
    check_images(engine, CheckOptions(mode="due", stale_after=timedelta(days=365), now=now))
    # What lapses between the demo's afternoon and the clock's now lapses here, not in the
    # middle of the test (`imagelog stats` sweeps at the real time before it reads).
    expire_lapsed(engine)
    return now


VIEWS = {
    "all": lambda now: LogFilter(),
    "provider": lambda now: LogFilter(providers=("openai", "replicate")),
    "status": lambda now: LogFilter(statuses=("error",)),
    "expired": lambda now: LogFilter(url_states=("expired",)),
    "states": lambda now: LogFilter(url_states=("live", "none")),
    # Dates that cut hours: the cut hours come from the calls, the whole ones from the rollups.
    "dates": lambda now: LogFilter(
        since=now - timedelta(days=6, minutes=17), until=now - timedelta(days=1, minutes=41)
    ),
    "one hour": lambda now: LogFilter(
        since=now - timedelta(hours=3, minutes=50), until=now - timedelta(hours=3, minutes=10)
    ),
    "cost": lambda now: LogFilter(min_cost=0.03),  # not a rollup dimension: from the calls
}


@pytest.mark.parametrize("view", VIEWS, ids=list(VIEWS))
def test_analytics_and_stats_give_the_raw_rows_figures(engine, view, capsys):
    now = demo_log(engine)
    flt = VIEWS[view](now)
    expected = raw_totals(engine, flt)

    result = overview(engine, flt, "hour", now=now)
    stats = provider_summary(engine, flt)
    url = engine.url.render_as_string(False)
    assert main(["--database-url", url, "stats", *_flags(flt)]) == 0
    printed = capsys.readouterr().out

    assert result.from_rollups == (view != "cost")
    for frame in (result.providers, stats):
        got = {
            row["provider"]: {name: row[name] for name in TOTALS}
            for row in frame.to_dict("records")
        }
        assert got.keys() == expected.keys()
        for provider, figures in expected.items():
            assert got[provider] == pytest.approx(figures), provider
    summary = result.summary
    assert summary.calls == sum(row["calls"] for row in expected.values())
    assert summary.unpriced == sum(row["unpriced"] for row in expected.values())
    assert summary.cost_usd == pytest.approx(sum(row["cost_usd"] for row in expected.values()))
    assert int(result.activity["calls"].sum()) == summary.calls
    assert int(result.errors["errors"].sum()) == summary.errors
    if expected:
        total = printed.splitlines()[-1].split()
        assert total[1:6] == [
            f"{summary.calls:,}",
            f"{summary.errors:,}",
            f"{summary.images:,}",
            f"{summary.cost_usd:,.2f}",
            f"{summary.unpriced:,}",
        ]


TOTALS = ("calls", "errors", "images", "cost_usd", "unpriced")


def _flags(flt: LogFilter) -> list[str]:
    flags = []
    for provider in flt.providers:
        flags += ["--provider", provider]
    for status in flt.statuses:
        flags += ["--status", status]
    for state in flt.url_states:
        flags += ["--url-state", state]
    if flt.since:
        flags += ["--since", flt.since.isoformat()]
    if flt.until:
        flags += ["--until", flt.until.isoformat()]
    if flt.min_cost is not None:
        flags += ["--min-cost", str(flt.min_cost)]
    return flags


def test_percentiles_read_from_the_histogram_are_within_its_resolution(engine):
    demo_log(engine)
    with engine.connect() as connection:
        latencies = defaultdict(list)
        for provider, latency in connection.execute(
            select(GENERATIONS.c.provider, GENERATIONS.c.latency_ms).where(
                GENERATIONS.c.latency_ms.is_not(None)
            )
        ):
            latencies[provider].append(latency)

    frame = provider_summary(engine, LogFilter()).set_index("provider")

    for provider, values in latencies.items():
        exact = pd.Series(values).quantile([0.5, 0.95]).tolist()
        got = frame.loc[provider, ["p50_latency_ms", "p95_latency_ms"]].tolist()
        assert got == pytest.approx(exact, rel=0.026), provider


def test_the_last_bucket_of_a_view_that_ends_now_is_marked_partial(engine):
    now = demo_log(engine)

    daily = overview(engine, LogFilter(), "day", now=now).activity
    hourly = overview(engine, LogFilter(until=now - timedelta(hours=2)), "hour", now=now)

    assert daily["partial"].tolist() == [False] * (len(daily) - 1) + [True]
    assert not hourly.activity["partial"].any()  # the view ends on a whole hour


def test_upgrading_an_existing_log_fills_the_rollups_from_its_rows(engine):
    from alembic import command

    from store.schema.db import alembic_config

    demo_log(engine)
    command.downgrade(alembic_config(engine), "0005")  # a log written before the rollups

    command.upgrade(alembic_config(engine), "head")

    assert_in_step(engine)

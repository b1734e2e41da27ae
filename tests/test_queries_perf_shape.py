"""The dashboard's queries reach their rows through indexes: query plans, not timings.

Each test runs a public query function, captures the SQL it sent, and asks the database how it
would run it (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN`). A full scan or a sort of
the whole table stays fast on the test's few rows and takes seconds at a million
(benchmarks/dashboard_queries.py measures that), so the plan is what a test can hold.

PostgreSQL costs plans by table size and, on a small table, prefers a sequential scan and a
sort whatever the indexes; its plans are asked after ANALYZE with `enable_seqscan` and
`enable_sort` off, so they show whether an index *can* serve the query in order (a missing
index, or an expression that does not match the GIN index, still shows a Seq Scan or a Sort).
SQLite plans by rule, without statistics, as it does on a user's million-row file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event

from store.capture.writer import insert_calls
from store.queries import (
    LogFilter,
    count_logs,
    facets,
    get_log,
    hints,
    image_ids,
    iter_records,
    list_gallery,
    list_logs,
    overview,
    provider_summary,
)
from store.queries.reviewed import flagged_share_by_model
from store.review import (
    count_unreviewed,
    give_verdict,
    list_images,
    next_unreviewed,
    recent_changes,
    trail,
)
from store.schema.records import CallRecord, ImageRecord

T0 = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def filled(engine) -> Engine:
    """A log of a few hundred calls over a week, a few providers, models and URL states."""
    providers = [("openai", "dall-e-3"), ("openai", "gpt-image-1"), ("azure", "dall-e-3")]
    records = []
    for k in range(300):
        provider, model = providers[k % 3]
        records.append(
            CallRecord(
                created_at=T0 + timedelta(minutes=37 * k),
                provider=provider,
                model=model,
                prompt=f"a {['red fox', 'lighthouse', 'robot'][k % 3]} at dusk, call {k}",
                user=f"user{k % 5}",
                latency_ms=100 + k,
                images=[
                    ImageRecord(
                        url=f"https://img.test/{k}.png",
                        url_state=["live", "expired", "unknown"][k % 3],
                    )
                ],
            )
        )
    insert_calls(engine, records)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE generations")
            connection.exec_driver_sql("ANALYZE images")
    return engine


@contextmanager
def captured_sql(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every (statement, parameters) the engine sends while the block runs."""
    sent: list[tuple[str, Any]] = []

    def remember(_connection, _cursor, statement, parameters, _context, _executemany) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", remember)


def plans_of(engine: Engine, run: Callable[[], Any]) -> list[str]:
    """The plan of each statement `run` sends, as text."""
    with captured_sql(engine) as sent:
        run()
    # PostgreSQL's search asks the planner for its estimate first: that EXPLAIN is no query.
    sent = [
        (statement, parameters)
        for statement, parameters in sent
        if not statement.startswith("EXPLAIN")
    ]
    plans = []
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")
            connection.exec_driver_sql("SET enable_sort = off")
            for statement, parameters in sent:
                rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                plans.append("\n".join(row[0] for row in rows))
        else:
            for statement, parameters in sent:
                rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                plans.append("\n".join(row[3] for row in rows))
        connection.rollback()
    return plans


def assert_no_full_scan_or_sort(engine: Engine, plan: str) -> None:
    if engine.dialect.name == "postgresql":
        assert "Seq Scan" not in plan, plan
        assert "Sort" not in plan, plan
    else:
        assert "SCAN generations\n" not in plan + "\n", plan
        assert "SCAN images\n" not in plan + "\n", plan
        assert "TEMP B-TREE" not in plan, plan


def sqlite_sorts_only_merged_pages(plan: str) -> bool:
    """Every SQLite sort is of a limited branch's rows (`SCAN anon_N`), never of a table's."""
    lines = plan.splitlines()
    return all(
        lines[k - 1].startswith("SCAN anon_")
        for k, line in enumerate(lines)
        if "TEMP B-TREE" in line
    )


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def page_plan(engine: Engine, run: Callable[[], Any]) -> str:
    """The plan of the last statement `run` sends: the page's own query (on SQLite, a filter
    may first count its matches to choose how to read them)."""
    return plans_of(engine, run)[-1]


def test_the_first_page_is_read_backwards_from_the_time_index(filled):
    plan = page_plan(filled, lambda: list_logs(filled, LogFilter()))

    assert "ix_generations_created_at_id" in plan
    assert_no_full_scan_or_sort(filled, plan)


def test_a_next_page_seeks_to_its_cursor_in_the_time_index(filled):
    cursor = list_logs(filled, LogFilter()).next_cursor

    plan = page_plan(filled, lambda: list_logs(filled, LogFilter(), after=cursor))

    seek = "ROW(created_at, " if is_postgres(filled) else "(created_at,id)<"
    assert seek in plan and "ix_generations_created_at_id" in plan, plan
    assert_no_full_scan_or_sort(filled, plan)


@pytest.mark.parametrize(
    ("flt", "index"),
    [
        (LogFilter(providers=("openai",)), "ix_generations_provider_created_at_id"),
        (
            LogFilter(providers=("openai",), models=("dall-e-3",)),
            "ix_generations_provider_model_created_at_id",
        ),
        (LogFilter(models=("dall-e-3",)), "ix_generations_model_created_at_id"),
        (LogFilter(statuses=("error",)), "ix_generations_status_created_at_id"),
        (LogFilter(user="user1"), "ix_generations_user_id_created_at_id"),
    ],
)
def test_an_equality_filter_reads_its_calls_in_time_order_from_an_index(filled, flt, index):
    cursor = list_logs(filled, flt, limit=5).next_cursor

    first = page_plan(filled, lambda: list_logs(filled, flt))
    following = page_plan(filled, lambda: list_logs(filled, flt, after=cursor))

    for plan in (first, following):
        assert_no_full_scan_or_sort(filled, plan)
        # PostgreSQL may as well walk the time index and filter (cheaper for a common value);
        # SQLite, without statistics, takes the filter's own index, which must be in order.
        if not is_postgres(filled):
            assert index in plan, plan


def test_several_providers_are_read_as_ordered_ranges_and_merged(filled):
    flt = LogFilter(providers=("openai", "azure"))

    plan = page_plan(filled, lambda: list_logs(filled, flt))

    if is_postgres(filled):
        assert "Seq Scan" not in plan, plan
    else:
        # One ordered range per provider; only the merged few rows are sorted.
        assert plan.count("ix_generations_provider_created_at_id (provider=?)") == 2, plan
        assert sqlite_sorts_only_merged_pages(plan), plan
        assert "SCAN generations\n" not in plan + "\n", plan


def test_a_date_range_is_one_range_of_the_time_index(filled):
    flt = LogFilter(since=T0 + timedelta(days=2), until=T0 + timedelta(days=3))

    plan = page_plan(filled, lambda: list_logs(filled, flt))

    assert "ix_generations_created_at_id" in plan
    assert_no_full_scan_or_sort(filled, plan)


@pytest.mark.parametrize("probe_below", [10, 5_000], ids=["common", "rare"])
def test_a_url_state_is_read_in_time_order_from_its_partial_index(filled, monkeypatch, probe_below):
    monkeypatch.setattr(hints, "SELECTIVE_BELOW", probe_below)  # 100 expired images
    flt = LogFilter(url_states=("expired",))
    cursor = list_logs(filled, flt, limit=5).next_cursor

    first = page_plan(filled, lambda: list_logs(filled, flt))
    following = page_plan(filled, lambda: list_logs(filled, flt, after=cursor))

    for plan in (first, following):
        assert_no_full_scan_or_sort(filled, plan)
        assert "ix_images_generation_id_url_state" not in plan, plan  # no per-call lookup
        if not is_postgres(filled):
            assert "USING INDEX ix_generations_expired_created_at_id" in plan, plan


def test_several_url_states_are_read_as_ordered_ranges_and_merged(filled):
    plan = page_plan(filled, lambda: list_logs(filled, LogFilter(url_states=("expired", "live"))))

    if is_postgres(filled):
        assert "Seq Scan" not in plan, plan
    else:
        assert "INDEX ix_generations_expired_created_at_id" in plan, plan
        assert "INDEX ix_generations_live_created_at_id" in plan, plan
        assert sqlite_sorts_only_merged_pages(plan), plan


def test_prompt_search_is_answered_by_the_full_text_index(filled):
    plan = page_plan(filled, lambda: count_logs(filled, LogFilter(search="lighthouse")))

    if is_postgres(filled):
        assert "Bitmap Index Scan on ix_generations_prompt_fts" in plan, plan
    else:
        assert "SCAN generations_fts VIRTUAL TABLE INDEX" in plan, plan
        assert "SEARCH generations USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "Seq Scan" not in plan and "SCAN generations\n" not in plan + "\n", plan


def test_a_common_search_word_is_tested_along_the_time_index(filled, monkeypatch):
    monkeypatch.setattr(hints, "SELECTIVE_BELOW", 10)  # 100 lighthouse prompts: "common"

    plan = page_plan(filled, lambda: list_logs(filled, LogFilter(search="lighthouse")))

    if is_postgres(filled):
        assert "Seq Scan" not in plan, plan
    else:
        assert "SCAN generations USING COVERING INDEX ix_generations_created_at_id" in plan, plan
        assert "LIST SUBQUERY" in plan and "TEMP B-TREE" not in plan, plan


def test_facets_read_one_index_entry_per_distinct_value(filled):
    plans = plans_of(filled, lambda: facets(filled))

    # first and last time, providers, models, users, and each provider's models
    assert len(plans) == 5 + len(facets(filled).providers)
    for plan in plans:
        assert_no_full_scan_or_sort(filled, plan)
        if is_postgres(filled):
            assert "Index Only Scan" in plan or "Index Scan" in plan, plan


@pytest.mark.parametrize(
    "run",
    [
        lambda engine: count_logs(engine, LogFilter(providers=("azure",))),
        lambda engine: list_gallery(engine, LogFilter()),
        lambda engine: list_gallery(engine, LogFilter(url_states=("expired",))),
        lambda engine: image_ids(engine, LogFilter(providers=("azure",)), limit=100),
        lambda engine: get_log(engine, "0" * 32),
    ],
    ids=["count_logs", "gallery", "gallery_expired", "image_ids", "get_log"],
)
def test_the_other_page_queries_use_indexes_too(filled, run, monkeypatch):
    monkeypatch.setattr(hints, "SELECTIVE_BELOW", 10)  # as on a big log: states are common
    for plan in plans_of(filled, lambda: run(filled)):
        assert_no_full_scan_or_sort(filled, plan)


PROBED = LogFilter(url_states=("expired",), search="lighthouse")


@pytest.mark.parametrize(
    "run",
    [
        lambda engine: list_logs(engine, PROBED),
        lambda engine: count_logs(engine, PROBED),
        lambda engine: list_gallery(engine, PROBED),
        lambda engine: image_ids(engine, PROBED),
        lambda engine: list(iter_records(engine, PROBED, batch_size=10)),
        lambda engine: overview(engine, PROBED),
        lambda engine: provider_summary(engine, PROBED, by=("user_id",)),
    ],
    ids=["list_logs", "count_logs", "gallery", "image_ids", "iter_records", "overview", "stats"],
)
def test_a_read_probes_its_filter_at_most_once_on_the_connection_it_queries(filled, run):
    with filled.connect() as connection, captured_sql(filled) as probing:
        hints.plan_hints(connection, PROBED)
    probes = [statement for statement, _ in probing]
    connections: list[Any] = []  # held, so no two connections share an id()
    statements: list[str] = []

    def remember(connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        connections.append(connection)
        statements.append(statement)

    event.listen(filled, "before_cursor_execute", remember)
    try:
        run(filled)
    finally:
        event.remove(filled, "before_cursor_execute", remember)

    assert probes, "the filter has nothing to probe: the test tests nothing"
    assert len({id(connection) for connection in connections}) == 1
    assert all(statements.count(probe) <= 1 for probe in probes), statements
    assert len(statements) > sum(statements.count(probe) for probe in probes)


ANALYTICS_FILTERS = [
    LogFilter(),
    LogFilter(providers=("openai",), statuses=("ok",), url_states=("expired",)),
    # Cuts two hours (and days): those are read from the calls through the time index.
    LogFilter(since=T0 + timedelta(days=1, minutes=20), until=T0 + timedelta(days=3, minutes=5)),
]


@pytest.mark.parametrize("flt", ANALYTICS_FILTERS, ids=["all", "filtered", "dates"])
def test_the_analytics_page_reads_the_rollups_not_the_calls(filled, flt):
    plans = plans_of(filled, lambda: overview(filled, flt))

    assert len(plans) == 3  # totals per bucket, the latency histogram, errors by type
    for plan in plans:
        # The rollups are few rows: scanned and grouped; the calls never are.
        assert "call_rollups" in plan or "latency_rollups" in plan, plan
        assert "Seq Scan on generations" not in plan, plan
        assert "SCAN generations" not in plan, plan  # only ranges of the cut hours
        if flt.since is None:
            assert "generations" not in plan.replace("_rollups_pkey", ""), plan


# --- verdicts (store.review) ----------------------------------------------------------------------


@pytest.fixture
def reviewed(filled) -> Engine:
    """`filled` with its 40 newest images judged: 30 approved, 10 flagged."""
    newest = list_gallery(filled, LogFilter(), limit=40).rows
    images = zip(newest["generation_id"], newest["position"], strict=True)
    for k, (call, position) in enumerate(images):
        if k < 30:
            give_verdict(filled, call, int(position), "approved", "alice")
        else:
            give_verdict(filled, call, int(position), "flagged", "bob", reason="violence or gore")
    if is_postgres(filled):
        with filled.begin() as connection:
            connection.exec_driver_sql("ANALYZE images")
            connection.exec_driver_sql("ANALYZE reviews")
    return filled


def test_a_rare_verdict_is_read_from_the_verdict_index(reviewed):
    plan = page_plan(reviewed, lambda: list_logs(reviewed, LogFilter(verdicts=("flagged",))))

    if is_postgres(reviewed):
        assert "Seq Scan" not in plan, plan
    else:
        assert "ix_images_verdict_generation_id (verdict=?)" in plan, plan
        assert "SEARCH generations USING INDEX sqlite_autoindex_generations_1 (id=?)" in plan


def test_unreviewed_images_are_tested_call_by_call_along_the_time_index(reviewed, monkeypatch):
    monkeypatch.setattr(hints, "SELECTIVE_BELOW", 10)  # 260 unreviewed images: "common"

    plan = page_plan(reviewed, lambda: list_logs(reviewed, LogFilter(verdicts=("unreviewed",))))

    assert_no_full_scan_or_sort(reviewed, plan)
    if not is_postgres(reviewed):
        assert "SCAN generations USING COVERING INDEX ix_generations_created_at_id" in plan, plan
        assert "ix_images_verdict_generation_id (verdict=? AND generation_id=?)" in plan, plan


def test_a_logs_page_reads_its_rows_verdicts_by_seeks_of_the_verdict_index(reviewed):
    plan = page_plan(reviewed, lambda: list_logs(reviewed, LogFilter()))

    assert_no_full_scan_or_sort(reviewed, plan)
    if not is_postgres(reviewed):
        seek = (
            "USING COVERING INDEX ix_images_verdict_generation_id (verdict=? AND generation_id=?)"
        )
        assert plan.count(seek) == 4, plan  # approved, flagged, needs another look, unreviewed


@pytest.mark.parametrize(
    "run",
    [
        lambda engine: next_unreviewed(engine, LogFilter(providers=("azure",))),
        lambda engine: count_unreviewed(engine, LogFilter()),
        lambda engine: list_images(engine, LogFilter(verdicts=("flagged",))),
    ],
    ids=["next_unreviewed", "count_unreviewed", "list_images"],
)
def test_the_review_walk_and_list_use_indexes(reviewed, run, monkeypatch):
    monkeypatch.setattr(hints, "SELECTIVE_BELOW", 10)  # as on a big log
    for plan in plans_of(reviewed, lambda: run(reviewed)):
        assert_no_full_scan_or_sort(reviewed, plan)


@pytest.mark.parametrize(
    "run",
    [
        lambda engine: trail(engine, list_logs(engine, LogFilter()).rows["id"][0]),
        lambda engine: recent_changes(engine, limit=10),
    ],
    ids=["trail", "recent_changes"],
)
def test_a_trail_and_the_recent_verdicts_are_read_in_index_order(reviewed, run):
    plan = plans_of(reviewed, lambda: run(reviewed))[-1]

    if is_postgres(reviewed):
        assert "Seq Scan" not in plan, plan
        # Only the reviews of one time are sorted (by id), never all of them.
        assert re.search(r"(^|->  )Sort ", plan, re.MULTILINE) is None, plan
    else:
        assert "SCAN reviews\n" not in plan + "\n" and "TEMP B-TREE" not in plan, plan
        assert "ix_reviews_" in plan, plan


def test_the_flagged_share_starts_from_the_reviewed_images(reviewed):
    plan = plans_of(reviewed, lambda: flagged_share_by_model(reviewed, LogFilter()))[-1]

    if is_postgres(reviewed):
        assert "Seq Scan" not in plan, plan
    else:
        assert plan.startswith("SEARCH images USING COVERING INDEX ix_images_verdict_"), plan
        assert "SEARCH generations USING INDEX sqlite_autoindex_generations_1 (id=?)" in plan

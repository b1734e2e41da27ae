"""The dashboard's reads (store.queries) on SQLite and PostgreSQL, on calls written by the writer.

Each test inserts CallRecords through `store.capture.writer.insert_calls`, the way every real call
arrives, and reads them back through the public query functions only.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from store.capture.writer import insert_calls
from store.queries import (
    Cursor,
    LogFilter,
    count_logs,
    facets,
    get_log,
    has_any_logs,
    image_ids,
    iter_records,
    list_gallery,
    list_logs,
    overview,
    provider_summary,
)
from store.queries.filters import fts5_match_expression
from store.schema.records import CallRecord, ImageRecord

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
THUMB = b"RIFF\x00\x00\x00\x00WEBPVP8 fake-thumbnail"


def call_id(name: str) -> str:
    """A stable generation id per test call name, so expectations read as names."""
    return hashlib.md5(name.encode()).hexdigest()


def image(state: str, n: int = 0) -> ImageRecord:
    return ImageRecord(url=f"https://img.test/{state}/{n}.png", url_state=state, thumbnail=THUMB)


CALLS = [
    CallRecord(
        id=call_id("fox_openai"),
        created_at=T0,
        provider="openai",
        model="dall-e-3",
        prompt="A red fox in the snow",
        latency_ms=100,
        cost_usd=0.04,
        user="alice",
        metadata={"team": "web"},
        images=[image("live")],
    ),
    CallRecord(
        id=call_id("cat_openai"),
        created_at=T0 + timedelta(hours=1),
        provider="openai",
        model="gpt-image-1",
        prompt="A sleepy cat on a sofa",
        revised_prompt="A sleepy tabby cat curled on a velvet sofa",
        latency_ms=200,
        cost_usd=0.17,
        user="bob",
        metadata={"team": "ads", "batch": 7},
        images=[image("expired", 0), image("live", 1)],
    ),
    CallRecord(
        id=call_id("fox_azure"),
        created_at=T0 + timedelta(hours=2),
        provider="azure",
        model="dall-e-3",
        prompt="Fox logo, flat vector",
        latency_ms=300,
        cost_usd=0.08,
        images=[image("expired")],
    ),
    CallRecord(
        id=call_id("error_azure"),
        created_at=T0 + timedelta(hours=3),
        provider="azure",
        model="dall-e-3",
        prompt="a request the provider refused",
        status="error",
        error='{"error": {"code": "content_policy_violation"}}',
        http_status=400,
        latency_ms=50,
    ),
    CallRecord(
        id=call_id("b64_replicate"),
        created_at=T0 + timedelta(hours=4),
        provider="replicate",
        model="flux-schnell",
        prompt="mountain lake at dawn",
        latency_ms=400,
        cost_usd=0.003,
        images=[ImageRecord(data=b"\x89PNG raw bytes", thumbnail=THUMB)],
    ),
    CallRecord(
        id=call_id("unknown_bfl"),
        created_at=T0 + timedelta(hours=5),
        provider="bfl",
        model="flux-pro",
        prompt="portrait of an astronaut",
        latency_ms=500,
        cost_usd=0.05,
        images=[image("unknown")],
    ),
]
NAMES = {call_id(name): name for name in (
    "fox_openai", "cat_openai", "fox_azure", "error_azure", "b64_replicate", "unknown_bfl"
)}  # fmt: skip


@pytest.fixture
def logged(engine):
    """The engine, holding CALLS."""
    insert_calls(engine, CALLS)
    return engine


def names_of(frame: pd.DataFrame, column: str = "id") -> list[str]:
    return [NAMES[value] for value in frame[column]]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (LogFilter(), ["unknown_bfl", "b64_replicate", "error_azure", "fox_azure", "cat_openai",
                       "fox_openai"]),
        (LogFilter(providers=("azure",)), ["error_azure", "fox_azure"]),
        (LogFilter(models=("dall-e-3",)), ["error_azure", "fox_azure", "fox_openai"]),
        (LogFilter(providers=("openai",), models=("dall-e-3",)), ["fox_openai"]),
        (LogFilter(statuses=("error",)), ["error_azure"]),
        (LogFilter(url_states=("expired",)), ["fox_azure", "cat_openai"]),
        (LogFilter(url_states=("none",)), ["b64_replicate"]),
        (LogFilter(url_states=("unknown", "none")), ["unknown_bfl", "b64_replicate"]),
        (LogFilter(url_states=("live", "expired")), ["fox_azure", "cat_openai", "fox_openai"]),
        (LogFilter(url_states=("nosuch",)), []),
        (LogFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)),
         ["fox_azure", "cat_openai"]),
        (LogFilter(min_cost=0.05, max_cost=0.1), ["unknown_bfl", "fox_azure"]),
        (LogFilter(user="alice"), ["fox_openai"]),
        (LogFilter(tag="team=ads"), ["cat_openai"]),
        (LogFilter(tag="batch=7"), ["cat_openai"]),
        (LogFilter(search="fox"), ["fox_azure", "fox_openai"]),
        (LogFilter(search="tabby"), ["cat_openai"]),
        (LogFilter(search='"red fox"'), ["fox_openai"]),
        (LogFilter(search="fox -logo"), ["fox_openai"]),
        (LogFilter(search="astronaut OR lake"), ["unknown_bfl", "b64_replicate"]),
        (LogFilter(providers=("openai", "azure"), url_states=("expired",), search="fox"),
         ["fox_azure"]),
    ],
)  # fmt: skip
def test_each_filter_keeps_exactly_the_matching_calls_newest_first(logged, flt, expected):
    page = list_logs(logged, flt)

    assert names_of(page.rows) == expected
    assert count_logs(logged, flt) == (len(expected), False)


def test_a_row_shows_its_first_image_and_a_shortened_prompt(engine):
    long_prompt = "word " * 100
    insert_calls(engine, [*CALLS, CallRecord(provider="openai", prompt=long_prompt)])

    rows = list_logs(engine, LogFilter()).rows.set_index("id")

    cat = rows.loc[call_id("cat_openai")]
    assert (cat.url_state, cat.thumbnail, cat.image_count) == ("expired", THUMB, 2)
    refused = rows.loc[call_id("error_azure")]
    assert pd.isna(refused.url_state) and refused.thumbnail is None
    assert (refused.status, refused.http_status) == ("error", 400)
    assert rows["prompt"].str.len().max() == 200
    assert str(rows["created_at"].dtype).endswith("UTC]")


def test_keyset_pages_visit_every_call_once_in_order_and_go_back(engine):
    # Three calls share each timestamp, so the id tie-break decides the order within a second.
    records = [
        CallRecord(provider="openai", created_at=T0 + timedelta(seconds=k // 3)) for k in range(23)
    ]
    insert_calls(engine, records)
    expected = [r.id for r in sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)]

    pages = [list_logs(engine, LogFilter(), limit=5)]
    while pages[-1].next_cursor is not None:
        pages.append(list_logs(engine, LogFilter(), limit=5, after=pages[-1].next_cursor))
    visited = [row_id for page in pages for row_id in page.rows["id"]]

    assert visited == expected
    assert [len(page.rows) for page in pages] == [5, 5, 5, 5, 3]
    assert pages[0].prev_cursor is None
    back = list_logs(engine, LogFilter(), limit=5, before=pages[-1].prev_cursor)
    assert list(back.rows["id"]) == list(pages[-2].rows["id"])
    first = list_logs(engine, LogFilter(), limit=5, before=pages[1].prev_cursor)
    assert list(first.rows["id"]) == list(pages[0].rows["id"])
    assert first.prev_cursor is None


def test_several_providers_and_models_page_in_one_newest_first_order(engine):
    # Each (provider, model) is read from its own index range and merged: the merge must
    # interleave them by time, ties included, on every page, both ways.
    pairs = [("openai", "dall-e-3"), ("azure", "dall-e-3"), ("openai", "gpt-image-1")]
    records = [
        CallRecord(
            provider=pairs[k % 3][0],
            model=pairs[k % 3][1],
            created_at=T0 + timedelta(seconds=k // 4),
            images=[image("live", 0), image("expired", 1)],
        )
        for k in range(30)
    ]
    insert_calls(engine, records)
    flt = LogFilter(providers=("openai", "azure"), models=("dall-e-3", "gpt-image-1"))
    wanted = sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)

    pages = [list_logs(engine, flt, limit=4)]
    while pages[-1].next_cursor is not None:
        pages.append(list_logs(engine, flt, limit=4, after=pages[-1].next_cursor))
    back = list_logs(engine, flt, limit=4, before=pages[2].prev_cursor)
    exported = list(iter_records(engine, flt, batch_size=7))
    gallery = [list_gallery(engine, flt, limit=5)]
    while gallery[-1].next_cursor is not None:
        gallery.append(list_gallery(engine, flt, limit=5, after=gallery[-1].next_cursor))

    assert [i for page in pages for i in page.rows["id"]] == [r.id for r in wanted]
    assert list(back.rows["id"]) == list(pages[1].rows["id"])
    assert [r.id for r in exported] == [r.id for r in wanted]
    assert [
        (g, p)
        for page in gallery
        for g, p in zip(page.rows["generation_id"], page.rows["position"], strict=True)
    ] == [(r.id, position) for r in wanted for position in (0, 1)]


def test_count_is_capped_so_it_stays_fast(logged):
    assert count_logs(logged, LogFilter(), cap=4) == (4, True)
    assert count_logs(logged, LogFilter(), cap=6) == (6, False)


@pytest.mark.parametrize(
    "text", ["fox AND", "NEAR(fox", "col:fox", "^fox", "fox OR", "' OR 1=1 --", 'fox"']
)
def test_search_box_syntax_never_raises(logged, text):
    page = list_logs(logged, LogFilter(search=text))

    assert set(names_of(page.rows)) <= {"fox_azure", "fox_openai"}


@pytest.mark.parametrize("text", ['"', "*", "-", "()"])
def test_a_search_without_any_word_is_no_search_on_both_backends(logged, text):
    assert count_logs(logged, LogFilter(search=text)) == (len(CALLS), False)


def test_a_search_of_only_excluded_words_keeps_the_rest(logged):
    page = list_logs(logged, LogFilter(search="-fox -cat"))

    assert names_of(page.rows) == ["unknown_bfl", "b64_replicate", "error_azure"]


def test_search_terms_are_quoted_for_fts5():
    assert fts5_match_expression('fox "red fox" -logo snow* OR ice') == (
        '"fox" "red fox" ("snow"* OR "ice") NOT "logo"',
        False,
    )
    assert fts5_match_expression("-fox -cat") == ('"fox" OR "cat"', True)
    assert fts5_match_expression("!!! OR") is None


def test_detail_has_every_column_and_the_images_in_order(logged):
    detail = get_log(logged, call_id("cat_openai"))

    assert detail.revised_prompt == "A sleepy tabby cat curled on a velvet sofa"
    assert (detail.user_id, detail.metadata_json) == ("bob", {"team": "ads", "batch": 7})
    assert detail.created_at == T0 + timedelta(hours=1)
    assert [(i.position, i.url_state) for i in detail.images] == [(0, "expired"), (1, "live")]
    assert detail.images[0].thumbnail == THUMB
    assert detail.images[0].url_host == "img.test"
    assert get_log(logged, call_id("no such call")) is None


def test_gallery_lists_one_row_per_image_and_pages_through_them(logged):
    pages = [list_gallery(logged, LogFilter(), limit=2)]
    while pages[-1].next_cursor is not None:
        pages.append(list_gallery(logged, LogFilter(), limit=2, after=pages[-1].next_cursor))
    seen = [
        (NAMES[g], p)
        for page in pages
        for g, p in zip(page.rows["generation_id"], page.rows["position"], strict=True)
    ]

    assert seen == [
        ("unknown_bfl", 0),
        ("b64_replicate", 0),
        ("fox_azure", 0),
        ("cat_openai", 0),
        ("cat_openai", 1),
        ("fox_openai", 0),
    ]


def test_gallery_and_image_ids_keep_only_the_images_in_the_chosen_states(logged):
    gallery = list_gallery(logged, LogFilter(url_states=("expired",))).rows

    assert list(zip(names_of(gallery, "generation_id"), gallery["position"], strict=True)) == [
        ("fox_azure", 0),
        ("cat_openai", 0),
    ]
    assert set(gallery["url_state"]) == {"expired"}
    assert image_ids(logged, LogFilter(url_states=("expired",))) == list(gallery["image_id"])
    assert len(image_ids(logged, LogFilter())) == 6
    assert len(image_ids(logged, LogFilter(), limit=2)) == 2


def test_summary_totals_and_url_shares(logged):
    result = overview(logged, LogFilter()).summary

    assert (result.calls, result.errors, result.images) == (6, 1, 6)
    assert result.cost_usd == pytest.approx(0.343)
    assert result.error_rate == pytest.approx(1 / 6)
    # Of the 5 images with a hosted URL (the b64 one has none): 2 expired, 1 unknown.
    assert result.expired_share == pytest.approx(2 / 5)
    assert result.unknown_share == pytest.approx(1 / 5)
    azure = overview(logged, LogFilter(providers=("azure",))).summary
    assert (azure.calls, azure.errors, azure.images, azure.expired_share) == (2, 1, 1, 1.0)


def test_summary_of_an_empty_view_is_all_zero(logged):
    result = overview(logged, LogFilter(providers=("nobody",))).summary

    assert (result.calls, result.images, result.cost_usd, result.error_rate) == (0, 0, 0.0, 0.0)


#: How far a percentile read from the latency histogram may be from the exact one.
HISTOGRAM = 0.026


def test_latency_percentiles_interpolate_like_percentile_cont(engine):
    latencies = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    records = [CallRecord(provider="p", model="m", latency_ms=ms) for ms in latencies]
    records.append(CallRecord(provider="p", model="m", status="error"))  # no latency
    records.append(CallRecord(provider="q", model="m", latency_ms=7, cost_usd=0.5))
    insert_calls(engine, records)

    frame = provider_summary(engine, LogFilter()).set_index("provider")

    # p50: rank 4.5 of 0..9 -> 50 + 0.5 * 10; p95: rank 8.55 -> 90 + 0.55 * 10; each rank's
    # latency read back from its histogram bucket, within HISTOGRAM of it.
    assert frame.loc["p", "p50_latency_ms"] == pytest.approx(55.0, rel=HISTOGRAM)
    assert frame.loc["p", "p95_latency_ms"] == pytest.approx(95.5, rel=HISTOGRAM)
    assert frame.loc["q", ["p50_latency_ms", "p95_latency_ms"]].tolist() == pytest.approx(
        [7.0, 7.0], rel=HISTOGRAM
    )
    assert frame.loc["p", ["calls", "errors"]].tolist() == [11, 1]
    assert frame.loc["q", "cost_usd"] == pytest.approx(0.5)
    assert list(frame.index) == ["p", "q"]  # busiest first


def test_provider_summary_by_model_groups_provider_and_model(logged):
    frame = provider_summary(logged, LogFilter(), by="model")

    assert list(frame.columns[:2]) == ["provider", "model"]
    azure = frame[(frame.provider == "azure") & (frame.model == "dall-e-3")].iloc[0]
    assert (azure.calls, azure.errors, azure.images) == (2, 1, 1)
    assert azure.p50_latency_ms == pytest.approx(175.0, rel=HISTOGRAM)
    with pytest.raises(ValueError, match="cannot group"):
        provider_summary(logged, LogFilter(), by=("prompt",))


def test_activity_counts_calls_per_hour_and_per_day(engine):
    moments = [T0 + timedelta(minutes=5), T0 + timedelta(minutes=50), T0 + timedelta(hours=2)]
    moments.append(T0 + timedelta(days=1))
    insert_calls(engine, [CallRecord(provider="p", created_at=m, cost_usd=0.01) for m in moments])

    hourly = overview(engine, LogFilter(), "hour").activity
    daily = overview(engine, LogFilter(), "day").activity

    assert list(hourly["bucket"]) == [
        pd.Timestamp(T0),
        pd.Timestamp(T0 + timedelta(hours=2)),
        pd.Timestamp(T0 + timedelta(days=1)),
    ]
    assert list(hourly["calls"]) == [2, 1, 1]
    assert list(daily["calls"]) == [3, 1]
    assert daily["bucket"].iloc[0] == pd.Timestamp("2026-11-20", tz="UTC")
    assert daily["cost_usd"].iloc[0] == pytest.approx(0.03)
    with pytest.raises(ValueError, match="bucket"):
        overview(engine, LogFilter(), "week")


def test_top_models_puts_the_busiest_first(logged):
    frame = overview(logged, LogFilter()).top_models(limit=2)

    assert frame[["provider", "model", "calls"]].values.tolist() == [
        ["azure", "dall-e-3", 2],
        ["bfl", "flux-pro", 1],
    ]


def test_overview_gives_the_figures_of_the_filtered_view(logged):
    flt = LogFilter(providers=("openai", "azure"))

    result = overview(logged, flt, "hour")

    assert (result.summary.calls, result.summary.errors, result.summary.images) == (4, 1, 4)
    assert result.summary.cost_usd == pytest.approx(0.29)
    # Of the 4 hosted images: cat_openai's first and fox_azure's are expired.
    assert result.summary.expired_share == pytest.approx(2 / 4)
    assert_frame_equal(result.providers, provider_summary(logged, flt, by="provider"))
    assert_frame_equal(result.models, provider_summary(logged, flt, by="model"))
    assert result.top_models(2)[["provider", "model", "calls"]].values.tolist() == [
        ["azure", "dall-e-3", 2],
        ["openai", "dall-e-3", 1],
    ]
    assert list(result.activity["calls"]) == [1, 1, 1, 1]
    assert list(overview(logged, flt, "day").activity["calls"]) == [4]
    with pytest.raises(ValueError, match="bucket"):
        overview(logged, flt, "week")


def test_overview_of_an_empty_view_is_empty(logged):
    result = overview(logged, LogFilter(providers=("nobody",)))

    assert (result.summary.calls, result.summary.cost_usd) == (0, 0.0)
    assert result.providers.empty and result.models.empty and result.activity.empty
    assert result.top_models().empty


def spread_calls() -> list[CallRecord]:
    """90 calls of two providers over three days: uneven latencies with ties, some missing,
    errors, costs and URL states, so each group's percentiles fall between two ranks."""
    records = []
    for k in range(90):
        provider, model = [("openai", "dall-e-3"), ("openai", "gpt-image-1"), ("bfl", "flux")][
            k % 3
        ]
        records.append(
            CallRecord(
                created_at=T0 + timedelta(hours=k),
                provider=provider,
                model=model,
                latency_ms=None if k % 11 == 0 else float((k * 37) % 23 * 10 + k % 4),
                status="error" if k % 7 == 0 else "ok",
                cost_usd=(k % 5) / 100,
                user=f"user{k % 2}",
                images=[image(["live", "expired"][k % 2], k)],
            )
        )
    return records


def matching(records: list[CallRecord], flt: LogFilter) -> list[CallRecord]:
    """The records `flt` keeps, decided in Python: the reference the SQL is checked against."""
    kept = []
    for record in records:
        if flt.statuses and record.status not in flt.statuses:
            continue
        if flt.since and record.created_at < flt.since:
            continue
        if flt.until and record.created_at >= flt.until:
            continue
        if flt.min_cost is not None and (record.cost_usd or 0) < flt.min_cost:
            continue
        if flt.user and record.user_id != flt.user:
            continue
        if flt.url_states and not {i.url_state for i in record.images} & set(flt.url_states):
            continue
        kept.append(record)
    return kept


@pytest.mark.parametrize(
    "flt",
    [
        LogFilter(),
        LogFilter(statuses=("ok",)),
        LogFilter(since=T0 + timedelta(hours=20), until=T0 + timedelta(hours=70)),
        LogFilter(min_cost=0.02),
        LogFilter(url_states=("expired",)),
        LogFilter(user="user1"),  # not in the latency indexes: the matches are sorted instead
    ],
    ids=["all", "status", "dates", "cost", "url_state", "user"],
)
def test_percentiles_per_provider_and_model_are_percentile_cont_of_the_view(engine, flt):
    records = spread_calls()
    insert_calls(engine, records)
    kept = matching(records, flt)

    result = overview(engine, flt)

    for keys, frame in ((["provider"], result.providers), (["provider", "model"], result.models)):
        for row in frame.itertuples():
            group = [r for r in kept if all(getattr(r, k) == getattr(row, k) for k in keys)]
            latencies = pd.Series([r.latency_ms for r in group], dtype="float64").dropna()
            assert row.calls == len(group)
            p50, p95 = latencies.quantile(0.5), latencies.quantile(0.95)
            assert row.p50_latency_ms == pytest.approx(p50, rel=HISTOGRAM), (keys, row)
            assert row.p95_latency_ms == pytest.approx(p95, rel=HISTOGRAM), (keys, row)


def test_a_group_without_any_latency_has_no_percentiles(engine):
    insert_calls(engine, [CallRecord(provider="p", model="m", status="error")] * 1)
    insert_calls(engine, [CallRecord(provider="p", model="n", latency_ms=5)])

    models = overview(engine, LogFilter()).models.set_index("model")

    assert models.loc["m", ["p50_latency_ms", "p95_latency_ms"]].isna().all()
    assert models.loc["n", ["p50_latency_ms", "p95_latency_ms"]].tolist() == pytest.approx(
        [5.0, 5.0], rel=HISTOGRAM
    )


def test_facets_offer_every_distinct_value(logged):
    result = facets(logged)

    assert result.providers == ["azure", "bfl", "openai", "replicate"]
    assert result.models == ["dall-e-3", "flux-pro", "flux-schnell", "gpt-image-1"]
    assert result.users == ["alice", "bob"]
    assert (result.first_at, result.last_at) == (T0, T0 + timedelta(hours=5))


def test_has_any_logs_tells_an_empty_log_apart(engine):
    assert has_any_logs(engine) is False
    insert_calls(engine, CALLS[:1])
    assert has_any_logs(engine) is True


def test_iter_records_streams_every_matching_call_with_its_images(logged):
    records = list(iter_records(logged, LogFilter(), batch_size=4))

    assert [NAMES[r.id] for r in records] == names_of(list_logs(logged, LogFilter()).rows)
    cat = next(r for r in records if r.id == call_id("cat_openai"))
    original = CALLS[1]
    assert (cat.prompt, cat.user_id, cat.metadata_json, cat.cost_usd) == (
        original.prompt,
        original.user_id,
        original.metadata_json,
        original.cost_usd,
    )
    assert [(i.url, i.url_state) for i in cat.images] == [
        (i.url, i.url_state) for i in original.images
    ]
    only_azure = list(iter_records(logged, LogFilter(providers=("azure",)), batch_size=1))
    assert {NAMES[r.id] for r in only_azure} == {"fox_azure", "error_azure"}


@pytest.mark.parametrize(
    "call",
    [
        lambda engine: list_logs(engine, LogFilter(), limit=0),
        lambda engine: list_gallery(engine, LogFilter(), limit=-1),
        lambda engine: count_logs(engine, LogFilter(), cap=0),
        lambda engine: image_ids(engine, LogFilter(), limit=-5),
        lambda engine: overview(engine, LogFilter()).top_models(limit=0),
        lambda engine: next(iter_records(engine, LogFilter(), batch_size=0)),
    ],
    ids=["list_logs", "list_gallery", "count_logs", "image_ids", "top_models", "iter_records"],
)
def test_a_page_size_below_one_is_refused_not_read_as_no_limit(logged, call):
    with pytest.raises(ValueError, match="at least 1"):
        call(logged)


def test_a_tag_with_odd_characters_matches_nothing_instead_of_failing(logged):
    assert count_logs(logged, LogFilter(tag="we\"ird'key=1")) == (0, False)


def test_a_cursor_survives_encoding_and_a_mangled_token_is_ignored():
    cursor = Cursor(T0, call_id("fox_openai"), 3)

    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode("not-a-token") is None
    assert Cursor.decode(None) is None


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+14:00", "' + b"a" * 32 + b'", null]')
            .decode()
            .rstrip("="),
            id="time-utc-cannot-hold",
        ),
        pytest.param(base64.urlsafe_b64encode(b"[" * 100_000).decode(), id="deeply-nested"),
        pytest.param("A" * 10_000, id="far-too-long"),
        pytest.param("%%%", id="not-base64"),
        pytest.param(base64.urlsafe_b64encode(b'{"created_at": 1}').decode(), id="not-a-list"),
    ],
)
def test_a_mangled_cursor_from_the_address_bar_is_no_cursor(token):
    assert Cursor.decode(token) is None

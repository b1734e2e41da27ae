"""The demo generator (store.transfer.demo) on SQLite and PostgreSQL: realistic calls,
thumbnails that exist, URL states that agree with the signed expiries the expiry module reads.

The clock is fixed (`now=NOW`) so every expectation about live / expired URLs is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from store.expiry import CheckOptions, check_images, predict_expiry
from store.expiry.check import DEFAULT_STALE_AFTER
from store.schema.models import Generation, Image
from store.transfer.demo import (
    CATALOGUE,
    DEMO_DAYS,
    LAST_SWEEP_AGO,
    DemoGenerator,
    load_demo,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
COUNT = 800
SIGNED_HOSTS = (
    "oaidalleapiprodscus.blob.core.windows.net",
    "dalleprodsec.blob.core.windows.net",
    ".bfl.ai",
    ".amazonaws.com",
)


@pytest.fixture
def demo(engine):
    result = load_demo(engine, count=COUNT, seed=7, now=NOW)
    return engine, result


def calls(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(Generation.__table__)).all()


def images(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(
            select(Image.__table__, Generation.provider, Generation.created_at.label("called_at"))
            .join(Generation.__table__, Generation.id == Image.generation_id)
            .order_by(Image.id)
        ).all()


def test_demo_calls_span_the_last_two_weeks_across_providers_and_models(demo):
    engine, result = demo

    rows = calls(engine)

    assert result.inserted == len(rows) == COUNT
    assert min(row.created_at for row in rows) >= NOW - timedelta(days=DEMO_DAYS)
    assert max(row.created_at for row in rows) <= NOW
    assert len({row.provider for row in rows}) >= 8
    assert len({(row.provider, row.model) for row in rows}) >= 18
    assert sum(row.created_at > NOW - timedelta(hours=1) for row in rows) >= 8
    assert {"team", "feature", "environment"} <= set(rows[0].metadata_json)
    assert {row.source for row in rows} == {"demo"}
    portkey = [row for row in rows if row.metadata_json.get("gateway") == "portkey"]
    assert portkey and all(row.provider == "openai" and row.trace_id for row in portkey)


def test_demo_errors_carry_the_status_and_body_each_provider_sends(demo):
    engine, _ = demo

    errors = [row for row in calls(engine) if row.status == "error"]

    assert 0.04 < len(errors) / COUNT < 0.11
    assert {400, 429, 500} <= {row.http_status for row in errors}
    assert all(row.error and row.response_json and row.image_count == 0 for row in errors)
    dalle_policy = [
        row
        for row in errors
        if row.model.startswith("dall-e") and row.provider == "openai" and row.http_status == 400
    ]
    assert dalle_policy
    assert dalle_policy[0].response_json["error"]["code"] == "content_policy_violation"
    assert dalle_policy[0].error.startswith("content_policy_violation: Your request was rejected")


def test_latency_is_realistic_for_each_model(demo):
    engine, _ = demo
    ok = [row for row in calls(engine) if row.status == "ok"]

    def latencies(model: str, quality: str | None = None) -> list[float]:
        return sorted(
            row.latency_ms / 1000
            for row in ok
            if row.model == model and (quality is None or row.quality == quality)
        )

    dalle3 = latencies("dall-e-3")
    high = latencies("gpt-image-1", "high")
    schnell = latencies("black-forest-labs/flux-schnell")
    assert 10 <= dalle3[len(dalle3) // 2] <= 20
    assert 30 <= high[len(high) // 2] <= 60
    assert 1 <= schnell[len(schnell) // 2] <= 2


def test_every_image_has_a_webp_thumbnail_and_facts_of_its_size(demo):
    engine, result = demo
    sizes = {row.id: row.size for row in calls(engine)}

    rows = images(engine)

    assert len(rows) == result.images
    for row in rows:
        assert row.thumbnail[:4] == b"RIFF" and row.thumbnail[8:12] == b"WEBP"
        assert len(row.sha256) == 64 and row.byte_size > 0
        assert f"{row.width}x{row.height}" == sizes[row.generation_id]
    b64 = [row for row in rows if row.url is None]
    assert b64 and all(row.url_state == "none" for row in b64)
    assert result.pool_images < 300  # drawn once per pool slot, not once per image


def test_urls_are_signed_the_way_their_hosts_sign_them_and_the_predictor_agrees(demo):
    engine, _ = demo

    hosted = [row for row in images(engine) if row.url]

    for host in SIGNED_HOSTS:
        assert any(host in row.url for row in hosted), host
    for row in hosted:
        prediction = predict_expiry(row.url, row.provider, row.called_at)
        if row.expires_at is None:
            assert prediction is None, row.url
        else:
            assert prediction is not None and prediction.expires_at == row.expires_at, row.url
            assert row.expires_source == prediction.source
    assert any("se=" in row.url and "ske=" in row.url for row in hosted)
    assert any("X-Amz-Expires=3600" in row.url for row in hosted)
    assert any(row.url.startswith("https://replicate.delivery/") for row in hosted)


def test_url_states_are_what_the_recorder_and_past_sweeps_left(demo):
    engine, _ = demo
    last_sweep = NOW - LAST_SWEEP_AGO

    hosted = [row for row in images(engine) if row.url]

    for row in hosted:
        lapsed = row.expires_at is not None and row.expires_at <= NOW
        if not lapsed:
            assert row.url_state == "live" and row.last_checked_at <= NOW
        elif row.url_state == "live":  # lapsed since the last sweep: left for the lapse sweep
            assert row.expires_at > last_sweep and row.last_checked_at < row.expires_at
        else:
            assert row.url_state == "expired" and row.last_checked_at >= row.expires_at
    recent = [row for row in hosted if row.called_at > NOW - timedelta(hours=1)]
    assert recent and all(row.url_state == "live" for row in recent)
    assert any(row.url_state == "expired" for row in hosted)
    assert any(row.url_state == "live" and (row.expires_at or NOW) < NOW for row in hosted)


def test_check_due_marks_exactly_the_lapsed_signed_urls_expired_without_network(demo):
    engine, _ = demo
    hosted = [row for row in images(engine) if row.url]
    lapsed = {row.id for row in hosted if row.expires_at is not None and row.expires_at <= NOW}
    # Leave out live URLs stale enough to be probed: this test makes no request.
    fresh_or_lapsed = [
        row.id
        for row in hosted
        if row.id in lapsed or row.last_checked_at > NOW - DEFAULT_STALE_AFTER
    ]

    options = CheckOptions(mode="due", image_ids=fresh_or_lapsed, now=NOW, fetch_thumbnails=False)
    summary = check_images(engine, options)

    expired = {row.id for row in images(engine) if row.url_state == "expired"}
    assert expired == lapsed
    assert summary.predicted > 0 and summary.checked == summary.without_network


def test_the_same_seed_and_clock_make_the_same_calls_so_a_rerun_adds_nothing(demo):
    engine, _ = demo

    again = load_demo(engine, count=COUNT, seed=7, now=NOW)

    assert again.inserted == 0
    assert again.generated == COUNT


def test_ids_do_not_depend_on_the_clock():
    later = NOW + timedelta(hours=5, minutes=17)

    first = [r.id for r in DemoGenerator(seed=7, now=NOW, variants=1).records(30)]
    second = [r.id for r in DemoGenerator(seed=7, now=later, variants=1).records(30)]
    other_seed = [r.id for r in DemoGenerator(seed=8, now=NOW, variants=1).records(30)]

    assert first == second
    assert not set(first) & set(other_seed)


def test_demo_calls_are_priced_by_the_price_table(demo):
    engine, _ = demo

    ok = [row for row in calls(engine) if row.status == "ok"]

    dalle3 = [row for row in ok if row.model == "dall-e-3"]
    gpt_image = [row for row in ok if row.model == "gpt-image-1"]
    assert all(row.cost_usd > 0 and row.cost_source == "per_image" for row in dalle3)
    assert all(row.cost_usd > 0 and row.cost_source == "tokens" for row in gpt_image)


def test_the_image_pool_is_bounded_by_sizes_and_formats_not_by_calls():
    keys = {(size, spec.image_format) for spec in CATALOGUE for size in spec.sizes}
    generator = DemoGenerator(seed=7, now=NOW, variants=2)

    made = sum(len(record.images) for record in generator.records(3000))

    assert made > 2500
    assert len(generator.pool) <= 2 * len(keys)


def test_the_demo_reports_the_calls_written_after_each_batch(engine):
    progress: list[tuple[int, int | None]] = []

    load_demo(
        engine,
        count=25,
        now=NOW,
        batch_size=10,
        on_progress=lambda done, total: progress.append((done, total)),
    )

    assert progress == [(0, 25), (10, 25), (20, 25), (25, 25)]


def test_zero_calls_write_nothing_and_a_negative_count_is_refused(engine):
    assert load_demo(engine, count=0, now=NOW).inserted == 0
    with pytest.raises(ValueError, match="count"):
        load_demo(engine, count=-1)

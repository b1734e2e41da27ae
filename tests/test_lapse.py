"""No read calls a URL live after its expiry: the lapse sweep, and what filters, counts, export
and probes make of it afterwards, on both databases against the real loopback signed host."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from store.cli import main
from store.expiry import CheckOptions, check_images, expire_lapsed
from store.expiry.prediction import ESTIMATE_PASSED, PROVIDER_LIFETIME, SIGNATURE_EXPIRED
from store.queries import LogFilter, count_logs, iter_records, list_gallery, list_logs, overview
from store.schema.db import make_engine
from store.schema.models import IMAGES, utcnow
from tests.test_check import add_images, rows_by_id, set_columns
from tests.test_queries_perf_shape import assert_no_full_scan_or_sort, plans_of

HOUR = timedelta(hours=1)
MIN = timedelta(minutes=1)


def states(engine, ids):
    return [(row.url_state, row.last_error_code) for row in rows_by_id(engine, ids)]


def generation_of(engine, image_id):
    with engine.connect() as connection:
        return connection.execute(
            select(IMAGES.c.generation_id).where(IMAGES.c.id == image_id)
        ).scalar_one()


def test_urls_past_their_expiry_are_swept_to_expired_predicted(engine, host):
    now = utcnow()
    signed_lapsed, signed_live = add_images(
        engine,
        host.azure_url("a.png", expires_at=now - 9 * MIN),
        host.azure_url("b.png", expires_at=now + HOUR),
    )
    estimated, unknown_lapsed, no_expiry, probed_after = add_images(
        engine,
        host.plain_url("live", "c.png"),
        host.plain_url("live", "d.png"),
        host.plain_url("live", "e.png"),
        host.plain_url("live", "f.png"),
    )
    for image_id in (signed_lapsed, signed_live):
        set_columns(engine, image_id, url_state="live", last_checked_at=now - HOUR)
    lifetime = {"expires_at": now - MIN, "expires_source": PROVIDER_LIFETIME}
    set_columns(engine, estimated, url_state="live", last_checked_at=now - HOUR, **lifetime)
    set_columns(engine, unknown_lapsed, url_state="unknown", expires_at=now - MIN)
    # A probe after its estimated expiry found it working: the probe has the last word.
    set_columns(engine, probed_after, url_state="live", last_checked_at=now, **lifetime)

    lapsed = expire_lapsed(engine)

    assert states(engine, [signed_lapsed, estimated, unknown_lapsed]) == [
        ("expired", SIGNATURE_EXPIRED),
        ("expired", ESTIMATE_PASSED),
        ("expired", ESTIMATE_PASSED),
    ]
    assert states(engine, [signed_live, no_expiry, probed_after]) == [
        ("live", None),
        ("unknown", None),  # no predicted expiry: unknown stays unknown
        ("live", None),
    ]
    # The last probe's time and answer are kept: they are still the last thing a host said.
    assert rows_by_id(engine, [signed_lapsed])[0].last_checked_at is not None
    assert lapsed.count == 3
    assert lapsed.generation_ids == {
        generation_of(engine, signed_lapsed),
        generation_of(engine, estimated),
    }
    assert expire_lapsed(engine).count == 0  # nothing left: a second sweep changes nothing


def test_filters_counts_and_pages_never_call_a_lapsed_url_live(engine, host):
    now = utcnow()
    (lapsed_id,) = add_images(engine, host.azure_url("a.png", expires_at=now - 9 * MIN))
    (live_id,) = add_images(engine, host.azure_url("b.png", expires_at=now + HOUR))
    set_columns(engine, lapsed_id, url_state="live")
    set_columns(engine, live_id, url_state="live")

    expire_lapsed(engine)

    live, expired = LogFilter(url_states=("live",)), LogFilter(url_states=("expired",))
    assert count_logs(engine, live) == (1, False)
    assert count_logs(engine, expired) == (1, False)
    assert list(list_logs(engine, live).rows["url_state"]) == ["live"]
    gallery = list_gallery(engine, expired).rows
    assert list(gallery["last_error_code"]) == [SIGNATURE_EXPIRED]
    figures = overview(engine, LogFilter())
    assert figures.summary.expired_share == 0.5


def test_export_says_expired_predicted_and_the_cli_sweeps_before_it_reads(db_url, host, tmp_path):
    engine = make_engine(db_url)
    now = utcnow()
    (lapsed,) = add_images(engine, host.azure_url("a.png", expires_at=now - 9 * MIN))
    set_columns(engine, lapsed, url_state="live")
    engine.dispose()
    out = tmp_path / "live.jsonl"

    live_only = main(["--database-url", db_url, "export", "--url-state", "live", "-o", str(out)])
    everything = main(["--database-url", db_url, "export", "-o", str(tmp_path / "all.jsonl")])

    assert (live_only, everything) == (0, 0)
    assert out.read_text() == ""
    (line,) = (tmp_path / "all.jsonl").read_text().splitlines()
    (image,) = json.loads(line)["images"]
    assert (image["url_state"], image["last_error_code"]) == ("expired", SIGNATURE_EXPIRED)
    engine = make_engine(db_url)
    (record,) = iter_records(engine, LogFilter(url_states=("expired",)))
    engine.dispose()
    assert record.images[0].last_error_code == SIGNATURE_EXPIRED


def test_a_probe_confirms_or_revives_an_estimated_expiry(engine, host):
    now = utcnow()
    revived, gone, down = add_images(
        engine,
        host.plain_url("live", "a.png"),
        host.plain_url("gone", "b.png"),
        host.plain_url("unavailable", "c.png"),
    )
    lifetime = {"expires_at": now - MIN, "expires_source": PROVIDER_LIFETIME}
    for image_id in (revived, gone, down):
        set_columns(engine, image_id, url_state="live", last_checked_at=now - HOUR, **lifetime)

    # `--due` sweeps, then probes each estimate once: no one has confirmed it yet.
    summary = check_images(engine, CheckOptions(mode="due", fetch_thumbnails=False))

    rows = rows_by_id(engine, [revived, gone, down])
    assert [(r.url_state, r.last_http_status, r.last_error_code) for r in rows] == [
        ("live", 206, None),  # answered: live again, as checked
        ("expired", 404, None),  # confirmed by the host
        ("expired", 503, ESTIMATE_PASSED),  # no answer: still a prediction, tried again later
    ]
    assert (summary.predicted, summary.checked) == (3, 3)
    assert expire_lapsed(engine).count == 0  # the probe's "live" outlasts the estimate
    again = check_images(engine, CheckOptions(mode="due", fetch_thumbnails=False))
    assert again.checked == 0  # the failed one waits out its backoff


def test_a_signed_url_past_its_expiry_is_not_probed_to_confirm(engine, host):
    now = utcnow()
    (lapsed,) = add_images(engine, host.azure_url("a.png", expires_at=now - MIN))

    summary = check_images(engine, CheckOptions(mode="due", fetch_thumbnails=False))

    assert states(engine, [lapsed]) == [("expired", SIGNATURE_EXPIRED)]
    assert (summary.predicted, summary.checked, host.requests) == (1, 0, [])


def test_a_sweep_with_nothing_to_do_is_two_seeks_of_the_url_state_expiry_index(engine, host):
    now = utcnow()
    ids = add_images(engine, *(host.plain_url("live", f"{k}.png") for k in range(20)))
    for k, image_id in enumerate(ids):
        state = ("live", "unknown", "expired")[k % 3]
        set_columns(engine, image_id, url_state=state, expires_at=now + (k + 1) * MIN)

    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE images")  # plans by the table's statistics

    plans = plans_of(engine, lambda: expire_lapsed(engine, now))

    assert len(plans) == 2  # unknown, then live; no write when nothing lapsed
    for plan in plans:
        assert_no_full_scan_or_sort(engine, plan)
        assert "ix_images_url_state_expires_at" in plan, plan


def test_a_hosts_answer_is_kept_when_the_signature_of_its_url_lapses_later(engine, host):
    now = utcnow()
    (gone,) = add_images(engine, host.azure_url("a.png", expires_at=now - MIN))
    set_columns(engine, gone, url_state="expired", last_checked_at=now - HOUR, last_http_status=404)

    summary = check_images(engine, CheckOptions(mode="all", fetch_thumbnails=False))

    (row,) = rows_by_id(engine, [gone])
    assert (row.url_state, row.last_http_status, row.last_error_code) == ("expired", 404, None)
    assert (summary.checked, summary.without_network, host.requests) == (1, 1, [])

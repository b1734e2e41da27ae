"""`check_images` on both databases against the real loopback signed host: states, error codes,
backoff, the --due selection, the last-chance thumbnail, and never a false "expired"."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from store.capture.writer import insert_calls
from store.cli import main
from store.expiry import CheckOptions, check, check_images, signed_expiry
from store.expiry.check import IMAGES, SIGNATURE_EXPIRED, backoff
from store.media.fetch import FetchError, fetch_image, make_client
from store.media.url_answers import NOT_YET_VALID
from store.schema.db import make_engine
from store.schema.models import utcnow
from store.schema.records import CallRecord, ImageRecord
from store.schema.rollups import url_states_changed
from store.transfer.demo import load_demo

HOUR = timedelta(hours=1)
STALE = timedelta(hours=6)


def add_images(engine, *images: ImageRecord | str, created_at: datetime | None = None) -> list[int]:
    """One call with these images (a str is a URL); returns their ids in order."""
    record = CallRecord(
        provider="test",
        created_at=created_at or utcnow(),
        images=[ImageRecord(url=image) if isinstance(image, str) else image for image in images],
    )
    insert_calls(engine, [record])
    with engine.connect() as connection:
        rows = connection.execute(
            select(IMAGES.c.id)
            .where(IMAGES.c.generation_id == record.id)
            .order_by(IMAGES.c.position)
        )
        return [row.id for row in rows]


def rows_by_id(engine, ids: list[int]) -> list:
    with engine.connect() as connection:
        found = {
            row.id: row for row in connection.execute(select(IMAGES).where(IMAGES.c.id.in_(ids)))
        }
    return [found[image_id] for image_id in ids]


def set_columns(engine, image_id: int, **values) -> None:
    """Set an image's columns by hand, moving its call's URL-state summary as the store would."""
    with engine.begin() as connection:
        changed = connection.execute(
            update(IMAGES)
            .where(IMAGES.c.id == image_id)
            .values(**values)
            .returning(IMAGES.c.generation_id)
        ).scalars()
        url_states_changed(connection, set(changed))


def test_each_url_is_marked_by_what_its_host_answers(engine, host):
    now = utcnow()
    ids = add_images(
        engine,
        host.azure_url("live.png", expires_at=now + HOUR, key_expires_at=now + 2 * HOUR),
        host.s3_url("live.png", signed_at=now),
        host.plain_url("get-only", "a.png"),
        host.plain_url("gone", "a.png"),
        host.plain_url("removed", "a.png"),
        host.plain_url("unavailable", "a.png"),
        host.plain_url("throttled", "a.png"),
        host.plain_url("reset", "a.png"),
        host.plain_url("slow/3", "a.png"),
    )

    summary = check_images(engine, CheckOptions(mode="all", timeout=1.5, fetch_thumbnails=False))

    rows = rows_by_id(engine, ids)
    assert [(r.url_state, r.last_http_status, r.check_failures) for r in rows] == [
        ("live", 206, 0),
        ("live", 206, 0),
        ("live", 206, 0),
        ("expired", 404, 0),
        ("expired", 410, 0),
        ("unknown", 503, 1),
        ("unknown", 429, 1),
        ("unknown", None, 1),
        ("unknown", None, 1),
    ]
    assert rows[6].last_error_code == "SlowDown"
    assert rows[8].last_error_code == "ReadTimeout"
    assert all(r.last_checked_at is not None for r in rows)
    assert (summary.checked, summary.errors) == (9, 4)
    assert dict(summary.states) == {"live": 3, "expired": 2, "unknown": 4}


def test_a_host_that_refuses_an_expired_signature_is_recorded_with_its_error_code(engine, host):
    now = utcnow()
    ids = add_images(
        engine,
        host.azure_url("old.png", starts_at=now - 4 * HOUR, expires_at=now - timedelta(seconds=2)),
        host.s3_url("old.png", signed_at=now - 2 * HOUR),
        host.gcs_url("old.png", signed_at=now - 2 * HOUR),
    )

    # Checked "as of" three hours ago, the signatures still look valid: the host must say no.
    summary = check_images(engine, CheckOptions(mode="all", now=now - 3 * HOUR))

    rows = rows_by_id(engine, ids)
    assert [(r.url_state, r.last_http_status, r.last_error_code) for r in rows] == [
        ("expired", 403, "AuthenticationFailed"),
        ("expired", 403, "AccessDenied"),
        ("expired", 400, "ExpiredToken"),
    ]
    assert summary.without_network == 0
    assert len(host.requests) == 3


def test_expired_signed_url_is_marked_without_network(engine, host):
    now = utcnow()
    ids = add_images(
        engine,
        host.azure_url("a.png", expires_at=now - timedelta(minutes=1)),
        host.azure_url("b.png", expires_at=now + HOUR, key_expires_at=now - timedelta(minutes=1)),
        host.s3_url("c.png", signed_at=now - 2 * HOUR),
        created_at=now - 2 * HOUR,
    )

    summary = check_images(engine, CheckOptions(mode="due"))

    rows = rows_by_id(engine, ids)
    assert [(r.url_state, r.last_error_code, r.last_http_status) for r in rows] == [
        ("expired", SIGNATURE_EXPIRED, None)
    ] * 3
    assert host.requests == []
    # The sweep before the selection settled them: expired (predicted), none left to probe.
    assert (summary.predicted, summary.checked) == (3, 0)


def test_a_transient_failure_never_turns_a_live_url_expired(engine, host):
    now = utcnow()
    flaky = ["unavailable", "throttled", "reset", "slow/3"]
    ids = add_images(
        engine,
        *[ImageRecord(url=host.plain_url(kind, "a.png"), url_state="live") for kind in flaky],
        ImageRecord(url=host.plain_url("unavailable", "b.png"), url_state="expired"),
        created_at=now - 2 * HOUR,
    )

    check_images(engine, CheckOptions(mode="all", timeout=1.5))

    rows = rows_by_id(engine, ids)
    assert [r.url_state for r in rows] == ["unknown"] * 4 + ["expired"]
    assert [r.check_failures for r in rows] == [1] * 5


def test_a_host_trickling_its_headers_is_cut_at_the_deadline_and_never_expired(engine, image_host):
    [image_id] = add_images(engine, image_host.url("/trickle-headers?interval=0.05&seconds=30"))
    started = time.monotonic()

    summary = check_images(engine, CheckOptions(mode="all", timeout=0.5))  # deadline 1 s

    assert time.monotonic() - started < 2.5
    [row] = rows_by_id(engine, [image_id])
    assert (row.url_state, row.last_error_code, row.check_failures) == ("unknown", "Timeout", 1)
    assert summary.errors == 1


def test_a_failing_url_waits_out_its_backoff_then_recovers(engine, host):
    ids = add_images(engine, host.plain_url("flaky/1", "a.png"), created_at=utcnow() - 7 * HOUR)

    def check_due(now: datetime | None = None):
        return check_images(engine, CheckOptions(mode="due", now=now, fetch_thumbnails=False))

    first = check_due()
    too_soon = check_due(utcnow() + backoff(1) - timedelta(minutes=1))
    later = check_due(utcnow() + backoff(1) + timedelta(minutes=1))

    (row,) = rows_by_id(engine, ids)
    assert (first.checked, first.errors) == (1, 1)
    assert too_soon.checked == 0
    assert (later.checked, later.changed) == (1, 1)
    assert (row.url_state, row.check_failures, row.last_http_status) == ("live", 0, 206)


def test_due_checks_lapsed_stale_and_retryable_urls_only(engine, host):
    now = utcnow()
    url = host.plain_url("live", "a.png")
    recent, old = now - timedelta(minutes=10), now - 7 * HOUR
    fresh = add_images(engine, url, created_at=now - timedelta(minutes=1))
    (
        live_ok,
        lapsed,
        lapsed_checked_since,
        stale,
        expired,
        b64,
        retry_waiting,
        retry_ready,
        never_checked_old,
    ) = add_images(
        engine,
        ImageRecord(url=url, url_state="live", expires_at=now + HOUR, last_checked_at=recent),
        ImageRecord(
            url=url, url_state="live", expires_at=now - HOUR, last_checked_at=now - 2 * HOUR
        ),
        ImageRecord(url=url, url_state="live", expires_at=now - HOUR, last_checked_at=recent),
        ImageRecord(url=url, url_state="live", last_checked_at=old),
        ImageRecord(url=url, url_state="expired", expires_at=now - HOUR, last_checked_at=old),
        ImageRecord(data=b"png bytes"),
        ImageRecord(url=url, url_state="unknown", last_checked_at=now - timedelta(minutes=5)),
        ImageRecord(url=url, url_state="unknown", last_checked_at=now - timedelta(minutes=11)),
        ImageRecord(url=url),
        created_at=old,
    )
    set_columns(engine, retry_waiting, check_failures=2)  # backoff(2) is 10 min
    set_columns(engine, retry_ready, check_failures=2)
    everything = [*fresh, live_ok, lapsed, lapsed_checked_since, stale, expired, b64]
    everything += [retry_waiting, retry_ready, never_checked_old]
    before = {row.id: row.last_checked_at for row in rows_by_id(engine, everything)}

    summary = check_images(
        engine, CheckOptions(mode="due", stale_after=STALE, now=now, fetch_thumbnails=False)
    )

    after = {row.id: row.last_checked_at for row in rows_by_id(engine, everything)}
    due = {image_id for image_id in everything if after[image_id] != before[image_id]}
    assert due == {lapsed, stale, retry_ready, never_checked_old}
    assert summary.checked == len(host.requests) == 4
    assert not due & {*fresh, live_ok, lapsed_checked_since, expired, b64, retry_waiting}


def test_check_all_with_image_ids_checks_exactly_those(engine, host):
    ids = add_images(engine, *[host.plain_url("live", f"{i}.png") for i in range(4)])

    summary = check_images(engine, CheckOptions(image_ids=ids[1:3], fetch_thumbnails=False))

    rows = rows_by_id(engine, ids)
    assert [r.url_state for r in rows] == ["unknown", "live", "live", "unknown"]
    assert summary.checked == 2


def test_a_live_url_without_thumbnail_gets_one_fetched_now(engine, host):
    ids = add_images(engine, host.plain_url("live", "a.png"), host.plain_url("gone", "b.png"))

    summary = check_images(engine, CheckOptions(mode="all"))

    live, gone = rows_by_id(engine, ids)
    assert live.thumbnail is not None and live.thumbnail[:4] == b"RIFF"  # WebP
    assert (live.width, live.height, live.format) == (64, 64, "png")
    assert gone.thumbnail is None
    assert summary.thumbnails == 1


def test_many_urls_are_read_in_pages_written_in_batches_with_progress(engine, host, monkeypatch):
    monkeypatch.setattr(check, "PAGE_SIZE", 100)  # 12 pages
    kinds = ["live", "gone"] * 600
    ids = add_images(engine, *[host.plain_url(kind, f"{i}.png") for i, kind in enumerate(kinds)])
    calls: list[tuple[int, int | None]] = []

    summary = check_images(
        engine,
        CheckOptions(mode="all", fetch_thumbnails=False),
        on_progress=lambda done, total: calls.append((done, total)),
    )

    rows = rows_by_id(engine, ids)
    assert [r.url_state for r in rows] == ["live", "expired"] * 600
    assert dict(summary.states) == {"live": 600, "expired": 600}
    assert calls[0] == (0, 1200) and calls[-1] == (1200, 1200)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_the_summary_reads_as_one_line(engine, host):
    now = utcnow()
    add_images(
        engine,
        host.plain_url("live", "a.png"),
        host.plain_url("unavailable", "b.png"),
        host.azure_url("c.png", expires_at=now - HOUR),
    )

    text = check_images(engine, CheckOptions(mode="all", fetch_thumbnails=False)).describe()

    assert text.startswith("Checked 3 URLs in ")
    assert "1 expired, 1 live, 1 unknown" in text
    assert "1 settled by their signature (no request)" in text
    assert "1 failed transiently (retried later)" in text


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        CheckOptions(mode="some")  # type: ignore[arg-type]  # the wrong value is the test


def test_after_the_demo_check_due_marks_exactly_its_lapsed_signed_urls_offline(engine):
    # An afternoon (yesterday's): the demo's traffic follows the clock, and in the small hours
    # no URL of 600 calls may have lapsed within the last sweep's four hours.
    now = (utcnow() - timedelta(days=1)).replace(hour=15, minute=0, second=0, microsecond=0)
    load_demo(engine, count=600, seed=2, now=now)
    with engine.connect() as connection:
        before = {row.id: row for row in connection.execute(select(IMAGES))}
    lapsed = {
        row.id
        for row in before.values()
        if row.url_state != "expired"
        and row.url
        and (signed := signed_expiry(row.url)) is not None
        and signed.expires_at <= now
    }

    # A year's staleness: only what lapsed is due, so nothing needs the (absent) network.
    options = CheckOptions(mode="due", stale_after=timedelta(days=365), now=now)
    summary = check_images(engine, options)

    with engine.connect() as connection:
        after = {row.id: row.url_state for row in connection.execute(select(IMAGES))}
    newly_expired = {i for i, state in after.items() if state == "expired"} - {
        i for i, row in before.items() if row.url_state == "expired"
    }
    assert lapsed  # the demo leaves some signed URLs lapsed since its last sweep
    assert newly_expired == lapsed
    assert (summary.predicted, summary.checked, summary.errors) == (len(lapsed), 0, 0)


def test_the_check_command_prints_its_summary(db_url, host, capsys):
    engine = make_engine(db_url)
    now = utcnow()
    add_images(
        engine,
        host.plain_url("live", "a.png"),
        host.azure_url("b.png", expires_at=now - HOUR),
        created_at=now - 7 * HOUR,
    )
    engine.dispose()

    exit_code = main(
        ["--database-url", db_url, "check", "--due", "--stale-after", "6h", "--no-progress"]
    )

    assert exit_code == 0
    out = capsys.readouterr().out
    assert "Checked 1 URLs" in out and ": 1 live;" in out
    assert "1 past their expiry marked expired (predicted)" in out


def test_a_sas_not_valid_yet_is_left_unknown_without_a_request(engine, host):
    now = utcnow()
    ids = add_images(
        engine,
        host.azure_url("early.png", starts_at=now + HOUR, expires_at=now + 3 * HOUR),
        created_at=now - 7 * HOUR,
    )

    summary = check_images(engine, CheckOptions(mode="all"))

    [row] = rows_by_id(engine, ids)
    assert (row.url_state, row.last_error_code, row.check_failures) == (
        "unknown",
        NOT_YET_VALID,
        1,
    )
    assert host.requests == []
    assert summary.without_network == 1


def test_a_host_refusing_a_sas_before_its_start_proves_nothing_about_expiry(host):
    now = utcnow()
    url = host.azure_url("early.png", starts_at=now + HOUR, expires_at=now + 3 * HOUR)

    with make_client() as client, pytest.raises(FetchError) as refused:
        fetch_image(client, url)

    assert refused.value.status == 403
    assert (refused.value.url_state, refused.value.error_code) == ("unknown", NOT_YET_VALID)


def test_an_expired_verdict_changes_when_a_later_answer_says_live(engine, host):
    ids = add_images(
        engine,
        ImageRecord(url=host.plain_url("get-only", "back.png"), url_state="expired"),
        created_at=utcnow() - 7 * HOUR,
    )

    check_images(engine, CheckOptions(mode="all", fetch_thumbnails=False))

    [row] = rows_by_id(engine, ids)
    assert (row.url_state, row.last_http_status) == ("live", 206)

"""The dashboard's one-line URL state: what a user reads under each image."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store.expiry import describe_url_state

NOW = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("state", "expires_at", "last_checked_at", "text"),
    [
        ("live", NOW + 23 * MIN, NOW - 5 * MIN, "live · expires in 23 min"),
        ("live", NOW + 5 * 60 * MIN, NOW - 5 * MIN, "live · expires in 5 h"),
        ("live", NOW - 30 * MIN, NOW - 45 * MIN, "live · expiry passed 30 min ago"),
        ("live", None, NOW - 5 * MIN, "live"),
        ("expired", NOW - 3 * 24 * 60 * MIN, NOW - 60 * MIN, "expired 3 days ago"),
        # Found gone before its predicted expiry: dated by the probe that saw it.
        ("expired", NOW + 30 * MIN, NOW - 2 * 60 * MIN, "expired 2 h ago"),
        ("expired", None, NOW - 10 * MIN, "expired 10 min ago"),
        ("expired", None, None, "expired"),
        ("unknown", NOW + 30 * MIN, NOW - 5 * MIN, "unknown (last check failed)"),
        ("unknown", NOW + 30 * MIN, None, "not checked yet · expires in 30 min"),
        ("unknown", None, None, "not checked yet"),
        ("none", None, None, "no URL (b64)"),
    ],
)
def test_the_state_reads_with_its_time(state, expires_at, last_checked_at, text):
    assert describe_url_state(state, expires_at, last_checked_at, now=NOW) == text


def test_naive_times_from_sqlite_are_read_as_utc():
    naive_expiry = (NOW + 23 * MIN).replace(tzinfo=None)

    assert describe_url_state("live", naive_expiry, None, now=NOW) == "live · expires in 23 min"

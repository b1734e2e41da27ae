"""The dashboard's one-line URL state: what a user reads under each image, and whether a probe
or a prediction decided it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store.expiry import describe_url_state, url_standing
from store.expiry.prediction import ESTIMATE_PASSED, SIGNATURE_EXPIRED

NOW = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DAY = 24 * 60 * MIN


@pytest.mark.parametrize(
    ("state", "expires_at", "last_checked_at", "status", "code", "text"),
    [
        ("live", NOW + 23 * MIN, NOW - 5 * MIN, 206, None,
         "live · 206 at 11:55 UTC (checked) · expires in 23 min"),
        ("live", NOW + 5 * 60 * MIN, None, None, None, "live · expires in 5 h"),
        ("live", None, NOW - DAY, 200, None, "live · 200 at 2024-03-04 12:00 UTC (checked)"),
        # A probe after its (estimated) expiry found it working: live, as the probe said.
        ("live", NOW - 30 * MIN, NOW - 10 * MIN, 206, None,
         "live · 206 at 11:50 UTC (checked) · expiry passed 30 min ago"),
        # Past its expiry with no probe since: not live, whatever the row still says.
        ("live", NOW - 9 * MIN, NOW - 45 * MIN, 206, None,
         "expired (predicted) · expiry passed 9 min ago"),
        ("unknown", NOW - 3 * DAY, None, None, None,
         "expired (predicted) · expiry passed 3 days ago"),
        ("expired", NOW - 9 * MIN, NOW - 45 * MIN, 206, SIGNATURE_EXPIRED,
         "expired (predicted) · expiry passed 9 min ago"),
        ("expired", NOW - 2 * 60 * MIN, None, None, ESTIMATE_PASSED,
         "expired (predicted) · expiry passed 2 h ago"),
        ("expired", NOW - 3 * DAY, NOW - 88 * MIN, 404, None,
         "expired · 404 at 10:32 UTC (checked)"),
        ("expired", NOW + 30 * MIN, NOW - 2 * DAY, 403, "AuthenticationFailed",
         "expired · 403 at 2024-03-03 12:00 UTC (checked)"),
        ("expired", NOW - 10 * MIN, None, None, None, "expired · expiry passed 10 min ago"),
        ("expired", None, None, None, None, "expired"),
        ("unknown", NOW + 30 * MIN, NOW - 5 * MIN, 503, "ServerBusy",
         "unknown · last check failed at 11:55 UTC (ServerBusy) · expires in 30 min"),
        ("unknown", NOW + 30 * MIN, None, None, None,
         "unknown · not checked yet · expires in 30 min"),
        # No predicted expiry: unknown stays unknown until a probe says otherwise.
        ("unknown", None, None, None, None, "unknown · not checked yet"),
        ("none", None, None, None, None, "no URL · returned as base64"),
    ],
)  # fmt: skip
def test_the_state_reads_with_how_and_when_it_was_decided(
    state, expires_at, last_checked_at, status, code, text
):
    said = describe_url_state(
        state, expires_at, last_checked_at, now=NOW, last_http_status=status, last_error_code=code
    )

    assert said == text


def test_a_prediction_is_told_apart_from_a_probe():
    predicted = url_standing("expired", NOW - MIN, None, NOW, last_error_code=SIGNATURE_EXPIRED)
    checked = url_standing("expired", NOW - MIN, NOW, NOW, last_http_status=404)

    assert (predicted.state, predicted.predicted, predicted.label) == (
        "expired",
        True,
        "expired (predicted)",
    )
    assert (checked.state, checked.predicted, checked.label) == ("expired", False, "expired")


def test_naive_times_from_sqlite_are_read_as_utc():
    naive_expiry = (NOW + 23 * MIN).replace(tzinfo=None)

    assert describe_url_state("live", naive_expiry, None, now=NOW) == "live · expires in 23 min"

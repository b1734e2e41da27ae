"""What a page says of an image's URL: the state it shows, whether a probe or a prediction
decided it, and when.

"live · 206 at 10:32 UTC (checked) · expires in 23 min", "expired (predicted) · expiry passed
9 min ago", "expired · 404 at 10:32 UTC (checked)", "unknown · last check failed at 10:32 UTC
(ReadTimeout)", "unknown · not checked yet · expires in 30 min", "no URL · returned as base64".
A live or unknown URL read before the lapse sweep reached it reads expired (predicted) here too
(`has_lapsed`), so no page calls a URL live past its expiry. Pure and clock-injectable
(`now=`), so the dashboard and the tests agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from store.expiry.prediction import has_lapsed, is_predicted_expired
from store.schema.models import UrlState, as_utc, utcnow

#: The chip word of an expired state that a prediction, not a probe, decided.
PREDICTED_LABEL = "expired (predicted)"


@dataclass(frozen=True)
class UrlStanding:
    """`state`: what the URL is shown and filtered as (live / expired / unknown / none);
    `predicted`: expired from its expiry alone, no probe has said so; `label`: the chip's word;
    `detail`: how it was decided and when ("" when there is nothing to add)."""

    state: str
    predicted: bool
    label: str
    detail: str

    @property
    def text(self) -> str:
        """The chip's word and the detail on one line."""
        return f"{self.label} · {self.detail}" if self.detail else self.label


def url_standing(
    url_state: str | None,
    expires_at: datetime | None,
    last_checked_at: datetime | None,
    now: datetime | None = None,
    *,
    last_http_status: int | None = None,
    last_error_code: str | None = None,
) -> UrlStanding:
    """The standing of one image's URL from its stored columns (naive times are UTC)."""
    now = _utc(now) or utcnow()
    expires_at, last_checked_at = _utc(expires_at), _utc(last_checked_at)
    if url_state == UrlState.none:
        return UrlStanding(UrlState.none.value, False, "no URL", "returned as base64")
    if is_predicted_expired(url_state, last_error_code) or has_lapsed(
        url_state, expires_at, last_checked_at, now
    ):
        detail = f"expiry passed {ago(now - expires_at)}" if expires_at is not None else ""
        return UrlStanding(UrlState.expired.value, True, PREDICTED_LABEL, detail)
    checked = _checked(last_checked_at, last_http_status, now)
    if url_state == UrlState.expired:
        if not checked and expires_at is not None and expires_at <= now:
            checked = f"expiry passed {ago(now - expires_at)}"  # as given (an import): no probe
        return UrlStanding(UrlState.expired.value, False, "expired", checked)
    if url_state == UrlState.live:
        expiry = _expiry(expires_at, now) if expires_at is not None else ""
        return UrlStanding(UrlState.live.value, False, "live", _joined(checked, expiry))
    expiry = _expiry(expires_at, now) if expires_at is not None else ""
    if last_checked_at is not None:
        failed = f"last check failed at {_clock(last_checked_at, now)}"
        if last_error_code:
            failed += f" ({last_error_code})"
        return UrlStanding(UrlState.unknown.value, False, "unknown", _joined(failed, expiry))
    return UrlStanding(UrlState.unknown.value, False, "unknown", _joined("not checked yet", expiry))


def describe_url_state(
    url_state: str | None,
    expires_at: datetime | None,
    last_checked_at: datetime | None,
    now: datetime | None = None,
    *,
    last_http_status: int | None = None,
    last_error_code: str | None = None,
) -> str:
    """`url_standing`'s one line."""
    return url_standing(
        url_state,
        expires_at,
        last_checked_at,
        now,
        last_http_status=last_http_status,
        last_error_code=last_error_code,
    ).text


def ago(elapsed: timedelta) -> str:
    """'3 days ago', '23 min ago', 'just now'."""
    return "just now" if elapsed < timedelta(minutes=1) else f"{humanize(elapsed)} ago"


def humanize(span: timedelta) -> str:
    """A span in its largest whole unit: '23 min', '5 h', '3 days'."""
    seconds = abs(span.total_seconds())
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    days = int(seconds // 86400)
    return f"{days} days"


def _checked(last_checked_at: datetime | None, status: int | None, now: datetime) -> str:
    """'404 at 10:32 UTC (checked)': what the last probe saw, and when ("" if none was made)."""
    if last_checked_at is None:
        return ""
    if status is None:
        return f"checked at {_clock(last_checked_at, now)}"
    return f"{status} at {_clock(last_checked_at, now)} (checked)"


def _clock(moment: datetime, now: datetime) -> str:
    """'10:32 UTC' today, '2026-11-28 10:32 UTC' on another day."""
    shown = f"{moment:%H:%M}" if moment.date() == now.date() else f"{moment:%Y-%m-%d %H:%M}"
    return f"{shown} UTC"


def _expiry(expires_at: datetime, now: datetime) -> str:
    if expires_at > now:
        return f"expires in {humanize(expires_at - now)}"
    return f"expiry passed {ago(now - expires_at)}"


def _joined(*parts: str) -> str:
    return " · ".join(part for part in parts if part)


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands times back naive (they are stored as UTC); make them comparable."""
    return None if moment is None else as_utc(moment)

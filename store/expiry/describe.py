"""One short line that says what we know of an image's URL, for the dashboard's badges.

"live · expires in 23 min", "expired 3 days ago", "unknown (last check failed)",
"no URL (b64)". Pure and clock-injectable (`now=`), so the dashboard and the tests agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from store.schema.models import UrlState, as_utc, utcnow


def describe_url_state(
    url_state: str | None,
    expires_at: datetime | None,
    last_checked_at: datetime | None,
    now: datetime | None = None,
) -> str:
    """The state and, when known, how long until (or since) the URL's expiry."""
    now = _utc(now) or utcnow()
    expires_at, last_checked_at = _utc(expires_at), _utc(last_checked_at)
    if url_state == UrlState.none:
        return "no URL (b64)"
    if url_state == UrlState.expired:
        # The signed or predicted expiry dates it when it came first; else the probe that saw it.
        seen_at = last_checked_at or now
        when = expires_at if expires_at is not None and expires_at <= seen_at else last_checked_at
        return f"expired {ago(now - when)}" if when is not None else "expired"
    if url_state == UrlState.live:
        return f"live · {_expiry(expires_at, now)}" if expires_at else "live"
    if last_checked_at is not None:
        return "unknown (last check failed)"
    return f"not checked yet · {_expiry(expires_at, now)}" if expires_at else "not checked yet"


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


def _expiry(expires_at: datetime, now: datetime) -> str:
    if expires_at > now:
        return f"expires in {humanize(expires_at - now)}"
    return f"expiry passed {ago(now - expires_at)}"


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands times back naive (they are stored as UTC); make them comparable."""
    return None if moment is None else as_utc(moment)

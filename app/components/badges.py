"""How a URL state and a verdict look everywhere in the app: one word, one colour, one icon.

The Logs table, the Gallery cards, the Detail and Review pages and the filter pills all take
their labels and colours from `STATES` and `VERDICTS`, so "expired" and "flagged" are the
same chips wherever an auditor meets them. A URL's chip and the line beside it come from its
`standing` (store.expiry.url_standing): "expired (predicted)" when only its expiry says so,
"expired" with the probe's answer and time when a host did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from numbers import Real

import pandas as pd
import streamlit as st

from store.expiry import UrlStanding, url_standing
from store.expiry.describe import PREDICTED_LABEL
from store.schema.enums import UNREAD, UNREVIEWED, Credentials, Verdict
from store.schema.models import UrlState


@dataclass(frozen=True)
class StateLook:
    color: str  # an st.badge colour name
    hex: str  # the same colour for table chips and charts
    icon: str
    label: str | None = None  # the word shown, where the state's own name would mislead


#: In the order the filter offers them.
STATES: dict[str, StateLook] = {
    UrlState.live.value: StateLook("green", "#16a34a", ":material/check_circle:"),
    UrlState.expired.value: StateLook("red", "#dc2626", ":material/link_off:"),
    UrlState.unknown.value: StateLook("gray", "#6b7280", ":material/help:"),
    # "none" would read as "no image": the image came as base64, without a hosted URL.
    UrlState.none.value: StateLook("blue", "#2563eb", ":material/data_object:", label="no URL"),
}


#: The Logs table's chips: the states, and an expired one that its expiry alone decided (the
#: filter's "expired" holds both; the chip tells them apart).
CHIPS: dict[str, StateLook] = {
    **STATES,
    PREDICTED_LABEL: StateLook("red", "#f87171", ":material/hourglass_disabled:"),
}


#: In the order the filter offers them: what is left to do first.
VERDICTS: dict[str, StateLook] = {
    UNREVIEWED: StateLook("gray", "#6b7280", ":material/pending:"),
    Verdict.approved.value: StateLook("green", "#16a34a", ":material/verified:"),
    Verdict.flagged.value: StateLook("red", "#dc2626", ":material/flag:"),
    Verdict.needs_another_look.value: StateLook(
        "orange", "#d97706", ":material/visibility:", label="needs another look"
    ),
}


#: Content credentials (C2PA), in the order the filter offers them: what to look at first.
CREDENTIALS: dict[str, StateLook] = {
    Credentials.invalid.value: StateLook(
        "red", "#dc2626", ":material/gpp_bad:", label="credentials invalid"
    ),
    Credentials.none.value: StateLook(
        "orange", "#d97706", ":material/gpp_maybe:", label="no credentials"
    ),
    Credentials.valid.value: StateLook(
        "green", "#16a34a", ":material/verified_user:", label="credentials valid"
    ),
    Credentials.trusted.value: StateLook(
        "green", "#15803d", ":material/verified_user:", label="credentials trusted"
    ),
    UNREAD: StateLook("gray", "#6b7280", ":material/help:", label="credentials not read"),
}


def credentials_label(state: str) -> str:
    """The words shown for a credentials state ("no credentials", not "none")."""
    look = CREDENTIALS.get(state)
    return look.label if look and look.label else state


def credentials_badge(state: str | None, container=st) -> None:
    """A coloured badge for an image's content credentials (None: its bytes were not read)."""
    shown = state if isinstance(state, str) and state in CREDENTIALS else UNREAD
    look = CREDENTIALS[shown]
    container.badge(credentials_label(shown), color=look.color, icon=look.icon)


def verdict_label(verdict: str) -> str:
    """The words shown for a verdict ("needs another look", not its stored name)."""
    look = VERDICTS.get(verdict)
    return look.label if look and look.label else verdict


def verdict_badge(verdict: str | None, container=st) -> None:
    """A coloured badge for an image's current verdict (None: no one has judged it yet)."""
    shown = verdict if isinstance(verdict, str) else UNREVIEWED
    look = VERDICTS.get(shown, VERDICTS[UNREVIEWED])
    container.badge(verdict_label(shown), color=look.color, icon=look.icon)


def label(state: str) -> str:
    """The word shown for a state: its own name, unless its look says otherwise."""
    look = STATES.get(state)
    return look.label if look and look.label else state


def standing(
    state: object,
    expires_at: object,
    last_checked_at: object,
    last_http_status: object,
    last_error_code: object,
    now: datetime,
) -> UrlStanding | None:
    """What the page says of an image's URL (None: the call has no image).

    Accepts the pandas values a DataFrame cell holds (NaN, NaT, Timestamp, a float status) as
    well as plain ones, so a Logs row, a Gallery card and an `ImageDetail` read alike.
    """
    if not isinstance(state, str):
        return None
    status = last_http_status
    status = int(float(status)) if isinstance(status, Real) and not _missing(status) else None
    return url_standing(
        state,
        _datetime(expires_at),
        _datetime(last_checked_at),
        now,
        last_http_status=status,
        last_error_code=last_error_code if isinstance(last_error_code, str) else None,
    )


def chip(url: UrlStanding | None) -> list[str]:
    """The Logs table's chip value for a URL (CHIPS' keys; [] without an image)."""
    if url is None:
        return []
    return [PREDICTED_LABEL if url.predicted else url.state]


def badge(url: UrlStanding | None, container=st, *, narrow: bool = False) -> None:
    """A coloured badge for an image's URL (a call without images shows none). `narrow` (a
    Gallery card): the state's word alone, which fits; the line under it says "predicted"."""
    if url is None:
        container.badge("no image", color="gray", icon=":material/hide_image:")
        return
    unknown = STATES[UrlState.unknown.value]  # a state this app does not know
    look = CHIPS[PREDICTED_LABEL] if url.predicted else STATES.get(url.state, unknown)
    container.badge(label(url.state) if narrow else url.label, color=look.color, icon=look.icon)


def narrow_line(url: UrlStanding | None) -> str:
    """The line under a `narrow` badge: "predicted · expiry passed 9 min ago" for a prediction
    (the badge alone says "expired"), else the detail."""
    if url is None:
        return ""
    return f"predicted · {url.detail}" if url.predicted else url.detail


def expired_mark(url: UrlStanding) -> str:
    """The line under a cached thumbnail whose hosted URL is gone: how we know, and since when."""
    return f"Hosted URL {url.text} — cached copy"


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value))


def _datetime(value: object) -> datetime | None:
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value if isinstance(value, datetime) else None

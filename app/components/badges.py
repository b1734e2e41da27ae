"""How a URL state and a verdict look everywhere in the app: one word, one colour, one icon.

The Logs table, the Gallery cards, the Detail and Review pages and the filter pills all take
their labels and colours from `STATES` and `VERDICTS`, so "expired" and "flagged" are the
same chips wherever an auditor meets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from store.expiry import describe_url_state
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


def badge(state: str | None, container=st) -> None:
    """A coloured badge for an image's URL state (a call without images shows none)."""
    if state is None:
        container.badge("no image", color="gray", icon=":material/hide_image:")
        return
    look = STATES.get(state, STATES[UrlState.unknown.value])  # a state this app does not know
    container.badge(label(state), color=look.color, icon=look.icon)


def expired_mark(expires_at: datetime | None, last_checked_at: datetime | None) -> str:
    """The line under a cached thumbnail whose hosted URL is gone."""
    if expires_at is not None:
        return f"Hosted URL expired on {expires_at:%Y-%m-%d %H:%M} UTC — cached copy"
    if last_checked_at is not None:
        return f"Hosted URL found expired on {last_checked_at:%Y-%m-%d %H:%M} UTC — cached copy"
    return "Hosted URL expired — cached copy"


def when(
    state: str | None,
    expires_at: datetime | None,
    last_checked_at: datetime | None,
    now: datetime | None = None,
) -> str:
    """ "expires in 23 min" / "expired 3 days ago" (store.expiry's wording); "" without an image.

    Accepts the pandas values a DataFrame cell holds (NaT, Timestamp) as well as datetimes.
    """
    if not isinstance(state, str):
        return ""
    return describe_url_state(state, _datetime(expires_at), _datetime(last_checked_at), now=now)


def _datetime(value: object) -> datetime | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value if isinstance(value, datetime) else None

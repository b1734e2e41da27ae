"""The sidebar filters, bound to the URL, and the `LogFilter` they make.

Each widget is bound to a query parameter (`bind="query-params"`, the key is the parameter's
name), so the address bar always holds the view and a pasted link restores it. The sidebar is
drawn by the entry script (app/main.py), not by a page: Streamlit drops a page's bound
parameters when the user switches pages, but keeps the entry script's, so the same filters
follow the user from Logs to Gallery to Analytics and into a Detail link.

The date widgets are whole days in UTC and "to" is inclusive (what a person means by
"from Monday to Friday"); `current()` turns that into LogFilter's exclusive `until`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import streamlit as st
from components import badges, data
from components.text import plain

from store.queries import LogFilter
from store.queries.filters import parse_utc_datetime
from store.schema.models import Status

#: Widget keys, which are also the URL's parameter names.
PROVIDER = "provider"
MODEL = "model"
STATUS = "status"
URL_STATE = "url_state"
VERDICT = "verdict"
CREDENTIALS = "credentials"
FROM = "from"
TO = "to"
MIN_COST = "min_cost"
MAX_COST = "max_cost"
USER = "user"
TAG = "tag"
SEARCH = "q"

#: Each key's "no filter" value, for Reset and for reading a key not drawn yet.
DEFAULTS: dict[str, object] = {
    PROVIDER: [],
    MODEL: [],
    STATUS: [],
    URL_STATE: [],
    VERDICT: [],
    CREDENTIALS: [],
    FROM: None,
    TO: None,
    MIN_COST: None,
    MAX_COST: None,
    USER: None,
    TAG: "",
    SEARCH: "",
}


def sidebar() -> None:
    """Draw the refresh button and every filter in the sidebar."""
    facets = data.facets()
    offered = {
        PROVIDER: facets.providers,
        MODEL: facets.models,
        STATUS: [status.value for status in Status],
        URL_STATE: list(badges.STATES),
        VERDICT: list(badges.VERDICTS),
        CREDENTIALS: list(badges.CREDENTIALS),
    }
    # Read before the widgets are drawn: a bound widget drops values it does not offer.
    unknown = unknown_link_values(offered)
    with st.sidebar:
        for key, values in unknown.items():
            shown = ", ".join(plain(repr(value)) for value in values)
            st.warning(f"The link asks for {key} {shown}, which this log does not have: ignored.")
        st.button(
            "Refresh",
            icon=":material/refresh:",
            on_click=data.refresh,
            help=f"Read the database now (pages refresh on their own every "
            f"{data.CACHE_TTL_SECONDS} s)",
            width="stretch",
        )
        st.text_input(
            "Search prompts",
            key=SEARCH,
            bind="query-params",
            placeholder='castle OR tower, "red fox", -night',
            help='All words must match. "a phrase", word*, OR, -word are understood.',
        )
        st.multiselect(
            "Provider", facets.providers, key=PROVIDER, bind="query-params", placeholder="any"
        )
        st.multiselect("Model", facets.models, key=MODEL, bind="query-params", placeholder="any")
        st.pills(
            "Status",
            [status.value for status in Status],
            selection_mode="multi",
            key=STATUS,
            bind="query-params",
        )
        st.pills(
            "URL state",
            list(badges.STATES),
            selection_mode="multi",
            format_func=badges.label,
            key=URL_STATE,
            bind="query-params",
            help="Calls with at least one image whose hosted URL is in this state. A URL past "
            "its predicted expiry is expired (predicted) until a probe says otherwise; one "
            "without a predicted expiry stays unknown until a probe answers.",
        )
        st.pills(
            "Verdict",
            list(badges.VERDICTS),
            selection_mode="multi",
            format_func=badges.verdict_label,
            key=VERDICT,
            bind="query-params",
            help="Calls with at least one image that a reviewer judged so (or no one yet).",
        )
        st.pills(
            "Content credentials",
            list(badges.CREDENTIALS),
            selection_mode="multi",
            format_func=badges.credentials_label,
            key=CREDENTIALS,
            bind="query-params",
            help="Calls with at least one image whose C2PA manifest reads so: invalid (fails "
            "validation), none (no manifest), valid, trusted, or not read.",
        )
        since, until = st.columns(2)
        since.date_input("From (UTC)", value=None, key=FROM, bind="query-params")
        until.date_input("To (UTC)", value=None, key=TO, bind="query-params")
        low, high = st.columns(2)
        low.number_input(
            "Min cost $", value=None, min_value=0.0, step=0.01, key=MIN_COST, bind="query-params"
        )
        high.number_input(
            "Max cost $", value=None, min_value=0.0, step=0.01, key=MAX_COST, bind="query-params"
        )
        st.selectbox(
            "User",
            facets.users,
            index=None,
            accept_new_options=True,
            placeholder="any user",
            key=USER,
            bind="query-params",
        )
        st.text_input(
            "Tag",
            key=TAG,
            bind="query-params",
            placeholder="key=value, e.g. team=ads",
            help="Calls whose metadata has this key with this value.",
        )
        if _value(TAG) and "=" not in str(_value(TAG)):
            st.warning("A tag filter is written key=value; this one is ignored.")
        st.button(
            "Clear filters",
            icon=":material/filter_alt_off:",
            on_click=_reset,
            disabled=current().is_empty,
            width="stretch",
        )


def unknown_link_values(offered: dict[str, list[str]]) -> dict[str, list[str]]:
    """The address bar's values for each key that are not among the options offered."""
    unknown = {}
    for key, options in offered.items():
        values = [value for value in st.query_params.get_all(key) if value and value not in options]
        if values:
            unknown[key] = values
    return unknown


def current() -> LogFilter:
    """The filter the sidebar shows (every field empty before it is drawn)."""
    start, end = _value(FROM), _value(TO)
    tag = str(_value(TAG) or "")
    return LogFilter(
        providers=tuple(_value(PROVIDER) or ()),
        models=tuple(_value(MODEL) or ()),
        statuses=tuple(_value(STATUS) or ()),
        url_states=tuple(_value(URL_STATE) or ()),
        verdicts=tuple(_value(VERDICT) or ()),
        credentials=tuple(_value(CREDENTIALS) or ()),
        since=parse_utc_datetime(start) if isinstance(start, date) else None,
        until=parse_utc_datetime(end + timedelta(days=1)) if isinstance(end, date) else None,
        min_cost=_value(MIN_COST),
        max_cost=_value(MAX_COST),
        user=_value(USER),
        tag=tag if "=" in tag else None,
        search=str(_value(SEARCH) or "") or None,
    )


def _value(key: str) -> Any:
    """A widget's current value (its type is the widget's: a list for pills, a date...)."""
    return st.session_state.get(key, DEFAULTS[key])


def _reset() -> None:
    """Put every filter back to "any" (bound widgets are changed through session state)."""
    for key, value in DEFAULTS.items():
        st.session_state[key] = value

"""Keyset page positions in the URL (`?after=` / `?before=`), so a pasted link opens the same page.

A position only means something for the filter it was taken under: when the filter changes,
the position is dropped and the view starts again at the newest rows.
"""

from __future__ import annotations

import streamlit as st

from store.queries import Cursor, LogFilter

AFTER = "after"
BEFORE = "before"


def position(flt: LogFilter, scope: str) -> tuple[Cursor | None, Cursor | None]:
    """(after, before) for this page's view; both None after a filter change."""
    seen = f"_paging_filter_{scope}"
    if st.session_state.get(seen, flt) != flt:
        move()
    st.session_state[seen] = flt
    return Cursor.decode(st.query_params.get(AFTER)), Cursor.decode(st.query_params.get(BEFORE))


def move(after: Cursor | None = None, before: Cursor | None = None) -> None:
    """Point the URL at another page (no cursor: the first page)."""
    for key, cursor in ((AFTER, after), (BEFORE, before)):
        if cursor is None:
            st.query_params.pop(key, None)
        else:
            st.query_params[key] = cursor.encode()


def carried() -> dict[str, str]:
    """The position parameters to pass along to Detail, so "Back" returns to the same page."""
    return {key: st.query_params[key] for key in (AFTER, BEFORE) if key in st.query_params}

"""Who gives a verdict: the logged-in user when Streamlit's login is configured, else the name
the reviewer typed once in this session.

With `[auth]` in .streamlit/secrets.toml and a user logged in, `st.user` names them (name,
else email) and nobody can sign as someone else. Without a login the dashboard cannot know
who sits in front of it, so it asks once per browser session and keeps the answer in
`st.session_state`; the trail records the name as given.
"""

from __future__ import annotations

import streamlit as st
from components.text import plain

#: Where the typed name is kept for the session.
NAME = "_reviewer_name"
#: The name input's key.
TYPED = "reviewer_name_input"
#: Width of reviews.reviewer.
NAME_LENGTH = 200


def logged_in_name() -> str | None:
    """The logged-in user's name or email, when Streamlit's login is on and someone is in."""
    user = st.user
    if user.get("is_logged_in") is not True:
        return None
    for claim in ("name", "email"):
        value = user.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:NAME_LENGTH]
    return None


def current() -> str | None:
    """The reviewer's name for the trail, or None when it is not known yet."""
    return logged_in_name() or st.session_state.get(NAME)


def ask() -> None:
    """Ask for the reviewer's name (once per session): every verdict is signed with it."""
    with st.form("reviewer", border=True, width=420):
        st.text_input(
            "Your name",
            key=TYPED,
            max_chars=NAME_LENGTH,
            placeholder="e.g. Alice Martin",
            help="Recorded with every verdict you give in this session.",
        )
        if st.form_submit_button("Start reviewing", icon=":material/login:", type="primary"):
            name = str(st.session_state.get(TYPED) or "").strip()
            if not name:
                st.warning("A verdict is signed: type your name first.")
                return
            st.session_state[NAME] = name
            st.rerun()


def signed_as(name: str) -> None:
    """A line saying whose verdicts these are, with a way to change the typed name."""
    if logged_in_name() is not None:
        st.caption(f":material/person: Reviewing as {plain(name)} (logged in)")
        return
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(f":material/person: Reviewing as {plain(name)}")
    if right.button("Not you?", key="reviewer-change", type="tertiary"):
        st.session_state.pop(NAME, None)
        st.rerun()

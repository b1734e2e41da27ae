"""Giving a verdict and reading an image's trail: the buttons and table the Review and Detail
pages share.

A verdict goes through store.review.give_verdict (one appended review row and the image's
current verdict, in one transaction); the page's cached reads are then dropped, so every chip
shows it on the next run. Notes and reasons are shown as plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st
from components import badges, data
from streamlit.delta_generator import DeltaGenerator

from store.review import Change, NoSuchImage, ReviewError, configured_reasons, give_verdict
from store.schema.enums import UNREVIEWED, Verdict

#: A verdict given on the last run, shown once (as a toast) on the run that follows it.
GIVEN = "_verdict_given"

BUTTONS = {
    Verdict.approved: ("Approve", ":material/verified:"),
    Verdict.flagged: ("Flag", ":material/flag:"),
    Verdict.needs_another_look: ("Needs another look", ":material/visibility:"),
}


def controls(
    generation_id: str,
    position: int,
    reviewer: str,
    key: str,
    on_given: Callable[[], None] | None = None,
) -> DeltaGenerator:
    """Reason, note and one button per verdict for one image; returns the buttons' row, where
    a page may add its own button (the Review page's Skip).

    On a click the verdict is written, `on_given` is called, the cached reads are dropped and
    the page reruns.
    """
    if message := st.session_state.pop(GIVEN, None):
        st.toast(message, icon=":material/task_alt:")
    reason_column, note_column = st.columns(2)
    reason = reason_column.selectbox(
        "Reason (to flag)",
        configured_reasons(),
        index=None,
        placeholder="choose a reason to flag",
        key=f"{key}-reason",
    )
    note = note_column.text_input(
        "Note", key=f"{key}-note", placeholder="optional, kept in the trail", max_chars=2000
    )
    # A row that wraps on a narrow screen, instead of columns that cut the labels.
    row = st.container(horizontal=True, gap="small")
    clicked = None
    for verdict, (label, icon) in BUTTONS.items():
        needs_reason = verdict is Verdict.flagged and reason is None
        if row.button(
            label,
            icon=icon,
            key=f"{key}-{verdict.value}",
            type="primary" if verdict is Verdict.approved else "secondary",
            disabled=needs_reason,
            help="Choose a reason first" if needs_reason else None,
        ):
            clicked = verdict
    given = reason if clicked is Verdict.flagged else None
    if clicked is not None and _give(generation_id, position, clicked, reviewer, given, note):
        if on_given is not None:
            on_given()
        data.refresh()
        st.rerun()
    return row


def _give(
    generation_id: str,
    position: int,
    verdict: Verdict,
    reviewer: str,
    reason: str | None,
    note: str | None,
) -> bool:
    """Write the verdict; False (and the reason shown) when it cannot be given."""
    try:
        change = give_verdict(
            data.engine(), generation_id, position, verdict, reviewer, reason=reason, note=note
        )
    except (ReviewError, NoSuchImage) as exc:
        st.error(str(exc), icon=":material/error:")
        return False
    st.session_state[GIVEN] = (
        f"Saved for image {position + 1} of call {generation_id[:8]}…: "
        f"{badges.verdict_label(change.from_verdict or UNREVIEWED)} → "
        f"{badges.verdict_label(change.to_verdict)}"
    )
    return True


def trail_table(
    changes: Sequence[Change], *, empty: str = "No verdict yet.", with_image: bool = False
) -> None:
    """Verdict changes as a table: when, who (and which image), from what to what, why."""
    if not changes:
        st.caption(empty)
        return
    where = (
        {
            "Call": [change.generation_id for change in changes],
            "Image": [change.position + 1 for change in changes],
        }
        if with_image
        else {}
    )
    st.dataframe(
        pd.DataFrame(
            {
                "When (UTC)": [change.created_at for change in changes],
                "Reviewer": [change.reviewer for change in changes],
                **where,
                "From": [
                    badges.verdict_label(change.from_verdict or UNREVIEWED) for change in changes
                ],
                "To": [badges.verdict_label(change.to_verdict) for change in changes],
                "Reason": [change.reason or "" for change in changes],
                "Note": [change.note or "" for change in changes],
            }
        ),
        column_config={
            "When (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        },
        hide_index=True,
        width="stretch",
    )

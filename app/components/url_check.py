""" "Check URLs now": probe the hosted URLs of the current view, with a progress bar.

The probe itself is store.expiry.check_images (GET with a one-byte Range, bounded
concurrency; a transient failure never marks a URL expired). The newest CHECK_LIMIT images
of the view are checked, so a click on an unfiltered million-call log finishes in seconds;
narrow the filters to reach older ones.
"""

from __future__ import annotations

import streamlit as st
from components import data

from store import queries
from store.expiry.check import CheckOptions, check_images
from store.queries import LogFilter

#: Images probed per click, newest first.
CHECK_LIMIT = 2_000
#: The last check's summary, shown once on the rerun that displays the new states.
RESULT = "_url_check_result"


def last_result() -> None:
    """The summary of the check the previous click ran, once."""
    if message := st.session_state.pop(RESULT, None):
        st.success(message)


def button(flt: LogFilter, container=st) -> None:
    """The button; on click, probes the view's images, then reruns to show the new states."""
    if not container.button(
        "Check URLs now",
        icon=":material/network_check:",
        help=f"Probe the hosted URLs of the newest {CHECK_LIMIT:,} images in this view "
        "and update their state.",
        width="content",
    ):
        return
    engine = data.engine()
    ids = queries.image_ids(engine, flt, limit=CHECK_LIMIT)
    if not ids:
        container.info("No images in this view.")
        return
    bar = container.progress(0.0, text=f"Checking {len(ids):,} URLs…")

    def on_progress(done: int, total: int | None) -> None:
        bar.progress(
            done / total if total else 1.0, text=f"Checked {done:,} of {total or 0:,} URLs"
        )

    result = check_images(engine, CheckOptions(image_ids=ids), on_progress=on_progress)
    st.session_state[RESULT] = result.describe()
    data.refresh()
    st.rerun()

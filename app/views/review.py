"""Review: the unreviewed images of the sidebar's filters, one at a time, newest first.

Each image is shown from the log (the cached thumbnail; the hosted original only on a click),
with its prompt as plain text and its provider and model; Approve, Flag (with a reason), Needs
another look or Skip moves on to the next. A skipped image stays unreviewed: the walk goes on
past it, and a new walk offers it again. Progress is "N of M": N counts the images handled in
this walk, M those plus the view's images still unreviewed (judged ones drop out).
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from components import badges, data, filters, image_cards, reviewer, verdicts
from components.text import plain

from store.queries import Cursor, LogDetail, LogFilter
from store.schema.models import utcnow

#: This session's walk: the filter it walks, where it is, what was done on the way.
WALK = "_review_walk"


def walk_of(flt: LogFilter) -> dict[str, Any]:
    """The session's walk of `flt`, started afresh when the filters changed."""
    walk = st.session_state.get(WALK)
    if walk is None or walk["filter"] != flt:
        walk = {"filter": flt, "after": None, "judged": 0, "skipped": 0}
        st.session_state[WALK] = walk
    return walk


def restart() -> None:
    st.session_state.pop(WALK, None)


def judged(walk: dict[str, Any], where: Cursor) -> None:
    walk["after"] = where
    walk["judged"] += 1


def skip(walk: dict[str, Any], where: Cursor) -> None:
    walk["after"] = where
    walk["skipped"] += 1


def progress(walk: dict[str, Any], flt: LogFilter) -> None:
    remaining, capped = data.count_unreviewed(flt)
    done = walk["judged"] + walk["skipped"]
    total = max(walk["judged"] + remaining, done + 1)
    st.progress(
        min(done / total, 1.0),
        text=f"**{done + 1:,} of {total:,}{'+' if capped else ''}** unreviewed images "
        f"in this view · {walk['judged']:,} judged, {walk['skipped']:,} skipped",
    )


def the_image(call: LogDetail, where: Cursor, walk: dict[str, Any], name: str) -> None:
    image = next(image for image in call.images if image.position == where.position)
    picture, about = st.columns(2, gap="large")
    url = image_cards.image_standing(image, utcnow())
    with picture:
        image_cards.show_picture(image, url)
        badges.badge(url)
    with about:
        st.subheader(f"{plain(call.provider)} · {plain(call.model or 'unknown model')}")
        st.caption(
            f"{call.created_at:%Y-%m-%d %H:%M:%S} UTC · image {image.position + 1} of "
            f"{len(call.images)} · call {plain(call.id)}"
        )
        st.text("Prompt")
        st.code(call.prompt, language=None, wrap_lines=True)
        revised = image.revised_prompt or call.revised_prompt
        if revised:
            st.text("Revised prompt")
            st.code(revised, language=None, wrap_lines=True)
        st.page_link(
            "views/detail.py",
            label="Open the call",
            icon=":material/open_in_new:",
            query_params={"log": call.id},
        )
    with st.container(border=True):
        buttons = verdicts.controls(
            call.id,
            image.position,
            name,
            key=f"review-{where.encode()}",
            on_given=lambda: judged(walk, where),
        )
        buttons.button(
            "Skip",
            icon=":material/skip_next:",
            key=f"review-skip-{where.encode()}",
            on_click=skip,
            args=(walk, where),
        )


def the_end(walk: dict[str, Any], flt: LogFilter) -> None:
    """The walk is past the view's last image: say so, and offer a new walk for what is left."""
    done = f"{walk['judged']:,} judged and {walk['skipped']:,} skipped in this walk"
    left, capped = data.count_unreviewed(flt)
    if not left:
        st.success(f"Every image of this view has a verdict ({done}).", icon=":material/task_alt:")
        return
    images = (
        "1 image of this view is"
        if left == 1
        else f"{left:,}{'+' if capped else ''} images of this view are"
    )
    st.info(
        f"The walk is at its end ({done}), but {images} still unreviewed: skipped, or "
        "recorded since the walk began.",
        icon=":material/pending:",
    )
    st.button("Walk again from the newest", icon=":material/replay:", on_click=restart)


def recent() -> None:
    with st.expander("Recent verdicts in this log", icon=":material/history:"):
        verdicts.trail_table(
            data.recent_changes(), empty="No verdict has been given yet.", with_image=True
        )


flt = filters.current()
st.title("Review")
st.caption(
    "The unreviewed images of the sidebar's filters, newest first. Each verdict is signed, "
    "timed and kept in the image's trail."
)
name = reviewer.current()
if name is None:
    reviewer.ask()
    st.stop()
reviewer.signed_as(name)
walk = walk_of(flt)
where = data.next_unreviewed(flt, walk["after"])
if where is None:
    the_end(walk, flt)
    recent()
    st.stop()
call = data.log(where.id)
if call is None:  # gone since the walk found it: step past it
    skip(walk, where)
    st.rerun()
progress(walk, flt)
the_image(call, where, walk, name)
recent()

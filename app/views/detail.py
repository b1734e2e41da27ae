"""Detail: everything recorded about one call (`?log=<id>`), for an auditor to read or cite.

Each image carries its verdict, its review trail (who, when, from what to what) and the
verdict buttons; a reviewer who has not said their name yet is asked for it first.

Prompts, error bodies and URLs are user or provider text: they are shown with st.code / st.text,
never as Markdown or HTML, so a prompt full of `**`, `<script>` or links reads as written.
"""

import streamlit as st
from components import (
    data,
    evidence,
    filters,
    image_cards,
    paging,
    reviewer,
    stored_fields,
    verdicts,
)
from components.text import plain

from store.queries import Cursor, ImageDetail, LogDetail
from store.review import Change
from store.schema.models import utcnow

LOG = "log"


def back_link() -> None:
    st.page_link(
        "views/logs.py",
        label="Back to logs",
        icon=":material/arrow_back:",
        query_params=paging.carried(),
    )


def open_call(generation_id: str) -> None:
    st.query_params[LOG] = generation_id


def steps(call: LogDetail) -> None:
    """Back to the list, and the newer / older call of the list the sidebar filters."""
    newer, older = data.neighbours(filters.current(), Cursor(call.created_at, call.id))
    with st.container(horizontal=True, vertical_alignment="center"):
        back_link()
        st.space("stretch")
        st.button(
            "Newer",
            icon=":material/chevron_left:",
            disabled=newer is None,
            on_click=open_call,
            args=(newer,),
            help="The newer call of the filtered list",
        )
        st.button(
            "Older",
            icon=":material/chevron_right:",
            icon_position="right",
            disabled=older is None,
            on_click=open_call,
            args=(older,),
            help="The older call of the filtered list",
        )


def images(call: LogDetail, name: str | None) -> None:
    """Every image of the call: one beside its facts, several as a grid of cards."""
    now = utcnow()
    trails = data.trail(call.id)
    per_row = 1 if len(call.images) == 1 else 2
    for start in range(0, len(call.images), per_row):
        for column, image in zip(
            st.columns(per_row, gap="medium"), call.images[start : start + per_row], strict=False
        ):
            with column, st.container(border=True):
                image_cards.detail_panel(image, now, side_by_side=per_row == 1)
                evidence.credentials(image)
                evidence.similar(image)
                changes = [change for change in trails if change.position == image.position]
                review(call, image, changes, name)


def ask_for_id() -> None:
    st.title("Detail")
    st.info("Select a row on the Logs page, or paste a call id here.", icon=":material/search:")
    typed = st.text_input("Call id", placeholder="32 hex characters")
    if typed.strip():
        st.query_params[LOG] = typed.strip()
        st.rerun()
    back_link()


def overview(call: LogDetail) -> None:
    """Who was called, what it cost and how long it took, in one row of figures."""
    st.title(f"{plain(call.provider)} · {plain(call.model or 'unknown model')}")
    st.caption(
        f"{call.created_at:%Y-%m-%d %H:%M:%S} UTC · {plain(call.operation)} · id {plain(call.id)}"
        f" · recorded via {plain(call.source)}"
    )
    status, latency, cost, images = st.columns(4)
    status.metric(
        "Status", f"{call.status} · HTTP {call.http_status}" if call.http_status else call.status
    )
    latency.metric(
        "Latency", f"{call.latency_ms / 1000:,.1f} s" if call.latency_ms is not None else "—"
    )
    cost.metric("Cost", f"${call.cost_usd:,.4f}" if call.cost_usd is not None else "unknown")
    images.metric("Images", f"{call.image_count} of n={call.n}")
    priced = f"Priced by: {call.cost_source}"
    st.text(priced + (f" — {call.cost_note}" if call.cost_note else ""))


def texts(call: LogDetail) -> None:
    st.subheader("Prompt")
    st.code(call.prompt, language=None, wrap_lines=True)
    if call.revised_prompt:
        st.subheader("Revised prompt")
        st.code(call.revised_prompt, language=None, wrap_lines=True)
    if call.error:
        st.subheader("Error")
        st.code(call.error, language=None, wrap_lines=True)


def facts(call: LogDetail) -> None:
    ids, params = st.columns(2, gap="large")
    with ids:
        st.subheader("Identity")
        for name, value in (
            ("Request id", call.request_id),
            ("Trace id", call.trace_id),
            ("User", call.user_id),
            ("Size", call.size),
            ("Quality", call.quality),
        ):
            st.text(f"{name}: {value or '—'}")
        st.caption("Metadata")
        st.json(call.metadata_json or {}, expanded=True)
    with params:
        st.subheader("Parameters")
        st.json(call.params_json or {}, expanded=True)
        if call.usage_json:
            st.caption("Usage reported by the provider")
            st.json(call.usage_json, expanded=True)


def review(call: LogDetail, image: ImageDetail, changes: list[Change], name: str | None) -> None:
    """The image's trail (who, when, from what to what) and, for a known reviewer, the
    verdict buttons."""
    st.caption(f"Review of image {image.position + 1}")
    verdicts.trail_table(changes)
    if name is not None:
        verdicts.controls(call.id, image.position, name, key=f"detail-{call.id}-{image.position}")


def exchange(call: LogDetail) -> None:
    st.subheader("Request and response")
    st.caption("As recorded; credentials were removed before anything was stored.")
    request, response = st.tabs(["Request", "Response"])
    with request:
        st.json(call.request_json or {}, expanded=2)
    with response:
        st.json(call.response_json or {}, expanded=2)


log_id = st.query_params.get(LOG, "").strip()
if not log_id:
    ask_for_id()
    st.stop()

call = data.log(log_id)
if call is None:
    st.title("Detail")
    st.error(f"No call with id {plain(repr(log_id))} in this log.")
    back_link()
    st.stop()

steps(call)
overview(call)
texts(call)
st.subheader(f"Images ({len(call.images)})")
if not call.images:
    st.caption("This call returned no image.")
name = reviewer.current()
if call.images and name is None:
    with st.popover("Give verdicts", icon=":material/how_to_reg:"):
        reviewer.ask()
images(call, name)
facts(call)
exchange(call)
stored_fields.section(call)

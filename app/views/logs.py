"""Logs: the calls matching the sidebar filters, newest first, a keyset page at a time.

Selecting a row opens its Detail page; the page position travels along so "Back to logs"
returns to it. Export and "Check URLs now" act on the whole filtered view, not the page.
"""

import streamlit as st
from components import data, export, filters, log_table, paging, url_check

from store.schema.models import utcnow

PAGE_SIZE = 50

flt = filters.current()
now = utcnow()
after, before = paging.position(flt, "logs")
page = data.logs(flt, limit=PAGE_SIZE, after=after, before=before)
matches, capped = data.count(flt)

st.title("Logs")
st.caption(
    f"{matches:,}{'+' if capped else ''} calls match"
    + ("" if flt.is_empty else " the filters")
    + (". Select a row to open it." if matches else ".")
)
# One row of buttons at their own width, which wraps on a narrow screen instead of cutting
# a label; nothing to export or check when nothing matches.
url_check.last_result()
if matches:
    with st.container(horizontal=True, gap="small"):
        export.buttons(flt, now)
        url_check.button(flt)

if page.rows.empty:
    st.info("No calls match these filters.", icon=":material/filter_alt_off:")
    if after is not None or before is not None:
        st.button("Back to the newest calls", on_click=paging.move)
    st.stop()

event = st.dataframe(
    log_table.table(page.rows, now, flt.search),
    column_config=log_table.COLUMN_CONFIG,
    hide_index=True,
    row_height=log_table.ROW_HEIGHT,
    placeholder="—",
    height=log_table.height(len(page.rows)),
    on_select="rerun",
    selection_mode="single-row",
    key="logs_table",
)
if event.selection.rows:
    chosen = page.rows.iloc[event.selection.rows[0]]["id"]
    st.switch_page("views/detail.py", query_params={"log": chosen, **paging.carried()})

newer, where, older = st.columns([1, 4, 1], vertical_alignment="center")
newer.button(
    "Newer",
    icon=":material/chevron_left:",
    disabled=page.prev_cursor is None,
    on_click=paging.move,
    kwargs={"before": page.prev_cursor},
    width="stretch",
)
newest, oldest = page.rows["created_at"].iloc[0], page.rows["created_at"].iloc[-1]
where.caption(
    f"{len(page.rows)} calls from {oldest:%Y-%m-%d %H:%M} to {newest:%Y-%m-%d %H:%M} UTC",
    text_alignment="center",
)
older.button(
    "Older",
    icon=":material/chevron_right:",
    icon_position="right",
    disabled=page.next_cursor is None,
    on_click=paging.move,
    kwargs={"after": page.next_cursor},
    width="stretch",
)

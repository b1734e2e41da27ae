"""Gallery: the images of the filtered calls as a grid of cached thumbnails, a page at a time.

A page is COLUMNS x ROWS cards (thumbnails are ~10 KB each), so thousands of images never
become one giant render. "Newer" walks back through the pages seen in this session; a pasted
link opens on its own page, from which "Newest" goes back to the start.
"""

import streamlit as st
from components import data, filters, image_cards, paging

from store.schema.models import utcnow

COLUMNS, ROWS = 6, 4
PAGE_SIZE = COLUMNS * ROWS
HISTORY = "_gallery_history"

flt = filters.current()
after, _ = paging.position(flt, "gallery")
page = data.gallery(flt, limit=PAGE_SIZE, after=after)
history: list = st.session_state.setdefault(HISTORY, [])
if after is None:
    history.clear()


def older() -> None:
    history.append(after)
    paging.move(after=page.next_cursor)


def newer() -> None:
    paging.move(after=history.pop() if history else None)


st.title("Gallery")
st.caption(
    "Cached thumbnails of the filtered calls, newest first. A red chip means the provider's "
    "hosted URL is gone and the thumbnail is the only copy left."
)
if page.rows.empty:
    st.info("No images match these filters.", icon=":material/filter_alt_off:")
    st.stop()

now = utcnow()
for start in range(0, len(page.rows), COLUMNS):
    for column, (_index, row) in zip(
        st.columns(COLUMNS), page.rows.iloc[start : start + COLUMNS].iterrows(), strict=False
    ):
        with column:
            image_cards.gallery_card(row, now)

back, where, forward = st.columns([1, 4, 1], vertical_alignment="center")
back.button(
    "Newer" if history else "Newest",
    icon=":material/chevron_left:",
    disabled=after is None,
    on_click=newer,
    width="stretch",
)
matches, capped = data.count(flt)
where.caption(
    f"{len(page.rows)} images on this page · {matches:,}{'+' if capped else ''} calls match",
    text_alignment="center",
)
forward.button(
    "Older",
    icon=":material/chevron_right:",
    icon_position="right",
    disabled=page.next_cursor is None,
    on_click=older,
    width="stretch",
)

"""Gallery: the images of the filtered calls as a grid of cached thumbnails, a page at a time.

A page is COLUMNS x ROWS cards (thumbnails are ~10 KB each), so thousands of images never
become one giant render. "Newer" walks back through the pages seen in this session; a pasted
link opens on its own page, from which "Newest" goes back to the start.
"""

import streamlit as st
from components import data, filters, image_cards, paging

from store.queries import page_groups
from store.schema.lookalike import DEFAULT_MAX_DISTANCE
from store.schema.models import utcnow

COLUMNS, ROWS = 6, 4
PAGE_SIZE = COLUMNS * ROWS
HISTORY = "_gallery_history"
#: The query parameter of the "Group look-alikes" toggle.
GROUP = "group"

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
grouped = st.toggle(
    "Group look-alikes",
    key=GROUP,
    bind="query-params",
    help=f"Show one card for the images of this page whose perceptual hashes are within "
    f"{DEFAULT_MAX_DISTANCE} bits of each other; Detail lists look-alikes across the whole log.",
)
if page.rows.empty:
    st.info("No images match these filters.", icon=":material/filter_alt_off:")
    st.stop()

now = utcnow()
# Each card: (its row's place on the page, how many look-alikes of the page it stands for).
cards = [(index, 0) for index in range(len(page.rows))]
if grouped:
    groups = page_groups(
        page.rows["phash"].where(page.rows["phash"].notna(), None), DEFAULT_MAX_DISTANCE
    )
    cards = [(group[0], len(group) - 1) for group in groups]
for start in range(0, len(cards), COLUMNS):
    for column, (index, lookalikes) in zip(
        st.columns(COLUMNS), cards[start : start + COLUMNS], strict=False
    ):
        with column:
            image_cards.gallery_card(page.rows.iloc[index], now, lookalikes)

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

"""How one image is shown: a small card in the Gallery, a full panel on the Detail page.

The rule both follow: the hosted URL is shown only while it is live; otherwise the cached
thumbnail stands in, with a mark that says the provider's copy is gone and since when.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

import pandas as pd
import streamlit as st
from components import badges, data
from components.text import plain

from store.expiry import UrlStanding, url_standing
from store.media.credentials import is_flagged
from store.queries import ImageDetail
from store.queries.originals import ArchiveError
from store.schema.models import UrlState

DETAIL_PAGE = "views/detail.py"


def data_uri(thumbnail: bytes) -> str:
    """The stored WebP thumbnail as a `data:` URI: the browser gets the exact stored bytes
    (st.image would re-encode bytes as JPEG) and no hosted URL, which may be dead."""
    return "data:image/webp;base64," + base64.b64encode(thumbnail).decode("ascii")


#: Formats st.image serves as they are (anything else it re-encodes, at its choice).
SHOWN_AS: dict[str, Literal["PNG", "JPEG", "GIF"]] = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF"}

#: Every Gallery card is this tall (px), whatever its image's shape: a grid of equal cards.
CARD_HEIGHT = 560
#: How much of the prompt a card shows.
CARD_PROMPT_CHARS = 90


def gallery_card(row: pd.Series, now: datetime, lookalikes: int = 0) -> None:
    """A bordered card of fixed height: thumbnail, URL-state and verdict chips (and a
    credentials chip when they are missing or fail), expiry, the prompt's start, model, time,
    and a link to Detail. `lookalikes`: how many look-alikes of the page it stands for."""
    with st.container(border=True, height=CARD_HEIGHT):
        if isinstance(row["thumbnail"], bytes) and row["thumbnail"]:
            st.image(data_uri(row["thumbnail"]), width="stretch")
        else:
            st.caption(":material/hide_image: no cached thumbnail")
        url = badges.standing(
            row["url_state"],
            row["expires_at"],
            row["last_checked_at"],
            row["last_http_status"],
            row["last_error_code"],
            now,
        )
        badges.badge(url, narrow=True)
        badges.verdict_badge(row["verdict"])
        if is_flagged(row["c2pa_state"]):
            badges.credentials_badge(row["c2pa_state"])
        line = badges.narrow_line(url)
        if lookalikes:  # on the caption's line: a card's height is fixed
            line += f" · :violet[+{lookalikes} look-alike{'s' * (lookalikes > 1)}]"
        st.caption(line)
        prompt = str(row["prompt"] or "")
        cut = prompt[:CARD_PROMPT_CHARS] + ("…" if len(prompt) > CARD_PROMPT_CHARS else "")
        st.text(cut)
        st.caption(
            f"{plain(row['provider'])} · {plain(row['model'])}  \n"
            f"{row['created_at']:%Y-%m-%d %H:%M} UTC"
        )
        st.page_link(
            DETAIL_PAGE,
            label="Open",
            icon=":material/open_in_new:",
            query_params={"log": row["generation_id"]},
        )


def detail_panel(image: ImageDetail, now: datetime, *, side_by_side: bool = True) -> None:
    """One image of a call: the picture from the log, its facts, its archived original.

    `side_by_side` puts the facts beside the picture (a call's only image); otherwise they go
    under it, so several images sit in a grid of cards. The sha256 and the hosted URL are one
    line each with a copy button (a signed URL is a paragraph of noise when wrapped); the
    rarer facts fold away.
    """
    url = image_standing(image, now)
    if side_by_side:
        picture, facts = st.columns([2, 3], gap="large")
    else:
        picture = facts = st.container()
    with picture:
        show_picture(image, url)
        archived_original(image)
    with facts:
        chips = st.container(horizontal=True, gap="small")
        badges.badge(url, container=chips)
        badges.verdict_badge(image.verdict, container=chips)
        st.caption(url.detail)
        size = f"{image.width} x {image.height} px" if image.width else "size unknown"
        shape = f"{image.byte_size:,} bytes" if image.byte_size else "bytes unknown"
        st.markdown(
            f"**Image {image.position + 1}** · {size} · {plain(image.format or '?')} · {shape}"
        )
        st.caption("SHA-256")
        st.code(image.sha256 or "not computed", language=None)
        if image.url:
            st.caption(f"Hosted URL ({plain(image.url_host or 'no host')})")
            st.code(image.url, language=None)
        with st.expander("Expiry and last check"):
            # Lines of text, not a table: a grid per image is the heaviest thing a page draws.
            for name, value in (
                ("Expiry from", image.expires_source or "—"),
                ("Expires", _time(image.expires_at) if image.expires_at else "—"),
                ("Last checked", _time(image.last_checked_at)),
                ("Last HTTP status", str(image.last_http_status or "—")),
                ("Host error code", image.last_error_code or "—"),
            ):
                st.text(f"{name}: {value}")
        if image.thumbnail_error:
            st.text(f"Thumbnail not made: {image.thumbnail_error}")
        if image.archive_path:
            st.caption("Archived original")
            st.code(image.archive_path, language=None, wrap_lines=True)
        elif image.archive_error:
            st.text(f"Original not archived: {image.archive_error}")


def image_standing(image: ImageDetail, now: datetime) -> UrlStanding:
    """What the page says of one image's URL (store.expiry.url_standing)."""
    return url_standing(
        image.url_state,
        image.expires_at,
        image.last_checked_at,
        now,
        last_http_status=image.last_http_status,
        last_error_code=image.last_error_code,
    )


def show_picture(image: ImageDetail, url: UrlStanding) -> None:
    """The cached thumbnail, at its own size: a page never makes a viewer's browser fetch a URL
    taken from the log (an imported "live" URL could be anyone's tracking pixel). The hosted
    original is loaded only when the viewer asks for it, and never once it is expired."""
    if image.thumbnail:
        st.image(data_uri(image.thumbnail), width="content")
    else:
        st.info("No cached thumbnail: the image was not fetched while its URL was live.")
    if url.state == UrlState.expired.value:
        st.warning(badges.expired_mark(url), icon=":material/hourglass_disabled:")
    elif url.state == UrlState.none.value:
        st.caption("Returned as base64 (no hosted URL) — cached copy")
    elif image.url and st.toggle(
        "Load the hosted original",
        key=f"hosted-{image.id}",
        help="Your browser fetches it from the provider's host.",
    ):
        st.image(image.url, caption="Hosted original", width="stretch")
    else:
        st.caption("Cached copy")


def archived_original(image: ImageDetail) -> None:
    """The full-size original from the archive, on request: read by this app through the
    store's client and checked against the image's sha256, then served from the app like any
    other picture. The browser never gets the store's address."""
    if not image.archive_path or not st.toggle(
        "Show original",
        key=f"archive-{image.id}",
        help="The full-size original from the archive, read by this app (not by your "
        "browser) and checked against its sha256.",
    ):
        return
    try:
        original = data.original(image.archive_path, image.sha256)
    except ArchiveError as exc:
        st.warning(f"Cannot show the archived original: {exc}", icon=":material/inventory_2:")
        return
    st.image(
        original,
        caption=f"Archived original · {len(original):,} bytes · sha256 checked",
        width="stretch",
        # The original's own format, so Streamlit passes the bytes on (it re-encodes others).
        output_format=SHOWN_AS.get(image.format or "", "auto"),
    )
    st.download_button(
        "Download original",
        data=original,
        file_name=image.archive_path.rsplit("/", 1)[-1],
        icon=":material/download:",
        on_click="ignore",
        key=f"archive-download-{image.id}",
    )


def _time(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "never"

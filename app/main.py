"""The dashboard: `streamlit run app/main.py`.

This entry script only declares the pages and runs the chosen one. An empty log gets the
welcome page alone; otherwise the sidebar filters are drawn here, before the page, because
Streamlit keeps the entry script's URL-bound widgets across page switches (a page's own are
dropped), so the filters follow the user from page to page. The pages live in app/views/,
not app/pages/: a `pages/` folder beside the entry script switches Streamlit to its older
multipage mode for a link that opens on a sub-page, which bypasses this script.

A database that cannot be reached (server down, unwritable file) is an everyday failure, not a
bug: every page says so in one line, names the database, and offers to try again, instead of
Streamlit's redacted "This app has encountered an error".
"""

from pathlib import Path

import streamlit as st
from components import data, filters

from store.capture.redaction import describe_exception
from store.schema.db import UNAVAILABLE_ERRORS

#: The tab's icon ships with the app: a Material icon name would make every browser fetch it
#: from Google's font host, and no page of an audit log fetches anything from outside.
FAVICON = Path(__file__).parent / "static" / "favicon.png"

st.set_page_config(page_title="imagelog", page_icon=str(FAVICON), layout="wide")


def unreachable(exc: BaseException) -> None:
    st.error(
        f"Cannot reach the log database `{data.display_url()}`: {describe_exception(exc)}",
        icon=":material/error:",
    )
    st.caption("Check that the database is up and `IMAGELOG_DATABASE_URL` points at it.")
    if st.button("Try again", icon=":material/refresh:"):
        data.refresh()
        st.rerun()


try:
    data.expire_lapsed_urls()
    if data.has_logs():
        page = st.navigation(
            [
                st.Page("views/logs.py", title="Logs", icon=":material/table_rows:", default=True),
                st.Page("views/gallery.py", title="Gallery", icon=":material/grid_view:"),
                st.Page("views/analytics.py", title="Analytics", icon=":material/monitoring:"),
                st.Page("views/review.py", title="Review", icon=":material/fact_check:"),
                st.Page("views/detail.py", title="Detail", icon=":material/article:"),
            ]
        )
        filters.sidebar()
    else:
        page = st.navigation(
            [st.Page("views/welcome.py", title="Welcome", icon=":material/waving_hand:")]
        )
    page.run()
except UNAVAILABLE_ERRORS as exc:
    unreachable(exc)

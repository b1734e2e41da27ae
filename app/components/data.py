"""Every read the pages make, cached: one engine per database, query results for a few seconds.

The engine is a `st.cache_resource` keyed by the database URL (sessions share its pool; a test
that points IMAGELOG_DATABASE_URL elsewhere gets its own). Query results are `st.cache_data`
with a short TTL, so a rerun after a widget change costs nothing while a new record still
shows up within `CACHE_TTL_SECONDS` without restarting the app; the Refresh button clears
them at once. Each public function resolves the URL and hands it to a cached twin, because
the URL (not the unhashable engine) is what tells two databases' results apart.
"""

from __future__ import annotations

import logging
import os

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from store import queries, review
from store.expiry import expire_lapsed
from store.queries import Cursor, Facets, GalleryPage, LogDetail, LogFilter, LogPage, Overview
from store.queries.analytics import Bucket
from store.queries.originals import ARCHIVE_ENV, archived_original
from store.queries.reviewed import flagged_share_by_model
from store.schema import db
from store.schema.config import database_url
from store.schema.db import UNAVAILABLE_ERRORS, make_engine

LOGGER = logging.getLogger(__name__)

#: How stale a page may be: short enough that a new call appears on the next interaction.
CACHE_TTL_SECONDS = 15

#: Above this many matches the Logs page says "10,000+": an exact count would read the index.
COUNT_CAP = 10_000

#: How often (at most) the dashboard sweeps URLs past their expiry to expired (predicted).
SWEEP_SECONDS = 2


@st.cache_resource(show_spinner=False)
def engine_for(url: str) -> Engine:
    """One pooled engine per database for the whole server; the schema is upgraded once."""
    return make_engine(url)


def engine() -> Engine:
    return engine_for(database_url())


def display_url() -> str:
    """The database URL without its password, for the welcome page and captions."""
    return db.display_url()


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _has_logs(url: str) -> bool:
    return queries.has_any_logs(engine_for(url))


def has_logs() -> bool:
    return _has_logs(database_url())


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _facets(url: str) -> Facets:
    return queries.facets(engine_for(url))


def facets() -> Facets:
    return _facets(database_url())


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _logs(
    url: str, flt: LogFilter, limit: int, after: Cursor | None, before: Cursor | None
) -> LogPage:
    return queries.list_logs(engine_for(url), flt, limit=limit, after=after, before=before)


def logs(
    flt: LogFilter, *, limit: int, after: Cursor | None = None, before: Cursor | None = None
) -> LogPage:
    return _logs(database_url(), flt, limit, after, before)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _count(url: str, flt: LogFilter, cap: int) -> tuple[int, bool]:
    return queries.count_logs(engine_for(url), flt, cap)


def count(flt: LogFilter) -> tuple[int, bool]:
    """(matches, capped): at most COUNT_CAP are counted."""
    return _count(database_url(), flt, COUNT_CAP)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _log(url: str, generation_id: str) -> LogDetail | None:
    return queries.get_log(engine_for(url), generation_id)


def log(generation_id: str) -> LogDetail | None:
    return _log(database_url(), generation_id)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _neighbours(url: str, flt: LogFilter, cursor: Cursor) -> tuple[str | None, str | None]:
    return queries.neighbours(engine_for(url), flt, cursor)


def neighbours(flt: LogFilter, cursor: Cursor) -> tuple[str | None, str | None]:
    """(newer, older) call ids around `cursor` in the filtered Logs order."""
    return _neighbours(database_url(), flt, cursor)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _gallery(url: str, flt: LogFilter, limit: int, after: Cursor | None) -> GalleryPage:
    return queries.list_gallery(engine_for(url), flt, limit=limit, after=after)


def gallery(flt: LogFilter, *, limit: int, after: Cursor | None = None) -> GalleryPage:
    return _gallery(database_url(), flt, limit, after)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _overview(url: str, flt: LogFilter, bucket: Bucket) -> Overview:
    return queries.overview(engine_for(url), flt, bucket=bucket)


def overview(flt: LogFilter, bucket: Bucket) -> Overview:
    """Every Analytics figure of the view (totals, per provider / model, activity per
    `bucket`), read together: one pass over the index, where one query per chart read it
    four times."""
    return _overview(database_url(), flt, bucket)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _flagged_share(url: str, flt: LogFilter) -> pd.DataFrame:
    return flagged_share_by_model(engine_for(url), flt)


def flagged_share(flt: LogFilter) -> pd.DataFrame:
    """Per model of the view: images reviewed, each verdict's count, the flagged share."""
    return _flagged_share(database_url(), flt)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _next_unreviewed(url: str, flt: LogFilter, after: Cursor | None) -> Cursor | None:
    return review.next_unreviewed(engine_for(url), flt, after)


def next_unreviewed(flt: LogFilter, after: Cursor | None) -> Cursor | None:
    """Where the Review page's walk goes after `after`: the next unreviewed image."""
    return _next_unreviewed(database_url(), flt, after)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _count_unreviewed(url: str, flt: LogFilter, cap: int) -> tuple[int, bool]:
    return review.count_unreviewed(engine_for(url), flt, cap)


def count_unreviewed(flt: LogFilter) -> tuple[int, bool]:
    """(unreviewed images of the view, capped): at most COUNT_CAP are counted."""
    return _count_unreviewed(database_url(), flt, COUNT_CAP)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _trail(url: str, generation_id: str) -> list[review.Change]:
    return review.trail(engine_for(url), generation_id)


def trail(generation_id: str) -> list[review.Change]:
    """Every verdict given to the call's images, oldest first per image."""
    return _trail(database_url(), generation_id)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _recent_changes(url: str, limit: int) -> list[review.Change]:
    return review.recent_changes(engine_for(url), limit)


def recent_changes(limit: int = 20) -> list[review.Change]:
    """The latest verdicts given in this log, by anyone, newest first."""
    return _recent_changes(database_url(), limit)


#: Originals are large (megabytes each): only the last few asked for are kept in memory.
ORIGINALS_KEPT = 4


@st.cache_data(max_entries=ORIGINALS_KEPT, show_spinner="Reading the archived original…")
def _original(archive: str | None, archive_path: str, sha256: str | None) -> bytes:
    return archived_original(archive_path, sha256)


def original(archive_path: str, sha256: str | None) -> bytes:
    """The archived original's bytes, read by this app from its archive and checked against
    the sha256 (content-addressed, so a cached copy never goes stale); raises
    `store.queries.originals.ArchiveError` with the reason it cannot be shown."""
    return _original(os.environ.get(ARCHIVE_ENV), archive_path, sha256)


@st.cache_data(ttl=SWEEP_SECONDS, show_spinner=False)
def _expire_lapsed(url: str) -> int:
    return expire_lapsed(engine_for(url)).count


def expire_lapsed_urls() -> None:
    """Mark the URLs whose predicted expiry has passed expired (predicted), before the page
    reads, so no page, filter or count calls them live (store.expiry.lapse). It runs at most
    every SWEEP_SECONDS per database (a sweep that finds nothing is two index seeks); when it
    changed a row, every cached read is dropped, so the page reads the new states.

    A database that refuses the write (a read-only role) still gets its pages: the chips apply
    the same rule as they draw (store.expiry.url_standing), and the refusal is logged."""
    try:
        changed = _expire_lapsed(database_url())
    except UNAVAILABLE_ERRORS:
        raise  # the page says the database cannot be reached
    except SQLAlchemyError as exc:
        LOGGER.warning("cannot mark lapsed URLs expired (predicted): %s", exc)
        return
    if changed:
        refresh()  # also forgets this sweep's count: the next run sweeps afresh


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _similar(
    url: str, phash: str, exclude: tuple[str, int], max_distance: int, limit: int
) -> list[queries.LookAlike]:
    return queries.similar_images(
        engine_for(url), phash, max_distance=max_distance, limit=limit, exclude=exclude
    )


def similar(
    phash: str, exclude: tuple[str, int], max_distance: int, limit: int
) -> list[queries.LookAlike]:
    """The `limit` nearest look-alikes of an image across the whole log."""
    return _similar(database_url(), phash, exclude, max_distance, limit)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _credential_counts(url: str, flt: LogFilter) -> dict[str, int]:
    return queries.credential_counts(engine_for(url), flt)


def credential_counts(flt: LogFilter) -> dict[str, int]:
    """Images of the view per content-credentials state."""
    return _credential_counts(database_url(), flt)


def refresh() -> None:
    """Forget every cached result, so the next run reads the database.

    Every `st.cache_data` function of the app is a read of the log, so Streamlit's own
    clear-all is exactly "every read"; the engine is a `st.cache_resource` and stays (its pool
    serves every session).
    """
    st.cache_data.clear()

"""Every read of the log the dashboard, `export` and `stats` make: filters in, small results out.

No SQL leaves this package: pages call these functions and get dataclasses or small pandas
DataFrames (aware UTC times). Each query is served from an index at a million calls; see
benchmarks/dashboard_queries.py for the figures and tests/test_queries_perf_shape.py for the
query plans. Names are imported on first use: a `LogFilter` alone does not load pandas.
"""

from typing import TYPE_CHECKING

from store.lazy_exports import lazy_exports

# Not lazy: importing the `facets` submodule would set `store.queries.facets` to the module.
from store.queries.facets import Facets, facets

if TYPE_CHECKING:
    from store.queries.analytics import Overview, Summary, overview, provider_summary
    from store.queries.credentials import credential_counts
    from store.queries.export import iter_records
    from store.queries.filters import LogFilter
    from store.queries.logs import (
        Cursor,
        GalleryPage,
        ImageDetail,
        LogDetail,
        LogPage,
        count_logs,
        get_log,
        has_any_logs,
        image_ids,
        list_gallery,
        list_logs,
        neighbours,
    )
    from store.queries.similar import LookAlike, Member, clusters, page_groups, similar_images

__all__ = [
    "Cursor",
    "Facets",
    "GalleryPage",
    "ImageDetail",
    "LogDetail",
    "LogFilter",
    "LogPage",
    "LookAlike",
    "Member",
    "Overview",
    "Summary",
    "clusters",
    "count_logs",
    "credential_counts",
    "facets",
    "get_log",
    "has_any_logs",
    "image_ids",
    "iter_records",
    "list_gallery",
    "list_logs",
    "neighbours",
    "overview",
    "page_groups",
    "provider_summary",
    "similar_images",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "store.queries.analytics": ["Overview", "Summary", "overview", "provider_summary"],
        "store.queries.credentials": ["credential_counts"],
        "store.queries.export": ["iter_records"],
        "store.queries.similar": [
            "LookAlike",
            "Member",
            "clusters",
            "page_groups",
            "similar_images",
        ],
        "store.queries.filters": ["LogFilter"],
        "store.queries.logs": [
            "Cursor",
            "GalleryPage",
            "ImageDetail",
            "LogDetail",
            "LogPage",
            "count_logs",
            "get_log",
            "has_any_logs",
            "image_ids",
            "list_gallery",
            "list_logs",
            "neighbours",
        ],
    },
)

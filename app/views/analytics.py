"""Analytics: totals and trends of the filtered calls, each figure an SQL aggregate (store.queries).

Read top to bottom: how much (totals), when (calls and cost over time), how fast (latency
p50/p95 per provider and model), who (the busiest models), and how the reviewers judged the
images (the flagged share of each model's reviewed images), and what their content
credentials say.
"""

from datetime import timedelta
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from components import badges, data, filters

from store.queries import LogFilter, Summary
from store.queries.analytics import BUCKETS, Bucket
from store.schema.models import utcnow

#: A view spanning more than this is charted per day, a shorter one per hour.
HOURLY_UP_TO = timedelta(days=3)
#: The "Per" control's key.
BUCKET = "analytics_bucket"


def totals(figures: Summary) -> None:
    calls, images, cost, errors, expired, unknown = st.columns(6)
    calls.metric("Calls", f"{figures.calls:,}", border=True)
    images.metric("Images", f"{figures.images:,}", border=True)
    cost.metric("Cost", f"${figures.cost_usd:,.2f}", border=True)
    errors.metric("Error rate", f"{figures.error_rate:.1%}", border=True)
    expired.metric(
        "Expired URLs",
        f"{figures.expired_share:.1%}",
        help="Share of hosted image URLs known to be dead (base64 images excluded).",
        border=True,
    )
    unknown.metric(
        "Unchecked URLs",
        f"{figures.unknown_share:.1%}",
        help="Share of hosted image URLs whose state is unknown: never checked, or the last "
        "check failed transiently.",
        border=True,
    )


def default_bucket(flt: LogFilter) -> Bucket:
    facets = data.facets()
    start = flt.since or facets.first_at
    end = flt.until or facets.last_at or utcnow()
    if start is None or end - start > HOURLY_UP_TO:
        return "day"
    return "hour"


def chosen_bucket(flt: LogFilter) -> Bucket:
    """The "Per" choice of the last run (read before the control is drawn, because the
    figures above it are read in the same query), else the view's default."""
    chosen = st.session_state.get(BUCKET)
    return chosen if chosen in BUCKETS else default_bucket(flt)


def over_time(flt: LogFilter, activity: pd.DataFrame, bucket: Bucket) -> None:
    heading, choice = st.columns([4, 1], vertical_alignment="bottom")
    heading.subheader("Over time (UTC)")
    choice.segmented_control("Per", BUCKETS, default=default_bucket(flt), key=BUCKET)
    if activity.empty:
        st.caption("No calls in this view.")
        return
    activity = activity.assign(ok=activity["calls"] - activity["errors"])
    calls = (
        alt.Chart(activity)
        .transform_fold(["ok", "errors"], as_=["status", "count"])
        .mark_bar()
        .encode(
            x=alt.X("bucket:T", title=None),
            y=alt.Y("count:Q", title="calls", stack=True),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=["ok", "errors"], range=["#2563eb", "#dc2626"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=[alt.Tooltip("bucket:T", title=bucket), "calls:Q", "errors:Q"],
        )
        .properties(title="Calls", height=240)
    )
    cost = (
        alt.Chart(activity)
        .mark_area(line=True, opacity=0.3, color="#16a34a")
        .encode(
            x=alt.X("bucket:T", title=None),
            y=alt.Y("cost_usd:Q", title="USD"),
            tooltip=[
                alt.Tooltip("bucket:T", title=bucket),
                alt.Tooltip("cost_usd:Q", format="$.2f"),
            ],
        )
        .properties(title="Cost", height=240)
    )
    left, right = st.columns(2)
    left.altair_chart(calls, width="stretch")
    right.altair_chart(cost, width="stretch")


def latency(providers: pd.DataFrame, models: pd.DataFrame) -> None:
    st.subheader("Latency and cost by provider")
    if providers.empty:
        st.caption("No calls in this view.")
        return
    percentiles = providers.melt(
        id_vars=["provider"],
        value_vars=["p50_latency_ms", "p95_latency_ms"],
        var_name="percentile",
        value_name="ms",
    ).replace({"p50_latency_ms": "p50", "p95_latency_ms": "p95"})
    chart = (
        alt.Chart(percentiles)
        .mark_bar()
        .encode(
            y=alt.Y("provider:N", title=None, sort="-x"),
            x=alt.X("ms:Q", title="latency (ms)"),
            yOffset="percentile:N",
            color=alt.Color(
                "percentile:N",
                scale=alt.Scale(range=["#93c5fd", "#1d4ed8"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["provider:N", "percentile:N", alt.Tooltip("ms:Q", format=",.0f")],
        )
        .properties(height=max(160, 44 * len(providers)))
    )
    left, right = st.columns([2, 3])
    left.altair_chart(chart, width="stretch")
    right.dataframe(providers, hide_index=True, column_config=_columns(), width="stretch")
    st.caption("By model")
    st.dataframe(
        models,
        hide_index=True,
        column_config=_columns(),
        width="stretch",
        height=300,
    )


def bars_by_model(
    frame: pd.DataFrame, x: alt.X, color: str, tooltip: list[Any], min_height: int
) -> alt.Chart:
    """One bar per (provider, model), labelled in full (never cut to "openai · gpt-imag...")."""
    labelled = frame.assign(label=frame["provider"] + " · " + frame["model"])
    return (
        alt.Chart(labelled)
        .mark_bar(color=color)
        .encode(
            y=alt.Y("label:N", title=None, sort="-x", axis=alt.Axis(labelLimit=0)),
            x=x,
            tooltip=["provider:N", "model:N", *tooltip],
        )
        .properties(height=max(min_height, 30 * len(frame)))
    )


def busiest(top: pd.DataFrame) -> None:
    st.subheader("Top models")
    if top.empty:
        st.caption("No calls in this view.")
        return
    tooltip = ["calls:Q", "images:Q", alt.Tooltip("cost_usd:Q", format="$.2f")]
    chart = bars_by_model(top, alt.X("calls:Q", title="calls"), "#2563eb", tooltip, 160)
    st.altair_chart(chart, width="stretch")


def reviews(shares: pd.DataFrame) -> None:
    st.subheader("Review")
    if shares.empty:
        st.caption("No image in this view has a verdict yet: see the Review page.")
        return
    reviewed, flagged = int(shares["reviewed"].sum()), int(shares["flagged"].sum())
    st.caption(
        f"{reviewed:,} reviewed images in this view, {flagged:,} flagged "
        f"({flagged / reviewed:.1%}). Flagged share of each model's reviewed images:"
    )
    share = alt.X("flagged_share:Q", title="flagged", axis=alt.Axis(format="%"))
    tooltip = ["reviewed:Q", "flagged:Q", alt.Tooltip("flagged_share:Q", format=".1%")]
    st.altair_chart(bars_by_model(shares, share, "#dc2626", tooltip, 120), width="stretch")
    st.dataframe(
        shares,
        hide_index=True,
        width="stretch",
        column_config={
            "provider": "Provider",
            "model": "Model",
            "reviewed": "Reviewed",
            "approved": "Approved",
            "flagged": "Flagged",
            "needs_another_look": "Needs another look",
            "flagged_share": st.column_config.NumberColumn("Flagged share", format="percent"),
        },
    )


def credentials(counts: dict[str, int]) -> None:
    """Images of the view per content-credentials state, the flagged ones (missing or
    failing) first, as the filter offers them."""
    st.subheader("Content credentials")
    total = sum(counts.values())
    if not total:
        st.caption("No image in this view.")
        return
    for column, state in zip(st.columns(len(badges.CREDENTIALS)), badges.CREDENTIALS, strict=True):
        count = counts.get(state, 0)
        column.metric(
            badges.credentials_label(state).capitalize(),
            f"{count:,}",
            f"{count / total:.1%} of images",
            delta_color="off",
            border=True,
        )


def _columns() -> dict[str, Any]:
    return {
        "provider": "Provider",
        "model": "Model",
        "calls": "Calls",
        "errors": "Errors",
        "images": "Images",
        "cost_usd": st.column_config.NumberColumn("Cost", format="$%.2f"),
        "p50_latency_ms": st.column_config.NumberColumn("Latency p50", format="%.0f ms"),
        "p95_latency_ms": st.column_config.NumberColumn("Latency p95", format="%.0f ms"),
    }


view = filters.current()
st.title("Analytics")
st.caption("Totals and trends of the calls matching the sidebar filters.")
bucket = chosen_bucket(view)
figures = data.overview(view, bucket)
totals(figures.summary)
over_time(view, figures.activity, bucket)
latency(figures.providers, figures.models)
busiest(figures.top_models(10))
reviews(data.flagged_share(view))
credentials(data.credential_counts(view))

"""Analytics: totals and trends of the filtered calls, each figure an SQL aggregate (store.queries).

Read top to bottom: how much (totals, with the calls no price covers), when (calls and cost
over time, a bucket still filling marked as such), what it cost and what failed (cost by
model, errors by type), how fast (latency p50/p95 per provider and model, read from a
histogram, which the page says), who (the busiest models), and how the reviewers judged the
images (the flagged share of each model's reviewed images), and what their content
credentials say. The hour/day choice is in the
link (`?per=hour`), like the filters.
"""

from datetime import timedelta
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from components import badges, data, filters

from store.queries import LogFilter, Summary
from store.queries.analytics import BUCKETS, PERCENTILE_NOTE, Bucket
from store.schema.models import utcnow

#: A view spanning more than this is charted per day, a shorter one per hour.
HOURLY_UP_TO = timedelta(days=3)
#: The "Per" control's key, which is also its parameter in the link.
BUCKET = "per"


def totals(figures: Summary) -> None:
    # Two rows of three: six in a row cut every figure to "4…" at 1024 px.
    calls, images, cost = st.columns(3)
    errors, expired, unknown = st.columns(3)
    calls.metric("Calls", f"{figures.calls:,}", border=True)
    images.metric("Images", f"{figures.images:,}", border=True)
    cost.metric(
        "Cost",
        f"${figures.cost_usd:,.2f}",
        delta=f"{figures.unpriced:,} unpriced calls",
        delta_color="off",
        delta_arrow="off",
        help="Sum of the priced calls; unpriced calls (no price known) are counted beside it.",
        border=True,
    )
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
    """The "Per" choice of the last run, else the link's (read before the control is drawn,
    because the figures above it are read in the same query), else the view's default."""
    for chosen in (st.session_state.get(BUCKET), st.query_params.get(BUCKET)):
        if chosen in BUCKETS:
            return chosen
    return default_bucket(flt)


def over_time(flt: LogFilter, activity: pd.DataFrame, bucket: Bucket) -> None:
    heading, choice = st.columns([3, 1], vertical_alignment="bottom")
    heading.subheader("Over time (UTC)")
    choice.segmented_control(
        "Per", BUCKETS, default=chosen_bucket(flt), key=BUCKET, bind="query-params"
    )
    if activity.empty:
        st.caption("No calls in this view.")
        return
    activity = activity.assign(
        ok=activity["calls"] - activity["errors"],
        shown=activity["partial"].map({True: f"this {bucket} so far", False: "whole"}),
    )
    # A bucket the view does not cover whole (the current day, say) is drawn faded and named
    # in its tooltip, so its low count reads as "so far", not as a drop.
    faded = alt.condition("datum.partial", alt.value(0.4), alt.value(1.0))
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
            opacity=faded,
            tooltip=[
                alt.Tooltip("bucket:T", title=bucket),
                alt.Tooltip("shown:N", title="covers"),
                "calls:Q",
                "errors:Q",
            ],
        )
        .properties(title="Calls", height=240)
    )
    cost = (
        alt.Chart(activity)
        .mark_bar(color="#16a34a")
        .encode(
            x=alt.X("bucket:T", title=None),
            y=alt.Y("cost_usd:Q", title="USD"),
            opacity=faded,
            tooltip=[
                alt.Tooltip("bucket:T", title=bucket),
                alt.Tooltip("shown:N", title="covers"),
                alt.Tooltip("cost_usd:Q", format="$.2f"),
                alt.Tooltip("unpriced:Q", title="unpriced calls"),
            ],
        )
        .properties(title="Cost (priced calls)", height=240)
    )
    left, right = st.columns(2)
    left.altair_chart(calls, width="stretch")
    right.altair_chart(cost, width="stretch")
    if bool(activity["partial"].iloc[-1]):
        last = activity["bucket"].iloc[-1]
        start = last.strftime("%Y-%m-%d" if bucket == "day" else "%Y-%m-%d %H:00")
        st.caption(f"The last {bucket} ({start} UTC) is partial: its figures are so far only.")


def cost_and_errors(models: pd.DataFrame, errors: pd.DataFrame, unpriced: int) -> None:
    """What the calls cost, per model, and why the failed ones failed."""
    left, right = st.columns(2)
    with left:
        st.subheader("Cost by model")
        priced = models[models["cost_usd"] > 0]
        if priced.empty:
            st.caption("No priced call in this view.")
        else:
            tooltip = [alt.Tooltip("cost_usd:Q", format="$.2f"), "unpriced:Q", "calls:Q"]
            x = alt.X("cost_usd:Q", title="USD")
            st.altair_chart(bars_by_model(priced, x, "#16a34a", tooltip, 120), width="stretch")
        if unpriced:
            st.caption(
                f"{unpriced:,} calls have no price (their model is not in the price table) "
                "and are not in these sums: see the Unpriced column below."
            )
    with right:
        st.subheader("Errors by type")
        if errors.empty:
            st.caption("No failed call in this view.")
            return
        chart = (
            alt.Chart(errors)
            .mark_bar()
            .encode(
                y=alt.Y("error_type:N", title=None, sort="-x", axis=alt.Axis(labelLimit=0)),
                x=alt.X("errors:Q", title="failed calls", stack=True),
                color=alt.Color(
                    "provider:N", legend=alt.Legend(orient="bottom", title=None, columns=4)
                ),
                tooltip=["error_type:N", "provider:N", "errors:Q"],
            )
            .properties(height=80 + 40 * errors["error_type"].nunique())
        )
        st.altair_chart(chart, width="stretch")


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
    st.caption(PERCENTILE_NOTE)
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
        "unpriced": st.column_config.NumberColumn(
            "Unpriced", help="Calls without a price: not in the cost."
        ),
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
cost_and_errors(figures.cost_by_model(), figures.errors, figures.summary.unpriced)
latency(figures.providers, figures.models)
busiest(figures.top_models(10))
reviews(data.flagged_share(view))
credentials(data.credential_counts(view))

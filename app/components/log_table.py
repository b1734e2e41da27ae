"""The Logs table: a page of `list_logs` rows turned into what `st.dataframe` shows.

Thumbnails travel as `data:` URIs of the stored WebP bytes (ImageColumn shows them without a
second request and without the hosted URL, which may be dead). The URL state is a one-item
list so a read-only MultiselectColumn draws it as a coloured chip, in the colours of
`badges.CHIPS` ("expired (predicted)" apart from a probe's "expired"); the verdicts of the
call's images are chips the same way (`badges.VERDICTS`).

Rows are ROW_HEIGHT tall, which is what makes the grid wrap text (Streamlit wraps cells in
rows taller than 4rem): the prompt and the error read over three lines instead of being cut
at the column's edge. The grid draws on a canvas, so a search match cannot be coloured; it
is set between MARK brackets instead, as plain text (no HTML from a prompt reaches the page).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st
from components import badges
from components.image_cards import data_uri

from store.queries.highlight import match_spans, search_terms
from store.schema.models import Status

#: Pixels per row: above Streamlit's 4rem, so text wraps (three lines of prompt).
ROW_HEIGHT = 72
#: The grid's header row.
HEADER_HEIGHT = 36

#: Characters of the prompt shown in a row (three wrapped lines); Detail has the whole prompt.
PROMPT_CHARS = 90
#: With a search, the shown stretch starts this many characters before the first match.
MATCH_LEAD_CHARS = 40
#: What a search match is set between (the grid cannot colour part of a cell).
MARK = ("«", "»")
#: Characters of an error message shown in a row (its start says what went wrong).
ERROR_CHARS = 100

#: The status chips' colours, in the order of the status filter.
STATUS_COLORS = {Status.ok.value: "#16a34a", Status.error.value: "#dc2626"}

#: Columns in the order an auditor reads a call: when, who, what was asked with which
#: parameters, did it work, is its hosted URL still there, what did a reviewer decide; then
#: why it failed, what it cost and took, and when the URL was checked. Everything up to the
#: verdict fits a 1440 px screen beside the sidebar (cost and latency are also on Analytics).
COLUMN_CONFIG = {
    "thumbnail": st.column_config.ImageColumn("", width=56),
    "created_at": st.column_config.DatetimeColumn(
        "Time (UTC)", format="YYYY-MM-DD HH:mm", width=112
    ),
    "call": st.column_config.TextColumn("Provider · model", width=118),
    "prompt": st.column_config.TextColumn("Prompt", width=192),
    "params": st.column_config.TextColumn("Size · quality · n", width=108),
    "status": st.column_config.MultiselectColumn(
        "Status", options=list(STATUS_COLORS), color=list(STATUS_COLORS.values()), width=56
    ),
    "url_state": st.column_config.MultiselectColumn(
        "URL",
        options=list(badges.CHIPS),
        color=[look.hex for look in badges.CHIPS.values()],
        format_func=badges.label,
        width=130,  # room for "expired (predicted)"
    ),
    "verdicts": st.column_config.MultiselectColumn(
        "Verdict",
        options=list(badges.VERDICTS),
        color=[look.hex for look in badges.VERDICTS.values()],
        format_func=badges.verdict_label,
        width=150,  # room for "needs another look"
    ),
    "error": st.column_config.TextColumn("Error (code: message)", width=176),
    "cost": st.column_config.TextColumn("Cost", width=72, help="$ per call; unpriced: no price"),
    "latency_s": st.column_config.NumberColumn("Latency", format="%.1f s", width=58),
    "url_when": st.column_config.TextColumn("URL checked / expiry", width=190),
}


def table(rows: pd.DataFrame, now: datetime, search: str | None = None) -> pd.DataFrame:
    """The display frame for a page of `list_logs` rows, in COLUMN_CONFIG's order; with the
    filter's `search`, each prompt shows its first match, marked."""
    terms = search_terms(search)
    urls = [
        badges.standing(*url, now)
        for url in zip(
            rows["url_state"],
            rows["expires_at"],
            rows["last_checked_at"],
            rows["last_http_status"],
            rows["last_error_code"],
            strict=True,
        )
    ]
    shown = pd.DataFrame(
        {
            "thumbnail": [data_uri(thumb) if thumb else None for thumb in rows["thumbnail"]],
            "created_at": rows["created_at"],
            "call": [
                f"{provider} · {model}" if isinstance(model, str) and model else provider
                for provider, model in zip(rows["provider"], rows["model"], strict=True)
            ],
            "prompt": [short_prompt(prompt, terms) for prompt in rows["prompt"]],
            "params": [
                parameters(size, quality, n)
                for size, quality, n in zip(rows["size"], rows["quality"], rows["n"], strict=True)
            ],
            "status": [[status] for status in rows["status"]],
            "url_state": [badges.chip(url) for url in urls],
            "verdicts": rows["verdicts"],
            "error": [
                error_text(http_status, error)
                for http_status, error in zip(rows["http_status"], rows["error"], strict=True)
            ],
            "cost": [
                cost_text(cost, status)
                for cost, status in zip(rows["cost_usd"], rows["status"], strict=True)
            ],
            "latency_s": rows["latency_ms"] / 1000,
            "url_when": [url.detail if url else "" for url in urls],
        }
    )
    return shown.reset_index(drop=True)


def height(rows: int) -> int:
    """The table's height for `rows` rows: every row shows, so the page scrolls, not a box."""
    return HEADER_HEIGHT + rows * ROW_HEIGHT + 2


def short_prompt(prompt: str | None, terms: list[str] | None = None) -> str:
    """The prompt on one line (whitespace folded), cut at PROMPT_CHARS with an ellipsis.

    With search `terms`, the stretch shown starts a little before the first match (so a match
    deep in a long prompt still shows) and every match in it is set between MARK brackets.
    """
    line = " ".join((prompt or "").split())
    spans = match_spans(line, terms or [])
    start = 0
    if spans and spans[0][1] > PROMPT_CHARS:
        start = line.rfind(" ", 0, max(spans[0][0] - MATCH_LEAD_CHARS, 0)) + 1
    end = min(len(line), start + PROMPT_CHARS)
    parts, cursor = [], start
    for left, right in spans:
        if left < start or right > end:
            continue
        parts += [line[cursor:left], MARK[0], line[left:right], MARK[1]]
        cursor = right
    parts.append(line[cursor:end])
    shown = "".join(parts).rstrip()
    return ("…" if start else "") + shown + ("…" if end < len(line) else "")


def parameters(size: object, quality: object, n: object) -> str:
    """'1024x1024 · hd · n=2': what was asked for, without the parts the call left out."""
    parts = [part for part in (size, quality) if isinstance(part, str) and part]
    if isinstance(n, int | float) and not pd.isna(n):
        parts.append(f"n={int(n)}")
    return " · ".join(parts)


def error_text(http_status: object, error: object) -> str:
    """'HTTP 429 · rate_limit_exceeded: Rate limit…': the HTTP status, then the provider's
    code and message as recorded (cut at ERROR_CHARS); '' for a call without an error."""
    if not isinstance(error, str) or not error.strip():
        return ""
    message = " ".join(error.split())
    if len(message) > ERROR_CHARS:
        message = message[: ERROR_CHARS - 1].rstrip() + "…"
    if isinstance(http_status, int | float) and not pd.isna(http_status):
        code = f"HTTP {int(http_status)}"
        if not message.startswith(f"{int(http_status)}:"):
            return f"{code} · {message}"
        return f"{code} ·{message.removeprefix(str(int(http_status)) + ':')}"
    return message


def cost_text(cost: object, status: object) -> str:
    """'$0.040'; 'unpriced' for a call that made images at no known price; '—' for a failed
    call without a price (it was not charged for images)."""
    if isinstance(cost, int | float) and not pd.isna(cost):
        return f"${cost:,.3f}"
    return "—" if status == Status.error.value else "unpriced"

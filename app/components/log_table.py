"""The Logs table: a page of `list_logs` rows turned into what `st.dataframe` shows.

Thumbnails travel as `data:` URIs of the stored WebP bytes (ImageColumn shows them without a
second request and without the hosted URL, which may be dead). The URL state is a one-item
list so a read-only MultiselectColumn draws it as a coloured chip, in the colours of
`badges.CHIPS` ("expired (predicted)" apart from a probe's "expired"); the verdicts of the
call's images are chips the same way (`badges.VERDICTS`).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st
from components import badges
from components.image_cards import data_uri

from store.schema.models import Status

#: Characters of the prompt shown in a row; the Detail page has the whole prompt.
PROMPT_CHARS = 90

#: The status chips' colours, in the order of the status filter.
STATUS_COLORS = {Status.ok.value: "#16a34a", Status.error.value: "#dc2626"}

#: Columns in the order an auditor scans them: which call, did it work, is the image still
#: hosted, what it cost; then the prompt and parameters.
COLUMN_CONFIG = {
    "thumbnail": st.column_config.ImageColumn("", width="small"),
    "created_at": st.column_config.DatetimeColumn(
        "Time (UTC)", format="YYYY-MM-DD HH:mm", width=125
    ),
    "provider": st.column_config.TextColumn("Provider", width=100),
    "model": st.column_config.TextColumn("Model", width=130),
    "status": st.column_config.MultiselectColumn(
        "Status", options=list(STATUS_COLORS), color=list(STATUS_COLORS.values()), width=70
    ),
    "url_state": st.column_config.MultiselectColumn(
        "URL",
        options=list(badges.CHIPS),
        color=[look.hex for look in badges.CHIPS.values()],
        format_func=badges.label,
        width=140,  # room for "expired (predicted)"
    ),
    "url_when": st.column_config.TextColumn("URL checked / expiry", width=230),
    "verdicts": st.column_config.MultiselectColumn(
        "Verdict",
        options=list(badges.VERDICTS),
        color=[look.hex for look in badges.VERDICTS.values()],
        format_func=badges.verdict_label,
        width=150,  # room for "needs another look"
    ),
    "cost_usd": st.column_config.NumberColumn("Cost", format="$%.3f", width=70),
    "latency_ms": st.column_config.NumberColumn("Latency", format="%.0f ms", width=85),
    "prompt": st.column_config.TextColumn("Prompt", width=300),
    "size_quality": st.column_config.TextColumn("Size · quality", width=120),
    "n": st.column_config.NumberColumn("n", format="%d", width=36),
}


def table(rows: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The display frame for a page of `list_logs` rows, in COLUMN_CONFIG's order."""
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
            "provider": rows["provider"],
            "model": rows["model"],
            "status": [[status] for status in rows["status"]],
            "url_state": [badges.chip(url) for url in urls],
            "url_when": [url.detail if url else "" for url in urls],
            "verdicts": rows["verdicts"],
            "cost_usd": rows["cost_usd"],
            "latency_ms": rows["latency_ms"],
            "prompt": [short_prompt(prompt) for prompt in rows["prompt"]],
            "size_quality": [
                size_quality(size, quality)
                for size, quality in zip(rows["size"], rows["quality"], strict=True)
            ],
            "n": rows["n"],
        }
    )
    return shown.reset_index(drop=True)


def short_prompt(prompt: str | None) -> str:
    """One line of the prompt: newlines folded, cut at PROMPT_CHARS with an ellipsis."""
    line = " ".join((prompt or "").split())
    return line if len(line) <= PROMPT_CHARS else line[: PROMPT_CHARS - 1].rstrip() + "…"


def size_quality(size: str | None, quality: str | None) -> str:
    return " · ".join(part for part in (size, quality) if isinstance(part, str) and part)

"""CSV and JSONL downloads of the filtered logs, byte for byte what `python -m store export` writes.

Both go through store.transfer.jsonl.export_records, the function behind the CLI. The file is built
only when the button is clicked (a callable `data`), so drawing the page never reads the
whole filtered log.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime

import streamlit as st
from components import data
from sqlalchemy import Engine

from store.queries import LogFilter
from store.transfer.jsonl import export_records

FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


def payload(engine: Engine, flt: LogFilter, fmt: str) -> str:
    """The export of `flt` in `fmt` ("csv" or "jsonl"), as the CLI would write it."""
    out = io.StringIO(newline="")
    export_records(engine, flt, fmt, out)
    return out.getvalue()


def buttons(flt: LogFilter, now: datetime, container=st) -> None:
    """One download button per format, each as wide as its label (in a horizontal container
    they sit side by side and wrap, never cut)."""
    stamp = f"{now:%Y%m%d-%H%M%S}"
    for fmt, mime in FORMATS.items():
        container.download_button(
            f"Export {fmt.upper()}",
            data=_builder(data.engine(), flt, fmt),
            file_name=f"imagelog-{stamp}.{fmt}",
            mime=mime,
            icon=":material/download:",
            on_click="ignore",
            width="content",
        )


def _builder(engine: Engine, flt: LogFilter, fmt: str) -> Callable[[], str]:
    """The deferred download: it runs on click, outside the script run, so it takes the engine."""
    return lambda: payload(engine, flt, fmt)

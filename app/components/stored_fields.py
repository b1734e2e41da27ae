"""Every stored column of a call and of its images, as an auditor can cite it.

The rows come from the read models' fields, which are the tables' columns: a column added to
the models shows here with no change to the page.
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import streamlit as st
from pydantic import BaseModel

from store.queries import LogDetail


def field_rows(model: BaseModel, skip: frozenset[str] = frozenset()) -> pd.DataFrame:
    """One (column, value) row per stored field of `model`, values as readable text."""
    rows = [
        (name, _as_text(getattr(model, name)))
        for name in type(model).model_fields
        if name not in skip
    ]
    return pd.DataFrame(rows, columns=["column", "value"])


def _as_text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bytes):
        return f"{len(value):,} bytes"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def section(call: LogDetail) -> None:
    """An expander with one table for the call and one for each image."""
    with st.expander("Stored fields", icon=":material/table_rows:"):
        st.caption("Every column of this call's row and of its images' rows, as stored.")
        st.dataframe(field_rows(call, frozenset({"images"})), hide_index=True, width="stretch")
        for image in call.images:
            st.caption(f"Image {image.position + 1}")
            st.dataframe(field_rows(image), hide_index=True, width="stretch")

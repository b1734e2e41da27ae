"""Recorded text inside Markdown-rendered elements (titles, captions) must read as written."""

from __future__ import annotations

import re

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")


def plain(value: object) -> str:
    """`value` with every Markdown (and Streamlit directive) character backslash-escaped."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(value))

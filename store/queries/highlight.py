"""Where a prompt search matched, so the Logs page can mark the words a search found.

The search box's syntax is the one `filters.search_condition` sends to the database (words,
"a phrase", `OR`, `-word`, `word*`); this reads the same text for the words to show. The
database stems words (PostgreSQL) or matches prefixes (`word*` on SQLite), so a term marks
every word that starts with it: "castle" marks "Castles" too. A `-word` excludes, so it is
never marked.
"""

from __future__ import annotations

import re

from store.queries.filters import _SEARCH_TOKEN, has_word


def search_terms(query: str | None) -> list[str]:
    """The words and phrases of a search that a matching prompt contains (not the `-word`s)."""
    if not query or not has_word(query):
        return []
    terms: list[str] = []
    for negate, phrase, bare in _SEARCH_TOKEN.findall(query):
        if negate or bare == "OR" or (bare.startswith("-") and len(bare) > 1):
            continue
        term = " ".join((phrase or bare).strip("*").split())
        if has_word(term) and term.casefold() not in (seen.casefold() for seen in terms):
            terms.append(term)
    return terms


def match_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each stretch of `text` a term marks, in order and never overlapping.

    A term matches at the start of a word, case-insensitively, and runs to the end of the
    word it lands in; the words of a phrase may be separated by any whitespace.
    """
    if not terms or not text:
        return []
    patterns = [
        r"\s+".join(re.escape(word) for word in term.split()) + r"\w*"
        for term in sorted(terms, key=len, reverse=True)
    ]
    found = re.finditer(r"(?<!\w)(?:" + "|".join(patterns) + ")", text, re.IGNORECASE)
    return [match.span() for match in found]

"""Which words of a prompt a search marks (store/queries/highlight.py) and how a Logs row shows
them (app/components/log_table.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from components.log_table import cost_text, error_text, parameters, short_prompt

from store.queries.highlight import match_spans, search_terms


def test_search_terms_are_the_words_and_phrases_a_match_contains():
    assert search_terms('castle OR tower "red fox" -night lamp*') == [
        "castle",
        "tower",
        "red fox",
        "lamp",
    ]
    assert search_terms('" * -') == []
    assert search_terms(None) == []


def test_a_term_marks_whole_words_that_start_with_it_in_any_case():
    text = "Castles and a sandcastle, a red\n fox"

    spans = match_spans(text, ["castle", "red fox"])

    assert [text[start:end] for start, end in spans] == ["Castles", "red\n fox"]


def test_a_row_marks_the_match_and_shows_a_deep_match_with_its_context():
    long = "word " * 40 + "the lighthouse at night"

    assert short_prompt("a <b>red</b> fox", ["red"]) == "a <b>«red»</b> fox"
    shown = short_prompt(long, ["lighthouse"])
    assert shown.startswith("…") and "the «lighthouse» at night" in shown
    assert short_prompt("x" * 300).endswith("…")


def test_units_and_errors_read_as_a_person_writes_them():
    assert cost_text(0.04, "ok") == "$0.040"
    assert cost_text(None, "ok") == "unpriced"
    assert cost_text(float("nan"), "error") == "—"
    assert parameters("1024x1024", None, 2) == "1024x1024 · n=2"
    assert error_text(429, "429: Too many requests") == "HTTP 429 · Too many requests"
    assert error_text(400, "moderation_blocked: no") == "HTTP 400 · moderation_blocked: no"
    assert error_text(None, None) == ""

"""Lines that used to stop an import for good: each is now reported or stored, never fatal.

Every case sits between good lines in one file, on SQLite and PostgreSQL; the good lines are
stored, the bad one is either refused with its line number and reason or stored in a form
the database takes (cut to the column's width, NUL replaced), and a second run of the same
file adds nothing and stops nowhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.schema.models import GENERATIONS, IMAGES
from store.transfer.jsonl import LineProblem, import_jsonl


def rid(n: int) -> str:
    return f"{n:032x}"


def good(n: int) -> str:
    return json.dumps({"id": rid(n), "provider": "openai", "model": "dall-e-3", "prompt": "ok"})


#: case -> (the line's fields, refused?, what the reason says)
REFUSED = {
    "year 1 at +14:00": ({"created_at": "0001-01-01T00:00:00+14:00"}, "outside the times UTC"),
    "integer above 2**63": ({"http_status": 2**64}, "http_status"),
    "integer out of a 32-bit column": ({"n": 2**31}, "out of the range of an integer column"),
    "unknown url_state": (
        {"images": [{"url": "https://h/1.png", "url_state": "dead"}]},
        "url_state",
    ),
    "javascript: image url": ({"images": [{"url": "javascript:alert(1)"}]}, "http"),
    "data: image url": ({"images": [{"url": "data:image/png;base64,AAAA"}]}, "http"),
    "infinite latency": ({"latency_ms": "Infinity"}, "latency_ms"),
    "unknown operation": ({"operation": "delete"}, "operation"),
}


def import_around(engine, tmp_path: Path, fields: dict) -> tuple[list[LineProblem], object]:
    bad = json.dumps({"id": rid(2), "provider": "openai", **fields})
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join([good(1), bad, good(3)]) + "\n")
    problems: list[LineProblem] = []
    summary = import_jsonl(engine, path, report=problems.append)
    return problems, summary


def stored_row(engine, generation_id: str):
    with engine.connect() as connection:
        query = select(GENERATIONS).where(GENERATIONS.c.id == generation_id)
        return connection.execute(query).mappings().one()


def stored_ids(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(GENERATIONS.c.id).order_by(GENERATIONS.c.id)))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_hostile_line_is_reported_by_number_and_the_rest_is_stored(engine, tmp_path, case):
    fields, reason = REFUSED[case]

    problems, summary = import_around(engine, tmp_path, fields)

    assert [problem.line for problem in problems] == [2]
    assert reason in problems[0].reason
    assert (summary.imported, summary.skipped) == (2, 1)
    assert stored_ids(engine) == [rid(1), rid(3)]
    again, _ = import_around(engine, tmp_path, fields)  # a re-run stops nowhere either
    assert [problem.line for problem in again] == [2]


def test_a_text_longer_than_its_column_is_stored_cut_with_a_note(engine, tmp_path):
    problems, summary = import_around(engine, tmp_path, {"model": "m" * 300, "user": "u" * 201})

    assert problems == [] and summary.imported == 3
    with engine.connect() as connection:
        row = (
            connection.execute(select(GENERATIONS).where(GENERATIONS.c.id == rid(2)))
            .mappings()
            .one()
        )
    assert row["model"] == "m" * 199 + "…" and len(row["user_id"]) == 200
    assert row["metadata_json"]["imagelog_truncated"] == {"model": 300, "user_id": 201}


def test_a_nul_inside_a_json_key_or_text_is_stored_replaced(engine, tmp_path):
    fields = {"prompt": "a\x00b", "metadata": {"te\x00am": "we\x00b"}, "params": {"k\x00": 1}}

    problems, summary = import_around(engine, tmp_path, fields)

    assert problems == [] and summary.imported == 3
    with engine.connect() as connection:
        row = (
            connection.execute(select(GENERATIONS).where(GENERATIONS.c.id == rid(2)))
            .mappings()
            .one()
        )
        images = connection.execute(select(func.count()).select_from(IMAGES)).scalar_one()
    assert images == 0
    if engine.dialect.name == "postgresql":  # SQLite keeps NUL as it is
        assert row["prompt"] == "a\ufffdb"
        assert row["metadata_json"] == {"te\ufffdam": "we\ufffdb"}
        assert row["params_json"] == {"k\ufffd": 1}
    else:
        assert row["metadata_json"] == {"te\x00am": "we\x00b"}

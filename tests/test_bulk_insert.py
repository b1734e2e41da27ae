"""The writer's bulk path (executemany on SQLite, COPY on PostgreSQL): keys already present are
skipped, whichever way the rows go in."""

from __future__ import annotations

from sqlalchemy import func, select

from store.capture.writer import insert_calls
from store.schema.models import GENERATIONS, IMAGES
from store.schema.records import CallRecord, ImageRecord


def calls(count: int, prefix: str) -> list[CallRecord]:
    return [
        CallRecord(
            provider="openai",
            prompt=f"{prefix} {index}",
            metadata={"team": prefix},
            images=[ImageRecord(url=f"https://cdn.example/{prefix}/{index}/{n}.png") for n in "ab"],
        )
        for index in range(count)
    ]


def counts(engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (
            connection.scalar(select(func.count()).select_from(GENERATIONS)) or 0,
            connection.scalar(select(func.count()).select_from(IMAGES)) or 0,
        )


def test_a_batch_holding_calls_already_stored_adds_only_the_new_ones(engine):
    first = calls(30, "first")
    insert_calls(engine, first)

    # On PostgreSQL the COPY meets the present ids and the batch goes in with ON CONFLICT.
    insert_calls(engine, [*first[10:], *calls(5, "second")])

    assert counts(engine) == (35, 70)
    with engine.connect() as connection:
        teams = connection.scalars(select(GENERATIONS.c.metadata_json)).all()
    assert sorted(team["team"] for team in teams) == ["first"] * 30 + ["second"] * 5


def test_rows_are_stored_in_key_order_whatever_order_the_batch_has(engine):
    batch = calls(20, "order")

    insert_calls(engine, batch)

    with engine.connect() as connection:
        ids = connection.scalars(select(IMAGES.c.generation_id).order_by(IMAGES.c.id)).all()
    assert ids == sorted(ids)
    assert set(ids) == {record.id for record in batch}

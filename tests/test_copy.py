"""`imagelog copy --to URL` (store.transfer.copy): a whole log moved to another database.

Between SQLite and PostgreSQL both ways, every column of every row arrives as it was (demo
calls and the hand-made rows of tests/databases.py), a rerun copies only what is missing,
and a call the target refuses is set aside while the rest is copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete, func, select

from store.cli import main
from store.schema.db import make_engine
from store.schema.models import GENERATIONS, IMAGES
from store.transfer.copy import copy_log
from store.transfer.demo import load_demo
from store.transfer.jsonl import import_lines
from store.transfer.storing import RejectedFile
from tests.databases import (
    differences,
    give_hand_made_verdicts,
    log_rows,
    write_hand_made_rows,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WAYS = [("sqlite", "postgresql"), ("postgresql", "sqlite")]


@pytest.fixture
def opened(fresh_db_url) -> Iterator:
    """`opened(backend)`: (url, engine) of one more empty log on that backend."""
    engines: list[Engine] = []

    def make(backend: str) -> tuple[str, Engine]:
        url = fresh_db_url(backend)
        engines.append(make_engine(url))
        return url, engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def calls_in(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(GENERATIONS)) or 0


@pytest.mark.parametrize(("source_backend", "target_backend"), WAYS)
def test_copy_moves_every_row_of_the_log_as_it_was(opened, source_backend, target_backend, capsys):
    source_url, source = opened(source_backend)
    target_url, target = opened(target_backend)
    load_demo(source, count=80, seed=9, now=NOW)
    write_hand_made_rows(source)
    give_hand_made_verdicts(source)
    images = len(log_rows(source)["images"])

    code = main(["--database-url", source_url, "copy", "--to", target_url, "--no-progress"])

    assert code == 0
    assert capsys.readouterr().out.strip() == (
        f"copied 82 calls ({images} images), 0 already in the target, 0 refused by the target"
    )
    assert len(log_rows(target)["reviews"]) == 3
    assert differences(log_rows(source), log_rows(target)) == []


@pytest.mark.parametrize(("source_backend", "target_backend"), WAYS)
def test_copy_run_again_adds_only_what_the_target_is_missing(
    opened, source_backend, target_backend, capsys
):
    source_url, source = opened(source_backend)
    target_url, target = opened(target_backend)
    load_demo(source, count=30, seed=2, now=NOW)
    argv = ["--database-url", source_url, "copy", "--to", target_url, "--no-progress"]
    main(argv)
    with target.begin() as connection:  # as if the first copy had stopped part way
        cut = select(GENERATIONS.c.id).order_by(GENERATIONS.c.id).limit(12).scalar_subquery()
        lost = delete(IMAGES).where(IMAGES.c.generation_id.in_(cut))
        lost_images = connection.execute(lost).rowcount
        connection.execute(delete(GENERATIONS).where(GENERATIONS.c.id.in_(cut)))
    capsys.readouterr()

    assert main(argv) == 0

    assert capsys.readouterr().out.strip() == (
        f"copied 12 calls ({lost_images} images), 18 already in the target, 0 refused by the target"
    )
    assert differences(log_rows(source), log_rows(target)) == []


def test_copy_reports_progress_over_the_sources_calls_batch_by_batch(opened):
    _, source = opened("sqlite")
    _, target = opened("sqlite")
    load_demo(source, count=25, seed=3, now=NOW)
    progress: list[tuple[int, int | None]] = []

    summary = copy_log(
        source,
        target,
        batch_size=10,
        on_progress=lambda done, total: progress.append((done, total)),
    )

    assert progress == [(0, 25), (10, 25), (20, 25), (25, 25)]
    assert (summary.copied, summary.present, summary.refused) == (25, 0, 0)


def test_a_call_the_target_refuses_is_set_aside_and_the_rest_is_copied(opened, tmp_path, capsys):
    source_url, source = opened("sqlite")
    target_url, target = opened("postgresql")
    lines = [
        json.dumps({"id": f"{n:032x}", "provider": "openai", "params": params})
        for n, params in ((1, {}), (2, {"strength": float("nan")}), (3, {}))
    ]
    import_lines(
        source, lines, rejected=RejectedFile(tmp_path / "unused.jsonl")
    )  # SQLite takes NaN
    rejected = tmp_path / "refused.jsonl"

    code = main(
        ["--database-url", source_url, "copy", "--to", target_url, "--rejected", str(rejected),
         "--no-progress"]
    )  # fmt: skip

    assert code == 1
    assert capsys.readouterr().out.strip() == (
        "copied 2 calls (0 images), 0 already in the target, 1 refused by the target "
        f"(set aside with the reasons in {rejected})"
    )
    [entry] = [json.loads(text) for text in rejected.read_text().splitlines()]
    assert entry["record"]["id"] == f"{2:032x}"
    assert "invalid input syntax for type json" in entry["reason"]
    assert calls_in(target) == 2


def test_copy_to_a_database_that_cannot_be_reached_says_so_without_a_traceback(opened, capsys):
    source_url, _ = opened("sqlite")

    code = main(
        ["--database-url", source_url, "copy", "--to",
         "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "--no-progress"]
    )  # fmt: skip

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("imagelog copy: cannot use the target database postgresql+psycopg://")
    assert "Traceback" not in err

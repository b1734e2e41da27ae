"""JSONL import and JSONL / CSV export (store.transfer.jsonl), on SQLite and PostgreSQL.

Files are real files under tmp_path; records go in through `import_jsonl` and come back out
through `store.queries.iter_records` and the serialisers the CLI and the dashboard share.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.exc import OperationalError

from store.queries import LogFilter
from store.schema.models import Generation, Image
from store.schema.records import CallRecord
from store.transfer.jsonl import (
    CSV_COLUMNS,
    LineProblem,
    UnreadableFile,
    export_records,
    import_jsonl,
    parse_line,
    records_to_csv,
    records_to_jsonl,
)
from tests.databases import refuse_images_ending

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def line(record_id: str, **fields) -> str:
    """A JSONL line of a valid call with id `record_id` (32 hex), plus any fields."""
    data = {
        "id": record_id,
        "created_at": T0.isoformat(),
        "provider": "openai",
        "model": "dall-e-3",
        "prompt": f"a lighthouse number {record_id[-2:]}",
        "latency_ms": 12_345.6,
        **fields,
    }
    return json.dumps(data)


def rid(n: int) -> str:
    return f"{n:032x}"


def write(tmp_path: Path, lines: list[str], name: str = "calls.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def count(engine, table=Generation) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))


def test_bad_lines_are_reported_by_number_and_reason_and_the_rest_is_imported(engine, tmp_path):
    path = write(
        tmp_path,
        [
            line(rid(1)),
            '{"id": "' + rid(2) + '", "provider": ',  # cut off
            line(rid(3), provider=""),
            line(rid(4), images=[{"b64_json": "not base64!"}]),
            line(rid(5), images=[{"url": "ftp://files.example/x.png"}]),
            "",
            line(rid(6), latency_ms=-5),
            "[1, 2, 3]",
            line(rid(7), images=[{"url": "https://img.example/7.png"}]),
        ],
    )
    problems: list[LineProblem] = []

    summary = import_jsonl(engine, path, report=problems.append)

    assert (summary.imported, summary.skipped, summary.duplicates) == (2, 6, 0)
    assert [problem.line for problem in problems] == [2, 3, 4, 5, 7, 8]
    reasons = [problem.reason for problem in problems]
    assert "Invalid JSON" in reasons[0]
    assert reasons[1].startswith("provider:")
    assert "images.0" in reasons[2] and "base64" in reasons[2]
    assert "images.0.url" in reasons[3] and "http" in reasons[3]
    assert reasons[4].startswith("latency_ms:")
    assert "object" in reasons[5]
    assert str(problems[0]).startswith("line 2: ")
    assert count(engine) == 2
    assert not summary.complete  # lines were left out


def test_importing_a_file_twice_counts_duplicates_and_adds_nothing(engine, tmp_path):
    path = write(
        tmp_path, [line(rid(n), images=[{"url": f"https://i.example/{n}"}]) for n in (1, 2, 3)]
    )
    import_jsonl(engine, path)

    again = import_jsonl(engine, path)

    assert (again.imported, again.duplicates, again.skipped) == (0, 3, 0)
    assert again.complete  # nothing new is not a failure
    assert count(engine) == 3
    assert count(engine, Image) == 3


def test_an_id_repeated_inside_the_file_is_imported_once(engine, tmp_path):
    path = write(tmp_path, [line(rid(1)), line(rid(1), prompt="second copy"), line(rid(2))])

    summary = import_jsonl(engine, path, batch_size=1)

    assert (summary.imported, summary.duplicates) == (2, 1)
    with engine.connect() as connection:
        prompt = connection.scalar(select(Generation.prompt).where(Generation.id == rid(1)))
    assert prompt == "a lighthouse number 01"  # the first line wins


def test_batches_of_any_size_import_every_line(engine, tmp_path):
    path = write(tmp_path, [line(rid(n)) for n in range(1, 8)])

    summary = import_jsonl(engine, path, batch_size=3)

    assert summary.imported == 7
    assert count(engine) == 7


def test_import_reports_the_bytes_read_up_to_the_files_size(engine, tmp_path):
    path = write(tmp_path, [line(rid(n)) for n in range(1, 6)])
    progress: list[tuple[int, int | None]] = []

    import_jsonl(engine, path, on_progress=lambda done, total: progress.append((done, total)))

    size = path.stat().st_size
    assert progress[0] == (0, size) and progress[-1] == (size, size)
    assert len(progress) == 6  # the start, then one report per line
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


def test_a_b64_image_becomes_an_image_row_without_url(engine, tmp_path):
    b64 = base64.b64encode(PNG_1PX).decode()
    path = write(tmp_path, [line(rid(1), model="gpt-image-1", images=[{"b64_json": b64}])])

    import_jsonl(engine, path)

    with engine.connect() as connection:
        row = connection.execute(select(Image.url, Image.url_state)).one()
    assert tuple(row) == (None, "none")


def test_a_line_without_source_is_marked_as_imported_and_one_with_source_keeps_it():
    plain = parse_line(line(rid(1)))
    from_demo = parse_line(line(rid(2), source="demo"))

    assert plain.source == "import"
    assert from_demo.source == "demo"


def test_a_file_of_only_bad_lines_is_an_incomplete_import(engine, tmp_path):
    path = write(tmp_path, ["not json", '{"provider": ""}'])

    summary = import_jsonl(engine, path)

    assert not summary.complete
    assert summary.lines == 2
    assert count(engine) == 0


def test_an_empty_file_imports_nothing_and_is_not_a_failure(engine, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")

    summary = import_jsonl(engine, path)

    assert (summary.lines, summary.complete) == (0, True)


def test_a_line_that_is_not_utf8_is_a_bad_line_not_a_crash(engine, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(line(rid(1)).encode() + b"\n" + b'{"provider": "\xff\xfe"}\n')
    problems: list[LineProblem] = []

    summary = import_jsonl(engine, path, report=problems.append)

    assert (summary.imported, summary.skipped) == (1, 1)
    assert problems[0].line == 2


def test_a_nul_character_in_a_line_is_imported_on_every_database(engine, tmp_path):
    path = write(
        tmp_path,
        [
            line(rid(1), prompt="before\u0000after", metadata={"note": "x\u0000y"}),
            line(rid(2), prompt="a plain neighbour in the same batch"),
        ],
    )

    summary = import_jsonl(engine, path)

    assert (summary.imported, summary.skipped) == (2, 0)
    with engine.connect() as connection:
        row = connection.execute(
            select(Generation.prompt, Generation.metadata_json).where(Generation.id == rid(1))
        ).one()
    assert row.prompt.startswith("before") and row.prompt.endswith("after")
    assert row.metadata_json["note"][0] == "x" and row.metadata_json["note"][-1] == "y"


@pytest.mark.parametrize("name", ["missing.jsonl", "a_directory"])
def test_a_file_that_cannot_be_read_raises_unreadable_file(engine, tmp_path, name):
    (tmp_path / "a_directory").mkdir()

    with pytest.raises(UnreadableFile, match=name):
        import_jsonl(engine, tmp_path / name)


def test_export_then_import_gives_back_the_same_calls(engine, tmp_path):
    lines = [
        line(
            rid(1),
            revised_prompt="A tall lighthouse at dusk.",
            params={"size": "1024x1024", "quality": "hd", "n": 2},
            metadata={"team": "design", "feature": "blog-hero"},
            user="ana@acme.example",
            request_id="req_abc",
            trace_id="trace-1",
            http_status=200,
            usage={"output_tokens": 4160},
            response={"created": 1, "data": [{"url": "https://a.example/1.png"}]},
            images=[
                {
                    "url": "https://a.example/1.png",
                    "url_state": "live",
                    "expires_at": (T0 + timedelta(hours=1)).isoformat(),
                    "last_checked_at": (T0 + timedelta(seconds=20)).isoformat(),
                    "sha256": "ab" * 32,
                    "width": 1024,
                    "height": 1024,
                    "format": "png",
                    "byte_size": 123456,
                },
                {"url": "https://a.example/2.png", "url_state": "expired"},
            ],
        ),
        line(
            rid(2),
            created_at=(T0 - timedelta(days=1)).isoformat(),
            status="error",
            error="rate_limit_exceeded: slow down",
            http_status=429,
            response={"error": {"code": "rate_limit_exceeded"}},
        ),
        line(
            rid(3),
            created_at=(T0 - timedelta(hours=1)).isoformat(),
            provider="google",
            model="imagen-4.0-generate-001",
            cost_usd=0.04,
        ),
    ]
    import_jsonl(engine, write(tmp_path, lines))
    first = io.StringIO()
    export_records(engine, LogFilter(), "jsonl", first)
    with engine.begin() as connection:  # empty the log, then load the export back
        connection.execute(delete(Image))
        connection.execute(delete(Generation))

    summary = import_jsonl(engine, write(tmp_path, first.getvalue().splitlines(), "export.jsonl"))
    second = io.StringIO()
    export_records(engine, LogFilter(), "jsonl", second)

    assert summary.imported == 3
    assert second.getvalue() == first.getvalue()
    exported = [json.loads(text) for text in first.getvalue().splitlines()]
    assert [record["id"] for record in exported] == [rid(1), rid(3), rid(2)]  # newest first
    images = exported[0]["images"]
    assert [image["url_state"] for image in images] == ["live", "expired"]
    assert images[0]["sha256"] == "ab" * 32
    assert exported[0]["metadata"] == {"team": "design", "feature": "blog-hero"}
    assert exported[2]["http_status"] == 429


def test_import_works_out_the_columns_a_line_leaves_out_and_keeps_those_it_gives(engine, tmp_path):
    params = {"size": "1024x1024", "quality": "hd", "n": 1}
    image = {"url": "https://a.example/1.png"}
    given = {"size": "512x512", "cost_usd": 0.5, "cost_source": "reported", "image_count": 4}
    path = write(
        tmp_path,
        [
            line(rid(1), params=params, images=[image]),
            line(rid(2), params=params, images=[image], **given),
        ],
    )

    import_jsonl(engine, path)

    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Generation.size, Generation.cost_usd, Generation.cost_source, Generation.image_count
            ).order_by(Generation.id)
        ).all()
        hosts = connection.scalars(select(Image.url_host)).all()
    assert [tuple(row) for row in rows] == [
        ("1024x1024", 0.08, "per_image", 1),  # from the params, the price table, the images
        ("512x512", 0.5, "reported", 4),
    ]
    assert hosts == ["a.example", "a.example"]


def test_export_keeps_only_the_calls_the_filter_matches(engine, tmp_path):
    import_jsonl(
        engine,
        write(tmp_path, [line(rid(1)), line(rid(2), provider="bfl"), line(rid(3), status="error")]),
    )
    out = io.StringIO()

    written = export_records(
        engine, LogFilter(providers=("openai",), statuses=("ok",)), "jsonl", out
    )

    assert written == 1
    assert [json.loads(text)["id"] for text in out.getvalue().splitlines()] == [rid(1)]


def test_csv_has_a_header_and_one_flat_row_per_call_with_nested_fields_as_json(engine, tmp_path):
    import_jsonl(
        engine,
        write(
            tmp_path,
            [
                line(
                    rid(1),
                    prompt='a "quoted", comma prompt\non two lines',
                    metadata={"team": "web"},
                    images=[{"url": "https://a.example/1.png"}],
                )
            ],
        ),
    )
    out = io.StringIO()

    written = export_records(engine, LogFilter(), "csv", out)

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert written == 1
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["prompt"] == 'a "quoted", comma prompt\non two lines'
    assert json.loads(rows[0]["metadata"]) == {"team": "web"}
    assert json.loads(rows[0]["images"])[0]["url"] == "https://a.example/1.png"
    assert rows[0]["error"] == ""  # None is an empty cell


def test_jsonl_carries_thumbnails_and_csv_leaves_them_out(engine, tmp_path):
    import_jsonl(
        engine,
        write(
            tmp_path,
            [
                line(
                    rid(1),
                    images=[
                        {
                            "url": "https://a.example/1.png",
                            "thumbnail": base64.b64encode(PNG_1PX).decode(),
                        }
                    ],
                )
            ],
        ),
    )
    jsonl, table = io.StringIO(), io.StringIO()

    export_records(engine, LogFilter(), "jsonl", jsonl)
    export_records(engine, LogFilter(), "csv", table)

    [image] = json.loads(jsonl.getvalue())["images"]
    assert base64.urlsafe_b64decode(image["thumbnail"]) == PNG_1PX
    [row] = csv.DictReader(io.StringIO(table.getvalue()))
    [csv_image] = json.loads(row["images"])
    assert "thumbnail" not in csv_image and csv_image["url"] == "https://a.example/1.png"


def test_serialisers_stream_records_they_are_given_without_a_database():
    records = (CallRecord(id=rid(n), provider="openai", created_at=T0) for n in range(3))
    out = io.StringIO()

    assert records_to_jsonl(records, out) == 3
    assert len(out.getvalue().splitlines()) == 3
    assert records_to_csv([], io.StringIO()) == 0


def test_a_record_the_database_refuses_is_reported_set_aside_and_its_batch_stored(engine, tmp_path):
    refuse_images_ending(engine, "/refused.png")
    path = write(
        tmp_path,
        [
            line(rid(1), images=[{"url": "https://img.example/1.png"}]),
            line(rid(2), images=[{"url": "https://img.example/refused.png"}]),
            "not json",
            line(rid(4), images=[{"url": "https://img.example/4.png"}]),
        ],
    )
    problems: list[LineProblem] = []

    summary = import_jsonl(engine, path, report=problems.append)  # one batch of three records

    rejected = tmp_path / "calls.jsonl.rejected.jsonl"
    assert (summary.imported, summary.skipped, summary.refused) == (2, 1, 1)
    assert summary.rejected_path == rejected and not summary.complete
    assert [problem.line for problem in problems] == [3, 2]  # bad lines as read, then refusals
    assert problems[1].reason.startswith("refused by the database: ")
    assert "refused here" in problems[1].reason
    with engine.connect() as connection:
        assert list(connection.scalars(select(Generation.id).order_by(Generation.id))) == [
            rid(1),
            rid(4),
        ]
        assert count(engine, Image) == 2  # the refused call left neither row behind
    [entry] = [json.loads(text) for text in rejected.read_text().splitlines()]
    assert entry["line_number"] == 2 and "refused here" in entry["reason"]
    assert entry["record"] == json.loads(
        line(rid(2), images=[{"url": "https://img.example/refused.png"}])
    )


def test_a_rerun_refuses_the_same_record_again_and_stores_nothing_twice(engine, tmp_path):
    refuse_images_ending(engine, "/refused.png")
    lines = [line(rid(n), images=[{"url": f"https://img.example/{n}.png"}]) for n in (1, 3)]
    path = write(
        tmp_path, [*lines, line(rid(2), images=[{"url": "https://i.example/refused.png"}])]
    )
    import_jsonl(engine, path, batch_size=2)

    again = import_jsonl(engine, path, batch_size=2)

    assert (again.imported, again.duplicates, again.refused) == (0, 2, 1)
    assert count(engine) == 2 and count(engine, Image) == 2
    assert len((tmp_path / "calls.jsonl.rejected.jsonl").read_text().splitlines()) == 1


def test_a_json_number_postgresql_cannot_hold_is_refused_there_and_kept_by_sqlite(engine, tmp_path):
    # NaN and 1e400 (infinity) pass the record model inside JSON values; SQLite stores the
    # text, PostgreSQL's jsonb refuses it: a refusal only the database can make.
    path = write(
        tmp_path,
        [line(rid(1)), line(rid(2), params={"strength": float("nan")}), line(rid(3))],
    )
    problems: list[LineProblem] = []

    summary = import_jsonl(
        engine, path, rejected=tmp_path / "set-aside.jsonl", report=problems.append
    )

    if engine.dialect.name == "postgresql":
        assert (summary.imported, summary.refused) == (2, 1)
        assert [problem.line for problem in problems] == [2]
        assert "invalid input syntax for type json" in problems[0].reason
        entry = json.loads((tmp_path / "set-aside.jsonl").read_text())
        assert (
            entry["record"]["id"] == rid(2) and "NaN" in (tmp_path / "set-aside.jsonl").read_text()
        )
    else:
        assert (summary.imported, summary.refused, problems) == (3, 0, [])
        assert not (tmp_path / "set-aside.jsonl").exists()


def test_a_database_that_goes_away_stops_the_import_instead_of_rejecting_records(engine, tmp_path):
    path = write(tmp_path, [line(rid(n)) for n in range(1, 4)])
    if engine.dialect.name == "sqlite":
        gone_url = engine.url.set(database=str(tmp_path / "no" / "such.db"))
    else:
        gone_url = engine.url.set(port=1)  # nothing listens there
    gone = create_engine(gone_url)

    with pytest.raises(OperationalError):
        import_jsonl(gone, path)

    assert not (tmp_path / "calls.jsonl.rejected.jsonl").exists()

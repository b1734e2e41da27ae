"""The `imagelog` command: `python -m store` in a real subprocess (the way a user runs it, with
IMAGELOG_DATABASE_URL set) and `store.cli.main([...])` in-process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.capture.writer import insert_calls
from store.cli import format_summary_table, main
from store.schema.db import make_engine
from store.schema.models import Generation
from store.schema.records import CallRecord, ImageRecord
from store.transfer.demo import load_demo
from tests.databases import refuse_images_ending

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent


def run_cli(
    db_url: str, *args: str, stdin: str | None = None, home: Path | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGELOG_DATABASE_URL": db_url}
    if home is not None:  # the data folder
        env["IMAGELOG_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "store", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
    )


def call_line(n: int, **fields) -> str:
    return json.dumps(
        {
            "id": f"{n:032x}",
            "created_at": (NOW - timedelta(minutes=n)).isoformat(),
            "provider": "openai",
            "model": "dall-e-3",
            "prompt": f"prompt {n}",
            "latency_ms": 1000.0 * n,
            **fields,
        }
    )


def calls_in(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Generation))


def test_demo_then_stats_prints_calls_cost_and_latency_by_provider(db_url):
    demo = run_cli(db_url, "demo", "--count", "300", "--seed", "5", "--no-progress")

    stats = run_cli(db_url, "stats")

    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith("demo: 300 new calls")
    assert stats.returncode == 0, stats.stderr
    lines = stats.stdout.splitlines()
    assert lines[0].split() == ["provider", "calls", "errors", "images", "cost", "USD",
                                "unpriced", "p50", "s", "p95", "s"]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[2:] if not line.startswith("-")}
    assert {"openai", "azure-openai", "replicate", "google", "total"} <= set(rows)
    assert rows["total"][1] == "300"
    assert float(rows["openai"][4]) > 0  # priced
    assert float(rows["openai"][6]) > 1  # p50 in seconds


def test_import_reports_bad_lines_on_stderr_imports_the_rest_and_exits_1(db_url, tmp_path):
    path = tmp_path / "calls.jsonl"
    path.write_text(
        "\n".join([call_line(1), "{oops", call_line(3, provider=""), call_line(4)]) + "\n"
    )

    result = run_cli(db_url, "import", str(path), "--no-progress")

    assert result.returncode == 1, result.stderr  # not every line is in the log
    assert "line 2: Invalid JSON" in result.stderr
    assert "line 3: provider:" in result.stderr
    assert result.stdout.strip() == (
        "imported 2, skipped 2 bad lines, 0 duplicates (ids already imported), "
        "0 refused by the database"
    )
    assert not (tmp_path / "calls.jsonl.rejected.jsonl").exists()  # nothing was refused


def test_import_fails_when_no_line_is_valid_or_the_file_is_missing(db_url, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\n[]\n")

    all_bad = run_cli(db_url, "import", str(bad), "--no-progress")
    missing = run_cli(db_url, "import", str(tmp_path / "missing.jsonl"))

    assert all_bad.returncode == 1
    assert "skipped 2 bad lines" in all_bad.stdout
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr and "missing.jsonl" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_import_reads_standard_input(db_url, engine):
    result = run_cli(db_url, "import", "-", stdin=call_line(1) + "\n" + call_line(2) + "\n")

    assert result.returncode == 0, result.stderr
    assert calls_in(engine) == 2
    assert "import: " in result.stderr and "B [" in result.stderr  # bytes read, no total


def refused_file(tmp_path: Path) -> Path:
    """A file of three calls whose second one the database refuses (see refuse_images_ending)."""
    path = tmp_path / "calls.jsonl"
    lines = [call_line(n, images=[{"url": f"https://img.example/{n}.png"}]) for n in (1, 3)]
    refused = call_line(2, images=[{"url": "https://img.example/refused.png"}])
    path.write_text("\n".join([lines[0], refused, lines[1]]) + "\n")
    return path


def test_import_sets_what_the_database_refuses_aside_beside_the_file_and_exits_1(
    db_url, engine, tmp_path
):
    refuse_images_ending(engine, "/refused.png")
    path = refused_file(tmp_path)

    result = run_cli(db_url, "import", str(path), "--no-progress")

    rejected = tmp_path / "calls.jsonl.rejected.jsonl"
    assert result.returncode == 1
    assert "line 2: refused by the database: " in result.stderr
    assert result.stdout.strip() == (
        "imported 2, skipped 0 bad lines, 0 duplicates (ids already imported), "
        f"1 refused by the database (set aside with the reasons in {rejected})"
    )
    assert calls_in(engine) == 2
    assert json.loads(rejected.read_text())["record"]["id"] == f"{2:032x}"


def test_import_rejected_option_chooses_where_refused_records_go(db_url, engine, tmp_path):
    refuse_images_ending(engine, "/refused.png")
    chosen = tmp_path / "elsewhere.jsonl"

    result = run_cli(
        db_url, "import", str(refused_file(tmp_path)), "--rejected", str(chosen), "--no-progress"
    )

    assert result.returncode == 1
    assert json.loads(chosen.read_text())["line_number"] == 2
    assert not (tmp_path / "calls.jsonl.rejected.jsonl").exists()


def test_import_from_standard_input_sets_refused_records_aside_in_the_data_folder(
    db_url, engine, tmp_path
):
    refuse_images_ending(engine, "/refused.png")
    home = tmp_path / "data"  # not there yet: the data folder is the one imagelog creates

    result = run_cli(
        db_url, "import", "-", "--no-progress", stdin=refused_file(tmp_path).read_text(), home=home
    )

    [rejected] = home.glob("import-*.rejected.jsonl")
    assert result.returncode == 1
    assert str(rejected) in result.stdout
    assert json.loads(rejected.read_text())["line_number"] == 2


def test_progress_bars_are_drawn_on_stderr_from_the_librarys_callbacks(db_url, capsys):
    exit_code = main(["--database-url", db_url, "demo", "--count", "30"])

    captured = capsys.readouterr()
    assert exit_code == 0
    assert "demo: 100%" in captured.err and "30/30" in captured.err
    assert captured.out.startswith("demo: 30 new calls")


def test_export_jsonl_to_stdout_reads_back_with_import(engine, db_url, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(call_line(n) for n in (1, 2, 3)) + "\n")
    assert main(["--database-url", db_url, "import", str(source), "--no-progress"]) == 0
    capsys.readouterr()

    assert main(["--database-url", db_url, "export"]) == 0
    exported = capsys.readouterr()

    lines = exported.out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"{n:032x}" for n in (1, 2, 3)]
    assert "exported 3 calls" in exported.err
    again = tmp_path / "again.jsonl"
    again.write_text(exported.out)
    assert main(["--database-url", db_url, "import", str(again), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == (
        "imported 0, skipped 0 bad lines, 3 duplicates (ids already imported), "
        "0 refused by the database"
    )
    assert calls_in(engine) == 3


def test_export_csv_to_a_file_keeps_only_the_filtered_calls(engine, db_url, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            [
                call_line(1),
                call_line(2, provider="bfl", model="flux-pro-1.1"),
                call_line(3, status="error", http_status=429),
                call_line(4, metadata={"team": "design"}),
                call_line(60 * 24 * 3),  # three days old
            ]
        )
        + "\n"
    )
    main(["--database-url", db_url, "import", str(source), "--no-progress"])
    out = tmp_path / "out.csv"

    code = main(
        [
            "--database-url", db_url, "export", "--format", "csv", "--output", str(out),
            "--provider", "openai", "--status", "ok",
            "--since", (NOW - timedelta(days=1)).date().isoformat(),
        ]
    )  # fmt: skip

    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert code == 0
    assert [row["id"] for row in rows] == [f"{n:032x}" for n in (1, 4)]
    tagged = tmp_path / "tagged.csv"
    main(["--database-url", db_url, "export", "--format", "csv", "-o", str(tagged),
          "--tag", "team=design"])  # fmt: skip
    assert [row["id"] for row in csv.DictReader(io.StringIO(tagged.read_text()))] == [f"{4:032x}"]


def test_export_to_a_folder_that_does_not_exist_is_a_clear_error(db_url, tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir" / "out.jsonl"

    code = main(["--database-url", db_url, "export", "--output", str(target)])

    assert code == 1
    assert capsys.readouterr().err.startswith(f"imagelog export: cannot write {target}")


def test_export_piped_into_a_reader_that_stops_early_ends_quietly(db_url, engine):
    load_demo(engine, count=300, seed=7, now=NOW)
    env = {**os.environ, "IMAGELOG_DATABASE_URL": db_url}

    pipeline = subprocess.run(
        f"{sys.executable} -m store export | head -n 2",
        shell=True,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert len(pipeline.stdout.splitlines()) == 2
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr


def test_stats_by_model_lists_provider_and_model_and_respects_filters(engine, db_url, capsys):
    load_demo(engine, count=200, seed=7, now=NOW)

    assert main(["--database-url", db_url, "stats", "--by", "model", "--provider", "bfl"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["provider", "model", "calls"]
    body = [line.split() for line in lines[2:-2]]
    assert body and all(row[0] == "bfl" for row in body)
    assert {row[1] for row in body} <= {"flux-pro-1.1", "flux-pro-1.1-ultra"}
    assert int(lines[-1].split()[1]) == sum(int(row[2]) for row in body)


def test_stats_of_an_empty_log_says_so(db_url, capsys):
    assert main(["--database-url", db_url, "stats"]) == 0

    assert capsys.readouterr().out.strip() == "no calls match"


def test_summary_table_aligns_columns_and_adds_a_total_line():
    rows = [
        {"provider": "openai", "calls": 1200, "errors": 3, "images": 1190, "cost_usd": 48.5,
         "p50_latency_ms": 14_950.0, "p95_latency_ms": 49_700.0},
        {"provider": "bfl", "calls": 7, "errors": 0, "images": 7, "cost_usd": 0.28,
         "p50_latency_ms": float("nan"), "p95_latency_ms": None},
    ]  # fmt: skip

    table = format_summary_table(rows).splitlines()

    assert table[2].split() == ["openai", "1,200", "3", "1,190", "48.50", "14.9", "49.7"]
    assert table[3].split() == ["bfl", "7", "0", "7", "0.28", "-", "-"]
    assert table[-1].split() == ["total", "1,207", "3", "1,197", "48.78", "-", "-"]
    assert len({len(line) for line in (table[0], table[1], table[-2])}) == 1  # aligned


def test_an_unreachable_database_is_a_one_line_error_not_a_traceback(capsys):
    closed_port = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"

    code = main(["--database-url", closed_port, "stats"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("imagelog stats: cannot use the database postgresql+psycopg://")
    assert "Connection refused" in err and "Traceback" not in err


def test_a_database_file_in_a_folder_that_does_not_exist_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    url = f"sqlite:///{blocker / 'log.db'}"

    code = main(["--database-url", url, "stats"])

    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        f"imagelog stats: cannot use the database {url}: MissingFolder: the folder {blocker} "
        "does not exist; create it, or use another path (imagelog creates only its default "
        "folder)\n"
    )


def test_a_typo_in_a_sqlite_path_creates_no_folders(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'tpyo' / 'deeper' / 'log.db'}"

    code = main(["--database-url", url, "stats"])

    assert code == 1
    assert "MissingFolder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--count", "-5"],
        ["import", "x.jsonl", "--batch-size", "0"],
        ["export", "--since", "yesterday"],
        ["export", "--format", "xml"],
        ["copy"],  # no --to
        ["copy", "--to", "not a database url"],
        ["copy", "--to", "nosuchdb://host/log"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_exit_with_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert "usage: imagelog" in capsys.readouterr().err


def test_a_filter_value_no_call_has_is_named_not_silently_empty(db_url, capsys):
    engine = make_engine(db_url)
    insert_calls(engine, [CallRecord(provider="openai", model="dall-e-3", user="ana")])
    engine.dispose()

    flags = ["--provider", "opneai", "--model", "dall-e-3", "--user", "bob"]

    code = main(["--database-url", db_url, "export", *flags])

    err = capsys.readouterr().err
    assert code == 0
    assert "imagelog export: no call has provider 'opneai'" in err
    assert "no call has user 'bob'" in err
    assert "model" not in err.replace("no call has provider", "")


def test_export_takes_the_cost_filters_of_the_dashboard(db_url, capsys):
    engine = make_engine(db_url)
    insert_calls(
        engine,
        [
            CallRecord(provider="p", cost_usd=0.01, prompt="cheap"),
            CallRecord(provider="p", cost_usd=0.2, prompt="dear"),
        ],
    )
    engine.dispose()

    assert main(["--database-url", db_url, "export", "--min-cost", "0.1"]) == 0

    out = capsys.readouterr().out
    assert '"dear"' in out and '"cheap"' not in out
    with pytest.raises(SystemExit):
        main(["--database-url", db_url, "export", "--max-cost", "nan"])


def test_export_takes_every_filter_of_the_dashboard_statuses_verdicts_and_quick_ranges(
    db_url, capsys
):
    from store.cli import LAST_CHOICES
    from store.queries.filters import QUICK_RANGES
    from store.review import give_verdict
    from store.schema.models import utcnow

    now = utcnow()
    engine = make_engine(db_url)
    insert_calls(
        engine,
        [
            CallRecord(id="1" * 32, provider="p", prompt="recent", created_at=now, images=[]),
            CallRecord(
                id="2" * 32,
                provider="p",
                prompt="old and flagged",
                created_at=now - timedelta(days=3),
                images=[ImageRecord(url="https://x.test/a.png")],
            ),
            CallRecord(
                id="3" * 32,
                provider="p",
                prompt="failed",
                status="error",
                created_at=now - timedelta(days=40),
            ),
        ],
    )
    give_verdict(
        engine, "2" * 32, 0, "flagged", "alice", reason="visual defect (hands, text, artefacts)"
    )
    engine.dispose()

    def exported(*flags: str) -> list[str]:
        assert main(["--database-url", db_url, "export", *flags]) == 0
        return [json.loads(line)["prompt"] for line in capsys.readouterr().out.splitlines()]

    assert list(QUICK_RANGES) == LAST_CHOICES
    assert exported("--last", "24h") == ["recent"]
    assert exported("--last", "7d") == ["recent", "old and flagged"]
    assert exported("--verdict", "flagged") == ["old and flagged"]
    assert exported("--status", "ok", "--status", "error") == [
        "recent",
        "old and flagged",
        "failed",
    ]
    with pytest.raises(SystemExit):
        main(["--database-url", db_url, "export", "--last", "24h", "--since", "2026-01-01"])

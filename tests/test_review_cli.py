"""`imagelog review list / set / trail`, in-process and as a user runs it, on SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from store.capture.writer import insert_calls
from store.cli import main
from store.review import give_verdict
from tests.test_cli import REPO
from tests.test_review import CALLS, CAT, FLAG_REASON, FOX, LAKE


@pytest.fixture
def logged(engine):
    insert_calls(engine, CALLS)
    return engine


def cli(db_url: str, *args: str) -> int:
    return main(["--database-url", db_url, *args])


def run_cli(db_url: str, *args: str, env: dict[str, str] | None = None):
    """`python -m store ...` as a user runs it, with IMAGELOG_DATABASE_URL and `env` set."""
    return subprocess.run(
        [sys.executable, "-m", "store", *args],
        cwd=REPO,
        env={**os.environ, "IMAGELOG_DATABASE_URL": db_url, **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_review_set_then_trail_shows_who_changed_what_from_what_to_what(logged, db_url, capsys):
    assert cli(db_url, "review", "set", CAT, "0", "approved", "--reviewer", "alice") == 0
    given = capsys.readouterr().out
    flagged = cli(
        db_url,
        *("review", "set", CAT, "0", "flagged", "--reviewer", "bob"),
        *("--reason", FLAG_REASON, "--note", "blood on the sofa"),
    )
    capsys.readouterr()

    assert flagged == 0
    assert given.startswith(f"call {CAT} image 0: ") and "alice: unreviewed -> approved" in given
    assert cli(db_url, "review", "trail", CAT) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("image 0  ") and lines[0].endswith("alice: unreviewed -> approved")
    assert lines[1].endswith(f"bob: approved -> flagged ({FLAG_REASON}) — blood on the sofa")


def test_review_trail_of_an_image_without_verdicts_says_so(logged, db_url, capsys):
    give_verdict(logged, CAT, 0, "approved", "alice")

    assert cli(db_url, "review", "trail", CAT, "1") == 0

    assert capsys.readouterr().out == f"no verdict was given to call {CAT} image 1\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["flagged"], "a flagged image needs one of the configured reasons"),
        (["flagged", "--reason", "ugly"], "not the reason 'ugly'; choose from: sexual content"),
        (["approved", "--reason", FLAG_REASON], "only a flagged image takes a reason"),
    ],
)
def test_review_set_refuses_a_verdict_that_cannot_be_given(logged, db_url, capsys, args, message):
    code = cli(db_url, "review", "set", FOX, "0", *args, "--reviewer", "alice")

    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("imagelog review set: ") and message in error
    assert cli(db_url, "review", "trail", FOX) == 0
    assert "no verdict was given" in capsys.readouterr().out


def test_review_set_on_an_image_the_log_does_not_have_is_an_error(logged, db_url, capsys):
    code = cli(db_url, "review", "set", FOX, "4", "approved", "--reviewer", "alice")

    assert code == 1
    assert capsys.readouterr().err == f"imagelog review set: the log has no image 4 in call {FOX}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["review", "set", "a" * 32, "0", "approved"],  # no --reviewer
        ["review", "set", "a" * 32, "0", "fine", "--reviewer", "x"],  # not a verdict
        ["review", "set", "a" * 32, "-1", "approved", "--reviewer", "x"],
        ["review", "list", "--verdict", "ok"],
        ["review"],
    ],
)
def test_bad_review_arguments_exit_with_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)

    assert exit_.value.code == 2
    assert "usage: imagelog review" in capsys.readouterr().err


def test_review_list_shows_each_images_verdict_and_follows_the_filters(logged, db_url, capsys):
    give_verdict(logged, CAT, 0, "flagged", "bob", reason=FLAG_REASON)
    give_verdict(logged, LAKE, 0, "needs_another_look", "alice")

    assert cli(db_url, "review", "list") == 0
    everything = capsys.readouterr().out.splitlines()
    assert cli(db_url, "review", "list", "--provider", "openai", "--verdict", "unreviewed") == 0
    unreviewed = capsys.readouterr().out.splitlines()

    assert everything[0].split()[:4] == ["time", "(UTC)", "call", "image"]
    assert [line.split()[2:4] for line in everything[1:]] == [
        [LAKE, "0"],
        [CAT, "0"],
        [CAT, "1"],
        [FOX, "0"],
    ]
    assert f"flagged ({FLAG_REASON})  bob" in everything[2]
    assert "needs_another_look" in everything[1] and everything[3].endswith("unreviewed")
    assert [line.split()[2:4] for line in unreviewed[1:]] == [[CAT, "1"], [FOX, "0"]]


def test_review_list_says_when_more_images_match_than_it_shows(logged, db_url, capsys):
    assert cli(db_url, "review", "list", "--limit", "2") == 0

    shown = capsys.readouterr()
    assert len(shown.out.splitlines()) == 3
    assert shown.err == "(the newest 2; more match: raise --limit)\n"


def test_a_team_reason_flags_an_image_from_the_command_line(logged, db_url, tmp_path):
    own = tmp_path / "reasons.toml"
    own.write_text('reasons = ["off brand"]\n')

    flagged = run_cli(
        db_url,
        *("review", "set", FOX, "0", "flagged", "--reviewer", "alice", "--reason", "off brand"),
        env={"IMAGELOG_REVIEW_REASONS": str(own)},
    )
    listed = run_cli(db_url, "review", "list", "--verdict", "flagged")

    assert flagged.returncode == 0, flagged.stderr
    assert "alice: unreviewed -> flagged (off brand)" in flagged.stdout
    assert listed.returncode == 0, listed.stderr
    assert "flagged (off brand)  alice" in listed.stdout and FOX in listed.stdout

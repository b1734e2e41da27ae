"""The Recorder's queue, background writer, flush / close, and the drain at exit."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from store import Recorder
from store.schema.models import GENERATIONS, IMAGES
from store.schema.records import CallRecord, ImageRecord
from tests.standins.openai_server import _draw

REPO = Path(__file__).resolve().parents[1]


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_flush_waits_until_every_record_and_thumbnail_is_stored(recorder):
    png = _draw("128x96", "flush")
    for i in range(300):
        recorder.record(CallRecord(provider="p", prompt=str(i), images=[ImageRecord(data=png)]))

    assert recorder.flush(timeout=60)

    assert count(recorder.engine, GENERATIONS) == 300
    with recorder.engine.connect() as connection:
        facts = connection.execute(select(IMAGES.c.thumbnail, IMAGES.c.width)).all()
    assert len(facts) == 300
    assert all(thumbnail and width == 128 for thumbnail, width in facts)


def test_images_with_a_hosted_url_get_their_thumbnail_downloaded(recorder, openai_api):
    url = openai_api.host(_draw("300x200", "hosted"))

    recorder.record(CallRecord(provider="p", images=[ImageRecord(url=url)]))

    assert recorder.flush(timeout=30)
    with recorder.engine.connect() as connection:
        row = connection.execute(select(IMAGES)).mappings().one()
    assert (row["url"], row["width"], row["height"], row["url_state"]) == (url, 300, 200, "live")
    assert row["thumbnail"]


def test_full_size_copies_are_archived_when_asked(db_url, tmp_path):
    png = _draw("64x48", "archive")
    archive = tmp_path / "archive"

    with Recorder(db_url, archive=archive, spool_path=tmp_path / "s.jsonl") as recorder:
        recorder.record(CallRecord(provider="p", images=[ImageRecord(data=png)]))
        assert recorder.flush(timeout=30)
        with recorder.engine.connect() as connection:
            path = connection.execute(select(IMAGES.c.archive_path)).scalar_one()

    sha = hashlib.sha256(png).hexdigest()
    assert path == (archive / sha[:2] / f"{sha}.png").as_uri()
    assert (archive / sha[:2] / f"{sha}.png").read_bytes() == png


def test_no_thumbnails_are_made_when_they_are_turned_off(db_url, tmp_path):
    with Recorder(db_url, thumbnails=False, spool_path=tmp_path / "s.jsonl") as recorder:
        recorder.record(CallRecord(provider="p", images=[ImageRecord(data=_draw("8x8", "t"))]))
        assert recorder.flush(timeout=30)
        with recorder.engine.connect() as connection:
            assert connection.execute(select(IMAGES.c.thumbnail)).scalar_one() is None


def test_something_else_than_a_record_is_logged_and_not_raised(recorder, caplog):
    caplog.set_level(logging.ERROR, logger="store")

    recorder.record("not a call")  # type: ignore[arg-type]
    recorder.record(CallRecord(provider="after"))

    assert recorder.flush(timeout=30)
    assert count(recorder.engine, GENERATIONS) == 1
    assert any("takes a CallRecord, got str" in r.getMessage() for r in caplog.records)


def test_records_after_close_go_to_the_spool_not_into_the_void(db_url, tmp_path):
    recorder = Recorder(db_url, thumbnails=False, spool_path=tmp_path / "s.jsonl")
    recorder.close()

    recorder.record(CallRecord(provider="late"))

    assert recorder.spool.pending()
    assert "late" in recorder.spool.path.read_text()


def test_records_left_in_the_queue_are_written_when_the_program_exits(db_url, tmp_path):
    script = textwrap.dedent(
        f"""
        from store import Recorder, CallRecord, ImageRecord
        from tests.standins.openai_server import _draw
        recorder = Recorder({db_url!r}, spool_path={str(tmp_path / "s.jsonl")!r})
        png = _draw("64x64", "exit")
        for i in range(50):
            recorder.record(CallRecord(provider="exit", images=[ImageRecord(data=png)]))
        # no flush, no close: the drain at exit must do it
        """
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO)}

    subprocess.run([sys.executable, "-c", script], check=True, env=environment, timeout=120)

    with Recorder(db_url, thumbnails=False, spool_path=tmp_path / "s.jsonl") as recorder:
        assert count(recorder.engine, GENERATIONS) == 50
        with recorder.engine.connect() as connection:
            thumbnails = connection.execute(select(IMAGES.c.thumbnail)).scalars().all()
    assert len(thumbnails) == 50 and all(thumbnails)


def test_records_from_threads_still_running_at_exit_reach_the_database(db_url, tmp_path):
    # The drain runs after Python has joined the program's own threads, so it sees their
    # last records; a drain before that join would leave them in the spool.
    script = textwrap.dedent(
        f"""
        import threading, time
        from store import Recorder, CallRecord
        recorder = Recorder({db_url!r}, spool_path={str(tmp_path / "s.jsonl")!r})
        def late():
            time.sleep(0.5)
            recorder.record(CallRecord(provider="late-thread"))
        threading.Thread(target=late).start()
        """
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO)}

    subprocess.run([sys.executable, "-c", script], check=True, env=environment, timeout=120)

    with Recorder(db_url, thumbnails=False, spool_path=tmp_path / "s.jsonl") as recorder:
        assert count(recorder.engine, GENERATIONS) == 1
        assert not recorder.spool.pending()


def test_default_recorder_writes_to_the_configured_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGELOG_DATABASE_URL", raising=False)
    monkeypatch.setenv("IMAGELOG_HOME", str(tmp_path))

    with Recorder(thumbnails=False) as recorder:
        recorder.record(CallRecord(provider="default"))
        assert recorder.flush(timeout=30)

    assert (tmp_path / "imagelog.db").exists()
    assert recorder.spool.path == tmp_path / "imagelog.db.spool.jsonl"


def test_close_returns_within_its_timeout_while_a_thumbnail_download_hangs(
    db_url, tmp_path, image_host, caplog
):
    url = image_host.url(f"/slow?seconds=4&test={uuid.uuid4().hex}")
    recorder = Recorder(db_url, spool_path=tmp_path / "s.jsonl")
    recorder.record(CallRecord(provider="slow-host", images=[ImageRecord(url=url)]))

    started = time.monotonic()
    recorder.close(timeout=1)
    took = time.monotonic() - started

    assert took < 3  # not the 4 s the host takes
    assert "1 image(s) not saved (0 waiting, 1 downloading)" in caplog.text
    assert count(recorder.engine, GENERATIONS) == 1  # the record itself is stored
    assert recorder.thumbnails is not None
    assert recorder.thumbnails.join(timeout=30)  # the download ends on its daemon thread


def test_a_program_with_an_image_pending_on_a_slow_host_exits_within_its_exit_timeout(
    db_url, tmp_path, image_host
):
    # The host trickles its answer, one byte every 0.1 s: 60 s for the download.
    marker = uuid.uuid4().hex
    url = image_host.url(f"/trickle?bytes=600&interval=0.1&test={marker}")
    script = textwrap.dedent(
        f"""
        from store import Recorder, CallRecord, ImageRecord
        recorder = Recorder({db_url!r}, spool_path={str(tmp_path / "s.jsonl")!r}, exit_timeout=3)
        recorder.record(CallRecord(provider="slow-host", images=[ImageRecord(url={url!r})]))
        print(time.time(), flush=True)  # the program's work is done: from here it only exits
        """
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO)}

    done = subprocess.run(
        [sys.executable, "-c", "import time\n" + script],
        env=environment,
        timeout=120,
        capture_output=True,
        text=True,
    )
    exited = time.time()

    assert done.returncode == 0, done.stderr
    # Timed from the end of the program's work, so the time a loaded machine takes to start
    # Python and import the store (seconds, under a parallel test run) is not counted.
    took = exited - float(done.stdout.split()[-1])
    print(f"exit with a download pending, exit_timeout=3: {took:.2f} s")
    assert took < 3 + 3  # the exit timeout, plus the slack of closing the engine and the spool
    assert any(request.query.get("test") == [marker] for request in image_host.requests)
    assert "1 image(s) not saved (0 waiting, 1 downloading)" in done.stderr
    with Recorder(db_url, thumbnails=False, spool_path=tmp_path / "s.jsonl") as recorder:
        assert count(recorder.engine, GENERATIONS) == 1

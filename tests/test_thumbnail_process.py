"""The thumbnail process: thumbnails made in a child of lower priority, exactly as in-process,
and what happens when that child dies or cannot start."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from store.capture.writer import insert_calls
from store.media.thumbnail_process import ThumbnailProcess
from store.media.thumbnail_worker import ThumbnailWorker
from store.media.thumbnails import ImageError, make_thumbnail
from store.schema.models import IMAGES
from store.schema.records import CallRecord, ImageRecord
from tests.standins.image_host import draw_image, png_header_only


@pytest.fixture
def process():
    made = ThumbnailProcess()
    yield made
    made.close(timeout=10)


def test_a_thumbnail_from_the_process_is_the_one_made_in_process(process):
    data = draw_image(1024, 1024, "png")

    facts = process.make(data)

    assert facts == make_thumbnail(data)
    assert process.pid is not None and process.pid != os.getpid()


def test_the_process_runs_at_a_lower_priority_than_its_parent(process):
    process.make(draw_image(64, 64, "png"))

    assert process.pid is not None
    assert os.getpriority(os.PRIO_PROCESS, process.pid) > os.getpriority(os.PRIO_PROCESS, 0)


def test_the_process_refuses_what_make_thumbnail_refuses(process):
    with pytest.raises(ImageError, match="decompression bomb refused"):
        process.make(png_header_only(20_000, 20_000))
    with pytest.raises(ImageError, match=r"not an image \(HTML"):
        process.make(b"<html><body>denied</body></html>")

    assert process.make(draw_image(64, 64, "png")).width == 64  # and goes on serving


def test_a_process_that_dies_fails_its_image_and_a_new_one_serves_the_next(process):
    process.make(draw_image(64, 64, "png"))
    first = process.pid
    assert first is not None

    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process.pid == first and time.monotonic() < deadline:
        time.sleep(0.02)  # until the parent has seen it end
    facts = process.make(draw_image(80, 80, "png"))

    assert facts.width == 80
    assert process.pid not in (None, first)


def test_close_ends_the_process(process):
    process.make(draw_image(64, 64, "png"))
    pid = process.pid
    assert pid is not None

    process.close(timeout=10)

    assert process.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no such process any more


def test_without_a_python_to_start_thumbnails_are_made_in_process(monkeypatch, caplog):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    process = ThumbnailProcess()
    data = draw_image(64, 64, "png")

    facts = process.make(data)

    assert facts == make_thumbnail(data)
    assert process.pid is None
    assert "thumbnails are made in this process" in caplog.text


def test_the_worker_stops_its_process_when_it_closes(engine):
    record = CallRecord(provider="p", images=[ImageRecord(data=draw_image(64, 64, "png"))])
    insert_calls(engine, [record])

    with ThumbnailWorker(engine) as worker:
        worker.submit(record.id, 0, None, record.images[0].data)
        assert worker.join(timeout=60)
        pid = worker.process.pid

    assert pid is not None and worker.process.pid is None
    with engine.connect() as connection:
        sha256 = connection.scalar(select(IMAGES.c.sha256))
    assert sha256 == hashlib.sha256(record.images[0].data or b"").hexdigest()


def test_the_child_ends_when_its_parent_does(tmp_path):
    # A parent killed outright never closes its worker: the pipe's end stops the child.
    script = (
        "from store.media.thumbnail_process import ThumbnailProcess\n"
        "from tests.standins.image_host import draw_image\n"
        "process = ThumbnailProcess()\n"
        "process.make(draw_image(64, 64, 'png'))\n"
        "print(process.pid, flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())

    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _exists(child):
        time.sleep(0.05)

    assert not _exists(child)


def _exists(pid: int) -> bool:
    """Whether `pid` runs (a zombie, ended but not reaped by its adopter yet, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False

"""The thumbnail worker against the loopback image host and a real database (SQLite and PostgreSQL):
what lands in the `images` row for each way a download can go, down the one path
(`store.media.saving.save_image`) that the recorder, `imagelog thumbnails` and `check` share."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, select, update

from store import Recorder
from store.capture.writer import insert_calls
from store.cli import main
from store.media.archive import Archive
from store.media.retry import retry_missing_thumbnails
from store.media.thumbnail_worker import ThumbnailWorker
from store.schema.models import IMAGES, Image, UrlState
from store.schema.records import CallRecord, ImageRecord
from tests.standins import image_host as image_host_routes
from tests.standins.image_host import draw_image
from tests.standins.server import LoopbackServer


def record_call(engine: Engine, *images: ImageRecord) -> str:
    record = CallRecord(
        provider="openai", model="dall-e-3", prompt="a lighthouse", images=list(images)
    )
    insert_calls(engine, [record])
    return record.id


def image_row(engine: Engine, generation_id: str, position: int = 0):
    query = select(IMAGES).where(
        IMAGES.c.generation_id == generation_id, IMAGES.c.position == position
    )
    with engine.connect() as connection:
        return connection.execute(query).one()


def run_jobs(engine: Engine, jobs: list[tuple[str, int, str | None, bytes | None]], **options):
    with ThumbnailWorker(engine, **options) as worker:
        for job in jobs:
            worker.submit(*job)
        assert worker.join(timeout=60)


def test_url_image_gets_a_thumbnail_and_is_marked_live(engine, image_host):
    url = image_host.url("/img/lighthouse.png?w=1024&h=1024")
    generation_id = record_call(engine, ImageRecord(url=url))

    run_jobs(engine, [(generation_id, 0, url, None)])

    row = image_row(engine, generation_id)
    original = httpx.get(url).content
    assert row.sha256 == hashlib.sha256(original).hexdigest()
    assert (row.width, row.height, row.format, row.byte_size) == (1024, 1024, "png", len(original))
    assert row.thumbnail.startswith(b"RIFF") and row.thumbnail[8:12] == b"WEBP"
    assert row.thumbnail_error is None
    assert row.url_state == UrlState.live
    assert row.last_http_status == 200
    assert row.last_checked_at is not None


def test_b64_image_is_thumbnailed_from_its_bytes_without_a_download(engine, image_host):
    data = draw_image(1536, 1024, "png")
    generation_id = record_call(engine, ImageRecord(data=data))
    requests_before = len(image_host.requests)

    run_jobs(engine, [(generation_id, 0, None, data)])

    row = image_row(engine, generation_id)
    assert (row.width, row.height, row.sha256) == (1536, 1024, hashlib.sha256(data).hexdigest())
    assert row.thumbnail is not None
    assert row.url_state == UrlState.none
    assert row.last_checked_at is None
    assert len(image_host.requests) == requests_before


@pytest.mark.parametrize(
    ("path", "error_code"),
    [
        ("/status/403?style=azure", "AuthenticationFailed"),
        ("/status/404?style=s3", "NoSuchKey"),
        ("/status/410?style=azure", "BlobNotFound"),
    ],
)
def test_gone_url_is_marked_expired_with_the_host_error_code(engine, image_host, path, error_code):
    url = image_host.url(path)
    generation_id = record_call(engine, ImageRecord(url=url))

    run_jobs(engine, [(generation_id, 0, url, None)])

    row = image_row(engine, generation_id)
    assert row.url_state == UrlState.expired
    assert row.last_error_code == error_code
    assert row.last_http_status == int(path[8:11])
    assert row.thumbnail is None
    assert error_code in row.thumbnail_error


@pytest.mark.parametrize("path", ["/status/503?style=azure", "/status/500?style=s3", "/reset"])
def test_transient_failure_leaves_the_url_unknown_and_counts_it(engine, image_host, path):
    url = image_host.url(path)
    generation_id = record_call(engine, ImageRecord(url=url))

    run_jobs(engine, [(generation_id, 0, url, None)])

    row = image_row(engine, generation_id)
    assert row.url_state == UrlState.unknown
    assert row.check_failures == 1
    assert row.thumbnail is None
    assert row.thumbnail_error.startswith("download failed")


def test_read_timeout_leaves_the_url_unknown(engine, image_host):
    url = image_host.url("/slow?seconds=3")
    generation_id = record_call(engine, ImageRecord(url=url))
    client = httpx.Client(timeout=httpx.Timeout(5.0, read=0.3))

    run_jobs(engine, [(generation_id, 0, url, None)], client=client)
    client.close()

    row = image_row(engine, generation_id)
    assert row.url_state == UrlState.unknown
    assert "timed out" in row.thumbnail_error


def test_content_that_is_not_an_image_is_recorded_as_an_error(engine, image_host):
    url = image_host.url("/not-an-image")
    generation_id = record_call(engine, ImageRecord(url=url))

    run_jobs(engine, [(generation_id, 0, url, None)])

    row = image_row(engine, generation_id)
    assert row.thumbnail is None
    assert row.thumbnail_error == "not an image (HTML, 60 bytes) (served as text/html)"
    assert row.url_state == UrlState.live  # the host answered: the URL itself is alive


def test_download_over_the_size_limit_is_stopped_and_recorded(engine, image_host):
    url = image_host.url("/big?bytes=3000000")
    generation_id = record_call(engine, ImageRecord(url=url))

    run_jobs(engine, [(generation_id, 0, url, None)], max_bytes=1_000_000)

    row = image_row(engine, generation_id)
    assert row.thumbnail is None
    assert "over the 1000000 byte limit" in row.thumbnail_error


def test_submit_returns_before_the_download_and_join_waits_for_it(engine, image_host):
    url = image_host.url("/slow?seconds=1")
    generation_id = record_call(engine, ImageRecord(url=url))

    with ThumbnailWorker(engine) as worker:
        worker.submit(generation_id, 0, url, None)
        stored_before_join = image_row(engine, generation_id).thumbnail
        finished_at_once = worker.join(timeout=0)
        finished = worker.join(timeout=30)

    assert stored_before_join is None
    assert finished_at_once is False
    assert finished is True
    assert image_row(engine, generation_id).thumbnail is not None


@pytest.fixture
def slow_host() -> Iterator[LoopbackServer]:
    """A second image host of its own, so the requests it saw are this test's alone."""
    with LoopbackServer(image_host_routes.route) as server:
        yield server


def wait_for_thumbnail(engine: Engine, generation_id: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if image_row(engine, generation_id).thumbnail is not None:
            return True
        time.sleep(0.05)
    return False


def test_a_slow_host_takes_two_threads_and_another_hosts_image_is_saved_meanwhile(
    engine, image_host, slow_host
):
    slow = [slow_host.url(f"/slow?seconds=2&image={index}") for index in range(4)]
    slow_ids = [record_call(engine, ImageRecord(url=url)) for url in slow]
    fast = image_host.url("/img/meanwhile.png?w=320&h=200")
    fast_id = record_call(engine, ImageRecord(url=fast))

    with ThumbnailWorker(engine, workers=4) as worker:
        for generation_id, url in zip(slow_ids, slow, strict=True):
            worker.submit(generation_id, 0, url, None)
        worker.submit(fast_id, 0, fast, None)

        fast_saved = wait_for_thumbnail(engine, fast_id)
        slow_saved_by_then = [image_row(engine, i).thumbnail is not None for i in slow_ids]
        slow_requests_by_then = len(slow_host.requests)
        assert worker.join(timeout=60)

    assert fast_saved
    assert slow_saved_by_then == [False] * 4  # the fast image did not queue behind them
    assert slow_requests_by_then == 2  # the other two waited for their host's turn
    assert all(image_row(engine, i).thumbnail is not None for i in slow_ids)


def test_close_returns_within_its_timeout_and_counts_the_images_it_drops(engine, slow_host, caplog):
    caplog.set_level(logging.WARNING, logger="store")
    urls = [slow_host.url(f"/slow?seconds=3&image={index}") for index in range(3)]
    ids = [record_call(engine, ImageRecord(url=url)) for url in urls]
    worker = ThumbnailWorker(engine, workers=4)
    for generation_id, url in zip(ids, urls, strict=True):
        worker.submit(generation_id, 0, url, None)

    started = time.monotonic()
    worker.close(timeout=0.5)
    took = time.monotonic() - started

    assert took < 2.5  # not the 3 s the host takes
    assert "3 image(s) not saved (1 waiting, 2 downloading)" in caplog.text
    assert all(image_row(engine, i).thumbnail is None for i in ids)
    assert worker.join(timeout=30)  # the two downloads end on their daemon threads


def test_image_without_a_row_is_dropped_at_once_with_a_warning(engine, caplog):
    with ThumbnailWorker(engine) as worker:
        worker.submit("0" * 32, 0, None, draw_image(64, 64, "png"))

        finished = worker.join(timeout=30)

    assert finished is True
    assert "has no row: its thumbnail is dropped" in caplog.text


def row_exists(engine: Engine, generation_id: str, position: int) -> bool:
    query = select(IMAGES.c.id).where(
        IMAGES.c.generation_id == generation_id, IMAGES.c.position == position
    )
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def watch_submits(recorder: Recorder, monkeypatch) -> list[bool]:
    """Whether each image's row existed when the recorder submitted it to its worker."""
    worker = recorder.thumbnails
    assert worker is not None
    submit, seen = worker.submit, []

    def checking_submit(generation_id, position, url, data):
        seen.append(row_exists(recorder.engine, generation_id, position))
        submit(generation_id, position, url, data)

    monkeypatch.setattr(worker, "submit", checking_submit)
    return seen


def test_the_recorder_submits_an_image_only_once_its_row_is_inserted(recorder, monkeypatch):
    # The worker stores into an existing row and never waits for one: this is why it need not.
    seen = watch_submits(recorder, monkeypatch)
    png = draw_image(64, 64, "png")

    for index in range(20):
        recorder.record(
            CallRecord(provider="p", prompt=str(index), images=[ImageRecord(data=png)] * 2)
        )

    assert recorder.flush(timeout=60)
    assert seen == [True] * 40
    with recorder.engine.connect() as connection:
        thumbnails = connection.execute(select(IMAGES.c.thumbnail)).scalars().all()
    assert len(thumbnails) == 40 and all(thumbnails)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite takes any integer
def test_records_written_one_by_one_after_a_refused_batch_get_their_thumbnails(
    recorder, monkeypatch
):
    seen = watch_submits(recorder, monkeypatch)
    png = draw_image(64, 64, "png")
    good = [CallRecord(provider="good", images=[ImageRecord(data=png)]) for _ in range(3)]
    # Past validation (model_copy skips it), refused by the database: http_status is 32-bit.
    bad = good[0].model_copy(update={"id": "b" * 32, "http_status": 2**40})

    for record in [good[0], bad, *good[1:]]:
        recorder.record(record)

    assert not recorder.flush(timeout=60)  # the refused record is not stored
    assert seen == [True] * 3
    for record in good:
        assert image_row(recorder.engine, record.id).thumbnail is not None


def test_archive_keeps_the_original_bytes_under_their_sha256(engine, image_host, tmp_path):
    url = image_host.url("/img/archived.webp?w=800&h=600")
    generation_id = record_call(engine, ImageRecord(url=url))

    run_jobs(engine, [(generation_id, 0, url, None)], archive=Archive(tmp_path / "archive"))

    row = image_row(engine, generation_id)
    archived = tmp_path / "archive" / row.sha256[:2] / f"{row.sha256}.webp"
    assert row.archive_path == archived.as_uri()
    assert hashlib.sha256(archived.read_bytes()).hexdigest() == row.sha256


def test_submit_after_close_is_dropped_without_raising(engine, caplog):
    worker = ThumbnailWorker(engine)
    worker.close()

    worker.submit("0" * 32, 0, None, b"late")

    assert worker.join(timeout=1)
    assert "not processed" in caplog.text


def test_retry_fills_missing_thumbnails_and_skips_known_expired_urls(engine, image_host):
    live = image_host.url("/img/retry.jpg?w=640&h=480")
    gone = image_host.url("/status/404?style=s3")
    already_expired = image_host.url("/img/never-fetched.png")
    generation_id = record_call(
        engine, ImageRecord(url=live), ImageRecord(url=gone), ImageRecord(url=already_expired)
    )
    with engine.begin() as connection:
        connection.execute(
            update(IMAGES)
            .where(IMAGES.c.generation_id == generation_id, IMAGES.c.position == 2)
            .values(url_state=UrlState.expired.value)
        )
    requests_before = len(image_host.requests)
    progress: list[tuple[int, int | None]] = []

    summary = retry_missing_thumbnails(
        engine, on_progress=lambda done, total: progress.append((done, total))
    )

    assert (summary.attempted, summary.stored, summary.failed, summary.expired) == (2, 1, 1, 1)
    assert progress == [(0, 2), (1, 2), (2, 2)]
    assert image_row(engine, generation_id, 0).thumbnail is not None
    assert image_row(engine, generation_id, 1).url_state == UrlState.expired
    assert image_row(engine, generation_id, 2).thumbnail is None
    assert len(image_host.requests) == requests_before + 2


def test_retry_honours_the_limit(engine, image_host):
    urls = [image_host.url(f"/img/limit{index}.png?w=100&h=100") for index in range(3)]
    record_call(engine, *(ImageRecord(url=url) for url in urls))

    summary = retry_missing_thumbnails(engine, limit=2)

    assert summary.attempted == 2
    with engine.connect() as connection:
        missing = connection.execute(select(Image.id).where(Image.thumbnail.is_(None))).all()
    assert len(missing) == 1


def test_thumbnails_command_retries_missing_ones_and_prints_a_summary(
    db_url, engine, image_host, capsys
):
    url = image_host.url("/img/cli.png?w=300&h=300")
    generation_id = record_call(engine, ImageRecord(url=url))

    exit_code = main(["--database-url", db_url, "thumbnails", "--no-progress"])

    assert exit_code == 0
    assert capsys.readouterr().out.strip() == (
        "1 images tried: 1 thumbnails stored, 0 failed (0 of them expired)"
    )
    assert image_row(engine, generation_id).thumbnail is not None

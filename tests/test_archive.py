"""Originals in object storage: every full-size original kept by content in an fsspec location,
against moto's S3 server on loopback and a local folder, on both databases."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import socket
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from store import Recorder
from store.cli import main
from store.media.archive import Archive, ArchiveError, BadLocation, archive_key
from store.media.archive_missing import Result, archive_missing
from store.media.network_guard import ALLOWED_NETWORKS_ENV
from store.schema.models import IMAGES
from store.schema.records import CallRecord, ImageRecord
from store.transfer.jsonl import parse_line
from tests.standins.image_host import draw_image
from tests.standins.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3StandIn


@pytest.fixture(autouse=True)
def own_data_folder(tmp_path, monkeypatch):
    """The pending folder lives in the data folder: each test gets its own."""
    monkeypatch.setenv("IMAGELOG_HOME", str(tmp_path / "home"))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


def record(db_url: str, tmp_path: Path, images: list[ImageRecord], **options) -> Recorder:
    """Record one call per image and wait until every thumbnail and original is stored."""
    with Recorder(db_url, spool_path=tmp_path / "spool.jsonl", **options) as recorder:
        for image in images:
            recorder.record(CallRecord(provider="openai", model="gpt-image-1", images=[image]))
        assert recorder.flush(timeout=60)
    return recorder


def image_rows(recorder: Recorder) -> list:
    with recorder.engine.connect() as connection:
        return list(connection.execute(select(IMAGES).order_by(IMAGES.c.id)).mappings())


def stored_objects(location: str, s3: S3StandIn | None) -> dict[str, bytes]:
    """Every object under the archive location, by its key below the location."""
    if location.startswith("s3://"):
        assert s3 is not None
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        return {key.removeprefix(f"{prefix}/"): s3.get(bucket, key) for key in s3.keys(bucket)}
    root = Path(location)
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def location_url(location: str) -> str:
    return location if "://" in location else Path(location).resolve().as_uri()


# --- keeping --------------------------------------------------------------------------------


def test_a_repeated_image_is_stored_once_and_each_row_says_where(
    db_url, tmp_path, archive_location, request
):
    png = draw_image(320, 200, "png")
    sha = hashlib.sha256(png).hexdigest()
    s3 = request.getfixturevalue("s3_server") if archive_location.startswith("s3") else None

    recorder = record(
        db_url,
        tmp_path,
        [ImageRecord(data=png), ImageRecord(b64_json=base64.b64encode(png).decode())],
        archive=archive_location,
        thumbnail_workers=1,  # one after the other: the second finds the first's copy
    )

    rows = image_rows(recorder)
    expected = f"{location_url(archive_location)}/{sha[:2]}/{sha}.png"
    assert [row["archive_path"] for row in rows] == [expected, expected]
    assert all(row["thumbnail"] and row["archive_error"] is None for row in rows)
    assert stored_objects(archive_location, s3) == {f"{sha[:2]}/{sha}.png": png}
    if s3 is not None:
        assert s3.methods["PUT"] == 1  # looked up before upload: the repeat was not sent


def test_a_hosted_image_is_archived_on_the_save_path(db_url, tmp_path, s3_bucket, image_host):
    url = image_host.url("/img/hosted.jpg?w=640&h=480")

    recorder = record(db_url, tmp_path, [ImageRecord(url=url)], archive=f"s3://{s3_bucket}/o")

    [row] = image_rows(recorder)
    assert row["url_state"] == "live" and row["format"] == "jpeg"
    assert row["archive_path"] == f"s3://{s3_bucket}/o/{row['sha256'][:2]}/{row['sha256']}.jpg"
    assert Archive(f"s3://{s3_bucket}/o").read(row["archive_path"], row["sha256"])


def test_imagelog_archive_environment_variable_turns_archiving_on(
    db_url, tmp_path, s3_bucket, monkeypatch
):
    monkeypatch.setenv("IMAGELOG_ARCHIVE", f"s3://{s3_bucket}/from-env")
    png = draw_image(64, 64, "png")

    recorder = record(db_url, tmp_path, [ImageRecord(data=png)])

    [row] = image_rows(recorder)
    assert row["archive_path"].startswith(f"s3://{s3_bucket}/from-env/")


def test_a_store_that_is_down_costs_the_original_not_the_thumbnail_and_archive_missing_retries(
    db_url, tmp_path, s3_bucket, s3_server, capsys
):
    png = draw_image(200, 100, "png")
    sha = hashlib.sha256(png).hexdigest()
    location = f"s3://{s3_bucket}/originals"
    down = {"endpoint_url": f"http://127.0.0.1:{closed_port()}"}

    recorder = record(
        db_url, tmp_path, [ImageRecord(data=png)], archive=location, archive_options=down
    )

    [row] = image_rows(recorder)
    assert row["thumbnail"] and row["sha256"] == sha  # the thumbnail is stored all the same
    assert row["archive_path"] is None
    assert row["archive_error"].startswith(f"not archived: cannot write to {location}: ")
    assert "Could not connect" in row["archive_error"]
    assert "archive --missing" in row["archive_error"]
    assert s3_server.keys(s3_bucket) == []

    # The store is back (the environment's endpoint): the base64 original waited locally.
    code = main(["--database-url", db_url, "archive", "--missing", "--archive", location])

    assert code == 0
    assert "1 archived (0 already held, 1 from the pending folder" in capsys.readouterr().out
    [row] = image_rows(recorder)
    assert row["archive_path"] == f"{location}/{sha[:2]}/{sha}.png"
    assert row["archive_error"] is None
    assert s3_server.get(s3_bucket, f"originals/{sha[:2]}/{sha}.png") == png
    assert not list((tmp_path / "home" / "archive-pending").rglob("*.png"))  # dropped once up


# --- imagelog archive --missing ---------------------------------------------------------------


def test_archive_missing_downloads_live_urls_through_the_guard_and_links_known_content(
    db_url, tmp_path, s3_bucket, image_host, capsys
):
    live = image_host.url("/img/first.png?w=300&h=300")
    again = image_host.url("/img/first.png?w=300&h=300&copy=1")  # same bytes, other URL
    png = draw_image(40, 40, "png")
    recorder = record(
        db_url,
        tmp_path,
        [ImageRecord(url=live), ImageRecord(url=again), ImageRecord(data=png)],
        thumbnail_workers=1,
    )  # archiving was off
    location = f"s3://{s3_bucket}/later"

    code = main(
        ["--database-url", db_url, "archive", "--missing", "--archive", location, "--workers", "1"]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "3 images without an archived original: 2 archived (1 already held" in out
    assert "1 downloaded" in out and "1 lost" in out  # base64, never kept: nothing to take
    first, second, b64 = image_rows(recorder)
    assert first["archive_path"] == second["archive_path"]
    assert first["archive_path"] == f"{location}/{first['sha256'][:2]}/{first['sha256']}.png"
    assert b64["archive_path"] is None


def test_archive_missing_reports_progress_image_by_image(db_url, tmp_path, s3_bucket):
    images = [ImageRecord(data=draw_image(30 + index, 30, "png")) for index in range(3)]
    down = {"endpoint_url": f"http://127.0.0.1:{closed_port()}"}
    recorder = record(db_url, tmp_path, images, archive=f"s3://{s3_bucket}/p", archive_options=down)
    seen: list[tuple[int, int | None]] = []

    summary = archive_missing(
        recorder.engine,
        Archive(f"s3://{s3_bucket}/p"),
        workers=2,
        on_progress=lambda done, total: seen.append((done, total)),
    )

    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert summary.counts == {Result.uploaded: 3}
    assert all(row["archive_path"] for row in image_rows(recorder))


def test_archive_missing_requests_no_url_known_expired(db_url, tmp_path, s3_bucket, image_host):
    marker = uuid.uuid4().hex
    url = image_host.url(f"/img/gone.png?w=64&h=64&test={marker}")
    recorder = record(db_url, tmp_path, [ImageRecord(url=url)], thumbnails=False)
    with recorder.engine.begin() as connection:
        connection.execute(update(IMAGES).values(url_state="expired"))

    code = main(
        ["--database-url", db_url, "archive", "--missing", "--archive", f"s3://{s3_bucket}/x"]
    )

    assert code == 0
    assert not any(request.query.get("test") == [marker] for request in image_host.requests)
    [row] = image_rows(recorder)
    assert row["archive_path"] is None and row["archive_error"] is None


def test_archive_missing_asks_the_network_guard(
    db_url, tmp_path, s3_bucket, image_host, monkeypatch
):
    url = image_host.url("/img/guarded.png?w=64&h=64")
    recorder = record(db_url, tmp_path, [ImageRecord(url=url)])
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "")  # loopback is no public address

    code = main(
        ["--database-url", db_url, "archive", "--missing", "--archive", f"s3://{s3_bucket}/g"]
    )

    assert code == 1
    [row] = image_rows(recorder)
    assert row["archive_path"] is None
    assert "refused" in row["archive_error"] and "loopback" in row["archive_error"]


def test_archive_missing_keeps_no_bytes_a_url_now_serves_instead_of_the_recorded_ones(
    db_url, tmp_path, s3_bucket, image_host
):
    url = image_host.url("/img/changed.png?w=64&h=64")
    recorder = record(db_url, tmp_path, [ImageRecord(url=url)])
    with recorder.engine.begin() as connection:
        connection.execute(update(IMAGES).values(sha256="ab" * 32))

    code = main(
        ["--database-url", db_url, "archive", "--missing", "--archive", f"s3://{s3_bucket}/c"]
    )

    assert code == 1
    [row] = image_rows(recorder)
    assert row["archive_path"] is None
    assert "the URL now serves other bytes" in row["archive_error"]


def test_archive_missing_without_a_location_says_how_to_give_one(db_url, capsys, monkeypatch):
    monkeypatch.delenv("IMAGELOG_ARCHIVE", raising=False)

    assert main(["--database-url", db_url, "archive", "--missing"]) == 1
    assert "give --archive LOCATION or set IMAGELOG_ARCHIVE" in capsys.readouterr().err


# --- hostile locations and keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        f"s3://{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}@bucket/prefix",
        f"s3://bucket/prefix?X-Amz-Credential={ACCESS_KEY_ID}&X-Amz-Signature={SECRET_ACCESS_KEY}",
        f"abfs://container/prefix?sv=2024&sig={SECRET_ACCESS_KEY}",
        "s3://bucket/prefix/../other",
        "../escape",
        "https://example.com/originals",
        "simplecache::s3://bucket/prefix",
    ],
)
def test_a_location_with_credentials_or_dot_segments_is_refused_without_echoing_it(location):
    with pytest.raises(BadLocation) as refused:
        Archive(location)

    assert SECRET_ACCESS_KEY not in str(refused.value)
    assert ACCESS_KEY_ID not in str(refused.value)


def test_the_recorder_refuses_a_bad_location_before_recording(db_url, tmp_path):
    with pytest.raises(ValueError, match="no password"):
        Recorder(db_url, archive=f"s3://{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}@b/p")


def test_a_key_is_made_from_a_sha256_only():
    with pytest.raises(ArchiveError):
        archive_key("../../etc/passwd", "png")
    assert archive_key("a" * 64, "../x") == f"aa/{'a' * 64}.bin"


def test_reads_stay_inside_the_archive_and_check_the_bytes(s3_bucket, s3_server):
    png = draw_image(32, 32, "png")
    sha = hashlib.sha256(png).hexdigest()
    archive = Archive(f"s3://{s3_bucket}/originals")
    url = archive.store(sha, "png", png)
    s3_server.put(s3_bucket, f"secret/{sha[:2]}/{sha}.png", png)
    s3_server.put(s3_bucket, f"originalsevil/{sha[:2]}/{sha}.png", png)

    assert archive.read(url, sha) == png
    for outside in [
        f"s3://{s3_bucket}/originals/../secret/{sha[:2]}/{sha}.png",
        f"s3://{s3_bucket}/originalsevil/{sha[:2]}/{sha}.png",
        f"s3://{s3_bucket}/secret/{sha[:2]}/{sha}.png",
        f"s3://{s3_bucket}/originals/{sha[:2]}/{sha}.png/../../x",
        f"s3://{s3_bucket}/originals/zz/{sha}.png",
    ]:
        with pytest.raises(ArchiveError, match="not an original of the archive"):
            archive.read(outside)
    with pytest.raises(ArchiveError, match="does not match the image's sha256"):
        archive.read(url, "b" * 64)
    s3_server.put(s3_bucket, f"originals/{sha[:2]}/{sha}.png", png + b"tampered")
    with pytest.raises(ArchiveError, match="no longer matches its sha256"):
        archive.read(url, sha)


@pytest.mark.parametrize(
    "archive_path",
    [
        f"s3://{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}@bucket/ab/x.png",
        f"s3://bucket/ab/x.png?X-Amz-Signature={SECRET_ACCESS_KEY}",
        "s3://bucket/prefix/../../x.png",
    ],
)
def test_an_imported_line_with_a_credential_in_its_archive_path_is_refused(archive_path):
    line = json.dumps(
        {
            "provider": "openai",
            "images": [{"url": "https://x.test/a.png", "archive_path": archive_path}],
        }
    )

    with pytest.raises(ValueError, match="archive location"):
        parse_line(line)


def test_credentials_of_the_store_never_reach_the_log(db_url, tmp_path, s3_bucket):
    png = draw_image(48, 48, "png")

    recorder = record(db_url, tmp_path, [ImageRecord(data=png)], archive=f"s3://{s3_bucket}/o")

    assert main(["--database-url", db_url, "export", "-o", str(tmp_path / "log.jsonl")]) == 0
    exported = (tmp_path / "log.jsonl").read_text()
    [row] = image_rows(recorder)
    assert row["archive_path"].startswith(f"s3://{s3_bucket}/o/")
    assert f"s3://{s3_bucket}/o/" in exported
    assert SECRET_ACCESS_KEY not in exported and ACCESS_KEY_ID not in exported


# --- export, import, copy -------------------------------------------------------------------------


def test_export_import_and_copy_carry_where_each_original_is_kept(
    db_url, fresh_db_url, tmp_path, s3_bucket
):
    location = f"s3://{s3_bucket}/originals"
    png = draw_image(80, 60, "png")
    recorder = record(db_url, tmp_path, [ImageRecord(data=png)], archive=location)
    [recorded] = image_rows(recorder)
    exported = tmp_path / "log.jsonl"
    imported_url, copied_url = fresh_db_url("sqlite"), fresh_db_url("postgresql")

    assert main(["--database-url", db_url, "export", "-o", str(exported)]) == 0
    assert main(["--database-url", imported_url, "import", str(exported), "--no-progress"]) == 0
    assert main(["--database-url", imported_url, "copy", "--to", copied_url, "--no-progress"]) == 0

    for url in (imported_url, copied_url):
        with Recorder(url, thumbnails=False, spool_path=tmp_path / "s.jsonl") as elsewhere:
            [row] = image_rows(elsewhere)
        assert row["archive_path"] == recorded["archive_path"]
        assert Archive(location).read(row["archive_path"], row["sha256"]) == png


def test_an_archive_travels_to_another_process_as_its_location(tmp_path, s3_bucket):
    archive = Archive(f"s3://{s3_bucket}/p", pending_dir=tmp_path / "pending")
    png = draw_image(20, 20, "png")
    sha = hashlib.sha256(png).hexdigest()
    archive.store(sha, "png", png)  # its filesystem is open now

    copy = pickle.loads(pickle.dumps(archive))

    assert (copy.root, copy.pending_dir) == (archive.root, archive.pending_dir)
    assert copy.find(sha, "png") == f"s3://{s3_bucket}/p/{sha[:2]}/{sha}.png"

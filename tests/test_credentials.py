"""Content credentials (C2PA): images signed in the test under a certificate chain made in the
test, served by the loopback image host (or given as base64), recorded by a real Recorder,
read on the save path and stored in the image's row, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from store.media.credentials import TRUST_ANCHORS_ENV, describe, read_credentials
from store.queries import LogFilter, count_logs
from store.schema.models import IMAGES
from tests.standins.c2pa_signer import sign, signing_chain, tampered, with_broken_manifest
from tests.standins.image_host import draw_image, publish


def record_images(recorder, urls=(), datas=()) -> list:
    with recorder.track(provider="openai", model="dall-e-3", prompt="a lighthouse") as call:
        for url in urls:
            call.add_image(url=url)
        for data in datas:
            call.add_image(b64=base64.b64encode(data).decode())
    assert recorder.flush(timeout=60)
    with recorder.engine.connect() as connection:
        return list(connection.execute(select(IMAGES).order_by(IMAGES.c.position)).mappings())


def test_a_signed_image_from_its_host_reads_valid_with_who_signed_and_what_made_it(
    recorder, image_host
):
    url = image_host.url(publish("signed.png", sign(draw_image(640, 640, "png"))))

    (row,) = record_images(recorder, urls=[url])

    assert row["thumbnail"] is not None and row["thumbnail_error"] is None
    assert row["c2pa_state"] == "valid"
    assert (row["c2pa_issuer"], row["c2pa_generator"]) == ("OpenAI", "DALL·E 3 1.0")
    assert row["c2pa_actions_json"] == [
        {
            "action": "c2pa.created",
            "software_agent": "DALL·E 3",
            "source": "trainedAlgorithmicMedia",
        }
    ]
    assert row["c2pa_signed_at"] is None  # no timestamp authority countersigned it
    assert row["c2pa_error"] is None
    assert describe(
        row["c2pa_state"], row["c2pa_issuer"], row["c2pa_generator"], row["c2pa_actions_json"]
    ) == ("signed by OpenAI, created by DALL·E 3 (a generative model), valid")


def test_tampered_absent_and_broken_credentials_are_told_apart_and_the_images_kept(
    recorder, image_host
):
    signed = sign(draw_image(600, 400, "png"))
    urls = [
        image_host.url(publish("tampered.png", tampered(signed))),
        image_host.url(publish("broken-manifest.png", with_broken_manifest(signed))),
        image_host.url("/img/unsigned.png?w=300&h=200"),
    ]

    rows = record_images(recorder, urls=urls)

    assert [row["c2pa_state"] for row in rows] == ["invalid", "invalid", "none"]
    assert rows[0]["c2pa_error"] == "failed: assertion.dataHash.mismatch"
    assert rows[0]["c2pa_issuer"] == "OpenAI"  # still says who signed what was changed
    assert rows[1]["c2pa_error"].startswith("unreadable manifest: ")
    assert rows[2]["c2pa_error"] is None and rows[2]["c2pa_issuer"] is None
    assert all(row["thumbnail"] is not None and row["url_state"] == "live" for row in rows)


def test_a_base64_image_is_read_from_its_bytes(recorder):
    signed_jpeg = sign(draw_image(512, 512, "jpg"), "image/jpeg", generator="gpt-image-1")

    (row,) = record_images(recorder, datas=[signed_jpeg])

    assert (row["c2pa_state"], row["format"]) == ("valid", "jpeg")
    assert row["c2pa_generator"] == "gpt-image-1 1.0"


def test_a_signer_under_a_given_trust_anchor_reads_trusted(monkeypatch, tmp_path):
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(signing_chain().root)
    signed = sign(draw_image(256, 256, "png"))
    assert read_credentials(signed, "png").state == "valid"

    monkeypatch.setenv(TRUST_ANCHORS_ENV, str(anchors))

    assert read_credentials(signed, "png").state == "trusted"
    assert read_credentials(tampered(signed), "png").state == "invalid"


@pytest.mark.parametrize(
    "junk",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature and nothing sound after it
        b"\xff\xd8\xff\xe1\x00\x10" + b"JUMBF?" * 20,  # a JPEG APP1 that is no manifest
    ],
)
def test_bytes_the_reader_chokes_on_give_a_reason_never_an_exception(junk):
    found = read_credentials(junk, "png" if junk.startswith(b"\x89") else "jpeg")

    assert found is not None and found.state in ("invalid", "none")


def test_credentials_filter_counts_calls_by_what_their_images_say(recorder, image_host):
    signed = sign(draw_image(320, 320, "png"))
    record_images(recorder, urls=[image_host.url(publish("v.png", signed))])
    record_images(recorder, urls=[image_host.url(publish("t.png", tampered(signed)))])
    record_images(recorder, urls=[image_host.url("/img/plain.png?w=64&h=64")])
    record_images(recorder, urls=[image_host.url("/status/404")])  # never read: gone

    def count(*states: str) -> int:
        return count_logs(recorder.engine, LogFilter(credentials=states))[0]

    assert (count("valid"), count("invalid"), count("none"), count("unread")) == (1, 1, 1, 1)
    assert count("invalid", "none") == 2  # what an auditor looks at first


def test_an_imported_line_with_a_made_up_state_or_hash_is_refused_by_name(db_url, tmp_path, capsys):
    import json

    from store.cli import main

    lines = [
        {"provider": "openai", "images": [{"c2pa_state": "forged"}]},
        {"provider": "openai", "images": [{"phash": "../../etc/passwd"}]},
        {"provider": "openai", "images": [{"c2pa_state": "valid", "c2pa_issuer": "OpenAI"}]},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))

    assert main(["--database-url", db_url, "import", str(source), "--no-progress"]) == 1

    err = capsys.readouterr().err
    assert "line 1" in err and "c2pa_state" in err
    assert "line 2" in err and "phash must be 16 lowercase hex digits" in err
    assert count_logs_of(db_url, ("valid",)) == 1


def count_logs_of(db_url: str, states: tuple[str, ...]) -> int:
    from store.schema.db import make_engine

    engine = make_engine(db_url)
    try:
        return count_logs(engine, LogFilter(credentials=states))[0]
    finally:
        engine.dispose()

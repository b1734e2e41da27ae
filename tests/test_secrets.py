"""Credentials sent with a request never reach the database, the spool or the logs."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import openai
import pytest
from openai import AzureOpenAI, OpenAI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from store import Recorder
from store.capture.redaction import MASK, Scrubber, redact_url, safe_headers, secret_values
from tests.standins.openai_server import SCENARIO_HEADER

#: Nothing listens on port 1: a database that is down from the start.
UNREACHABLE_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/imagelog"


def make_calls(recorder: Recorder, base_url: str, key: str) -> None:
    """Every way a key travels: bearer, api-key, x-api-key, Portkey headers, cookie, query."""
    http = recorder.httpx_client()
    client = OpenAI(
        base_url=base_url + "/v1",
        api_key=key,
        max_retries=0,
        default_headers={
            "x-api-key": key,
            "x-portkey-api-key": key,
            "x-portkey-virtual-key": key,
            "cookie": f"session={key}",
        },
        default_query={"key": key, "sig": key, "access_token": key},
        http_client=http,
    )
    client.images.generate(model="dall-e-3", prompt="keys everywhere")
    with pytest.raises(openai.AuthenticationError):  # the stand-in echoes the key back
        client.images.generate(prompt="echo", extra_headers={SCENARIO_HEADER: "echo-key"})
    AzureOpenAI(
        azure_endpoint=base_url, api_key=key, api_version="2024-10-21", http_client=http
    ).images.generate(model="dalle", prompt="azure key")


def stored_text(recorder: Recorder) -> bytes:
    """Everything the database holds, as bytes: the files on SQLite, every row as text on PG."""
    if recorder.engine.dialect.name == "sqlite":
        database = Path(make_url(str(recorder.engine.url)).database)
        files = [database, *database.parent.glob(database.name + "-*")]
        return b"".join(path.read_bytes() for path in files if path.exists())
    with recorder.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT g::text FROM generations g UNION ALL SELECT i::text FROM images i")
        ).scalars()
        return "\n".join(rows).encode()


def test_api_key_never_reaches_the_database_spool_or_logs(recorder, openai_api, tmp_path, caplog):
    key = f"sk-proj-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    spooling = Recorder(UNREACHABLE_DATABASE, spool_path=tmp_path / "down.jsonl", thumbnails=False)

    make_calls(recorder, openai_api.base_url, key)
    make_calls(spooling, openai_api.base_url, key)
    assert recorder.flush(timeout=30)
    assert not spooling.flush(timeout=30)  # the database is down: all of it is in the spool
    spooling.close()

    stored = stored_text(recorder)
    assert b"keys everywhere" in stored  # the rows are there...
    assert key.encode() not in stored  # ...without the key
    spool = (tmp_path / "down.jsonl").read_bytes()
    assert spool.count(b"\n") == 3
    assert key.encode() not in spool
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("store")]
    assert ours  # the outage was logged...
    assert not any(key in message for message in ours)  # ...without the key


def test_response_image_url_keeps_its_own_signature(recorder, openai_api):
    client = OpenAI(
        base_url=openai_api.v1, api_key="sk-secret-000000000", http_client=recorder.httpx_client()
    )

    image = client.images.generate(model="dall-e-3", prompt="signed url")

    assert recorder.flush(timeout=30)
    with recorder.engine.connect() as connection:
        url = connection.execute(text("SELECT url FROM images")).scalar_one()
    assert url == image.data[0].url and "&sig=" in url


def test_credential_query_values_are_masked_and_the_rest_kept():
    url = "https://h.example/v1/images/generations?api-version=2024-10-21&key=abc&X-Amz-Signature=s&sig=q"

    assert redact_url(url) == (
        "https://h.example/v1/images/generations"
        f"?api-version=2024-10-21&key={MASK}&X-Amz-Signature={MASK}&sig={MASK}"
    )


def test_user_info_in_a_request_url_is_dropped():
    assert redact_url("https://user:pw@h.example/v1/x?a=1") == "https://h.example/v1/x?a=1"


def test_user_info_is_dropped_from_a_request_url_without_a_query():
    url = "https://user:pw-1234567890@h.example/v1/images/generations"

    assert redact_url(url) == "https://h.example/v1/images/generations"
    assert secret_values([], url) == ("pw-1234567890",)


def test_a_key_inside_a_portkey_config_header_is_scrubbed_where_it_is_echoed():
    key = "sk-inline-0123456789"
    config = f'{{"provider": "openai", "api_key": "{key}"}}'
    scrubber = Scrubber(secret_values([("x-portkey-config", config)], "https://h/x"))

    assert scrubber.json({"error": {"message": f"invalid key {key}"}}) == {
        "error": {"message": f"invalid key {MASK}"}
    }


def test_credential_headers_are_dropped_and_routing_headers_kept():
    headers = [
        ("Authorization", "Bearer sk-1"),
        ("api-key", "k"),
        ("X-Api-Key", "k"),
        ("x-portkey-api-key", "k"),
        ("x-portkey-virtual-key", "k"),
        ("x-portkey-config", "pc-secret"),
        ("Cookie", "a=b"),
        ("Ocp-Apim-Subscription-Key", "k"),
        ("x-portkey-provider", "openai"),
        ("Content-Type", "application/json"),
    ]

    assert safe_headers(headers) == {
        "x-portkey-provider": "openai",
        "content-type": "application/json",
    }


def test_secret_values_seen_in_a_request_are_scrubbed_from_text_and_json():
    key = "sk-live-abcdef123456"
    scrubber = Scrubber(secret_values([("Authorization", f"Bearer {key}")], "https://h/x"))

    assert scrubber.json({"error": {"message": f"bad key {key}"}}) == {
        "error": {"message": f"bad key {MASK}"}
    }
    assert scrubber.text("failed with token=zzzzzzzzzz") == f"failed with {MASK}"


def test_a_key_echoed_in_a_revised_prompt_or_as_a_json_key_is_not_stored(recorder, openai_api):
    key = f"sk-proj-{uuid.uuid4().hex}"
    client = OpenAI(base_url=openai_api.v1, api_key=key, http_client=recorder.httpx_client())

    client.images.generate(
        model="dall-e-3", prompt="echo", extra_headers={SCENARIO_HEADER: "echo-key-200"}
    )

    assert recorder.flush(timeout=30)
    assert key.encode() not in stored_text(recorder)
    with recorder.engine.connect() as connection:
        revised = connection.execute(text("SELECT revised_prompt FROM generations")).scalar_one()
    assert revised == f"made with {MASK}"


#: One made-up key of each shape the README lists.
KEY_SHAPES = {
    "openai": "sk-proj-" + "A1b2" * 12,
    "anthropic": "sk-ant-api03-" + "x9" * 20,
    "google": "AIza" + "Sy" * 18,
    "huggingface": "hf_" + "Ab3" * 11,
    "replicate": "r8_" + "Zq7" * 12,
    "fal": "0b3c2f1e-9a8d-4c7b-8e6f-5a4b3c2d1e0f:" + "9f" * 16,
    "xai": "xai-" + "Kd82" * 10,
    "aws": "AKIA" + "IOSFODNN7EXAMPLE",
    "bearer": "Bearer " + "tok" * 10,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9",
}


@pytest.mark.parametrize("shape", sorted(KEY_SHAPES))
def test_track_error_text_with_a_known_key_shape_is_stored_and_exported_masked(
    recorder, shape, capsys
):
    from store.cli import main

    secret = KEY_SHAPES[shape]
    with pytest.raises(RuntimeError), recorder.track(provider="replicate", model="m"):
        raise RuntimeError(f"auth failed for {secret} (check your settings)")

    assert recorder.flush(timeout=30)
    assert secret.encode() not in stored_text(recorder)
    capsys.readouterr()
    assert main(["--database-url", str(recorder.engine.url.render_as_string(False)), "export"]) == 0
    exported = capsys.readouterr().out
    assert "auth failed for" in exported and secret not in exported


def test_a_signed_image_url_keeps_its_signature_while_free_text_is_masked():
    url = "https://blob.example/img.png?se=2026-12-01&sig=abcdefghijkl&token=eyJ" + "a" * 30

    assert Scrubber().stored(url) == url
    assert Scrubber().stored(f"see {url}") != f"see {url}"


@pytest.mark.parametrize("shape", sorted(KEY_SHAPES))
def test_a_key_shape_anywhere_in_a_record_is_masked_and_its_signed_urls_kept(shape):
    from store.schema.records import CallRecord, ImageRecord

    secret = KEY_SHAPES[shape]
    signed = "https://blob.example/img.png?se=2026-12-01&sig=abcdefghijkl"
    record = CallRecord(
        provider="openai",
        prompt="a lighthouse",
        response={"data": [{"url": signed}], "note": {"deep": [f"echo {secret}"]}},
        images=[ImageRecord(url=signed, revised_prompt="a calm sea")],
    )

    Scrubber().record(record)

    assert record.response_json == {"data": [{"url": signed}], "note": {"deep": [f"echo {MASK}"]}}
    assert record.images[0].url == signed
    assert (record.prompt, record.images[0].revised_prompt) == ("a lighthouse", "a calm sea")


def test_a_record_with_nothing_to_scrub_is_left_as_it_was():
    from store.schema.records import CallRecord

    response = {"data": [{"url": "https://blob.example/i.png?sig=abcdefghijkl"}]}
    record = CallRecord(provider="openai", prompt="a lighthouse", response=response)
    before = record.response_json

    Scrubber().record(record)

    assert record.response_json is before

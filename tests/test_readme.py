"""The README's Python snippets, run as they are written there, so the README never lies.

The snippets are taken from README.md itself (not copied here): the environment points the
default recorder at a fresh database and the openai SDK at the loopback stand-in, and a
stand-in `replicate` module hands back a URL on the loopback image host.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import select, update

from store.cli import main
from store.schema.models import GENERATIONS, IMAGES
from store.schema.records import CallRecord, ImageRecord
from tests.standins.image_host import draw_image

README = Path(__file__).parent.parent / "README.md"
API_KEY = "sk-readme-0123456789abcdef"


def section(title: str) -> str:
    """The README's `## title` section, up to the next one."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def snippets(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def python_snippets() -> list[str]:
    """The README's Python snippets, in order, but for "Record from any language"'s
    (tests/test_gateway_languages.py runs those against the gateway)."""
    text = README.read_text().replace(section("Record from any language"), "\n")
    return snippets(text, "python")


def stored_rows(engine):
    with engine.connect() as connection:
        generations = connection.execute(select(GENERATIONS)).mappings().all()
        images = connection.execute(select(IMAGES)).mappings().all()
    return generations, images


def test_the_readme_shows_recording_tracking_context_archive_and_lookup_snippets():
    snippets = python_snippets()
    assert len(snippets) == 5
    assert "recorder.httpx_client()" in snippets[0]
    assert "recorder.track(" in snippets[1]
    assert "recorder.context(" in snippets[2]
    assert "Recorder(archive=" in snippets[3]
    assert "similar_images(" in snippets[4]


def test_the_readme_snippets_record_an_openai_call_and_a_tracked_call(
    db_url, openai_api, image_host, tmp_path, monkeypatch
):
    monkeypatch.setenv("IMAGELOG_DATABASE_URL", db_url)
    monkeypatch.setenv("IMAGELOG_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_BASE_URL", openai_api.v1)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    hosted = image_host.url("/img/flux.webp?w=1024&h=768")
    replicate = SimpleNamespace(run=lambda model, input: [hosted])
    quickstart, tracking, context, *_ = python_snippets()

    namespace: dict = {}
    exec(quickstart, namespace)
    recorder = namespace["recorder"]
    exec(tracking, {"recorder": recorder, "replicate": replicate, "prompt": "a red fox"})
    exec(context, namespace)
    assert recorder.flush(timeout=60)
    generations, images = stored_rows(recorder.engine)
    recorder.close()

    [banner] = [row for row in generations if row["prompt"].startswith("A banner")]
    assert banner["user_id"] == "alice"
    assert (banner["metadata_json"]["team"], banner["metadata_json"]["feature"]) == (
        "ads",
        "banner",
    )
    by_provider = {row["provider"]: row for row in generations}
    assert "Lucy in the sky with diamonds" in [row["prompt"] for row in generations]
    tracked = by_provider["replicate"]
    assert (tracked["model"], tracked["prompt"], tracked["source"]) == (
        "black-forest-labs/flux-schnell",
        "a red fox",
        "track",
    )
    [tracked_image] = [image for image in images if image["generation_id"] == tracked["id"]]
    assert tracked_image["url"] == hosted
    assert (tracked_image["width"], tracked_image["height"]) == (1024, 768)
    assert tracked_image["thumbnail"]


def test_the_readme_archive_snippet_and_commands_keep_originals_in_the_bucket(
    db_url, s3_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("IMAGELOG_DATABASE_URL", db_url)
    monkeypatch.setenv("IMAGELOG_HOME", str(tmp_path))
    text = README.read_text()
    [location] = re.findall(r"^export IMAGELOG_ARCHIVE=(\S+)", text, flags=re.MULTILINE)
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    buckets = s3_server.client().list_buckets().get("Buckets", [])
    if bucket not in [listed["Name"] for listed in buckets]:
        s3_server.client().create_bucket(Bucket=bucket)
    png = draw_image(96, 64, "png")
    sha = hashlib.sha256(png).hexdigest()

    namespace: dict = {}
    exec(python_snippets()[3], namespace)
    recorder = namespace["recorder"]
    recorder.record(CallRecord(provider="openai", images=[ImageRecord(data=png)]))
    assert recorder.flush(timeout=60)

    archived = f"s3://{bucket}/{prefix}/{sha[:2]}/{sha}.png"
    assert stored_rows(recorder.engine)[1][0]["archive_path"] == archived
    assert s3_server.get(bucket, f"{prefix}/{sha[:2]}/{sha}.png") == png

    monkeypatch.setenv("IMAGELOG_ARCHIVE", location)
    found = re.findall(r"^\s*(imagelog archive [^#\n]*)", text, re.MULTILINE)
    commands = sorted({command.strip() for command in found})
    assert len(commands) == 2
    for command in commands:
        with recorder.engine.begin() as connection:  # forgotten: the command finds it again
            connection.execute(update(IMAGES).values(archive_path=None))
        assert main([*shlex.split(command)[1:], "--no-progress"]) == 0
        assert stored_rows(recorder.engine)[1][0]["archive_path"] == archived
    recorder.close()


def test_the_readme_lookup_snippet_counts_by_credentials_and_lists_look_alikes(engine, capsys):
    from store.capture.writer import insert_calls
    from store.schema.records import CallRecord, ImageRecord

    near, far = "c3a5e1f00f1e5a3d", "3c5a1e0ff0e1a5c3"  # 1 bit and 64 bits from the README's
    insert_calls(
        engine,
        [
            CallRecord(
                provider="openai",
                prompt=prompt,
                images=[ImageRecord(phash=phash, c2pa_state=state)],
            )
            for prompt, phash, state in (
                ("a fox", near, "none"),
                ("a lighthouse", far, "valid"),
            )
        ],
    )
    *_, lookup = python_snippets()
    namespace = {"recorder": SimpleNamespace(engine=engine)}

    exec(lookup, namespace)

    assert namespace["unsigned_or_altered"] == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("1 ") and line.endswith(" 0 a fox")

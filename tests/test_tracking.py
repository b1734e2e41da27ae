"""`recorder.track(...)`: calls made through any other SDK."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from store.schema.models import GENERATIONS, IMAGES
from tests.standins.openai_server import _draw


def stored(recorder):
    assert recorder.flush(timeout=30)
    with recorder.engine.connect() as connection:
        row = connection.execute(select(GENERATIONS)).mappings().one()
        images = connection.execute(select(IMAGES).order_by(IMAGES.c.position)).mappings().all()
    return row, images


@dataclass
class FileOutput:
    """The shape of what `replicate.run` returns: an object with a `.url`."""

    url: str


def test_tracked_call_records_its_images_params_and_latency(recorder, openai_api):
    png = _draw("96x64", "tracked")
    url = openai_api.host(png)

    with recorder.track(
        provider="replicate", model="flux-schnell", prompt="a fox", params={"steps": 4}
    ) as call:
        call.add_image(url=FileOutput(url))
        call.add_image(data=png)
        call.add_image(b64=base64.b64encode(png).decode())
        call.set(request_id="pred-123", cost_usd=0.009)

    row, images = stored(recorder)
    assert (row["provider"], row["model"], row["prompt"]) == ("replicate", "flux-schnell", "a fox")
    assert row["params_json"] == {"steps": 4}
    assert (row["status"], row["source"], row["request_id"]) == ("ok", "track", "pred-123")
    assert row["cost_usd"] == pytest.approx(0.009)
    assert row["latency_ms"] >= 0
    assert [image["url"] for image in images] == [url, None, None]
    assert [image["url_state"] for image in images] == ["live", "none", "none"]
    assert all(image["thumbnail"] and image["width"] == 96 for image in images)


def test_an_exception_inside_track_is_recorded_and_reraised(recorder):
    with (
        pytest.raises(TimeoutError, match="prediction timed out"),
        recorder.track(provider="fal", model="flux/dev", prompt="late"),
    ):
        raise TimeoutError("prediction timed out")

    row, images = stored(recorder)
    assert row["status"] == "error"
    assert row["error"] == "TimeoutError: prediction timed out"
    assert images == []


def test_a_key_in_an_exception_message_is_not_stored(recorder):
    with (
        pytest.raises(PermissionError),
        recorder.track(provider="replicate", prompt="x"),
    ):
        raise PermissionError("invalid token r8_AbCdEfGhIjKlMnOp0123")

    row, _ = stored(recorder)
    assert "r8_AbCdEfGhIjKlMnOp0123" not in row["error"]


def test_a_bad_image_is_noted_and_the_callers_code_goes_on(recorder):
    with recorder.track(provider="local", prompt="x") as call:
        call.add_image(url="file:///tmp/out.png")
        reached_the_end = True

    row, images = stored(recorder)
    assert reached_the_end
    assert images == []
    assert "url must start with http" in row["metadata_json"]["image_notes"][0]


def test_an_image_whose_base64_does_not_decode_keeps_its_row_and_url(recorder, image_host):
    hosted = image_host.url("/img/kept.png?w=64&h=64")
    with recorder.track(provider="local", prompt="x") as call:
        call.add_image(hosted, b64="*%$ not base64")
        call.add_image(b64="also not base64 ***", revised_prompt="a fox")

    row, images = stored(recorder)
    assert row["image_count"] == 2
    assert images[0]["url"] == hosted and images[0]["thumbnail"]  # taken from the URL instead
    assert images[1]["revised_prompt"] == "a fox"
    assert "not valid base64" in images[1]["thumbnail_error"]
    assert images[1]["url_state"] == "none"


def test_setting_an_unknown_field_is_a_clear_error(recorder):
    with recorder.track(provider="p") as call, pytest.raises(TypeError, match="'colour'"):
        call.set(colour="red")


def test_set_takes_record_names_and_column_names_alike(recorder):
    with recorder.track(provider="fal", model="flux") as call:
        call.set(usage={"images": 1}, user="ana")
        call.set(metadata_json={"team": "web"})

    assert call.record.usage_json == {"images": 1}
    assert (call.record.user_id, call.record.metadata_json) == ("ana", {"team": "web"})
    with pytest.raises(TypeError, match="'nope' is not a CallRecord field"):
        call.set(nope=1)

"""The recording client made of httpx2, the HTTP library openai 3.x is built on, driven by the
real openai SDK against the loopback stand-in: the SDK takes it as its own kind of client."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json

import httpx
import httpx2
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from store.capture.transport import stack_of
from tests.standins.openai_server import SCENARIO_HEADER, _draw
from tests.test_transport import API_KEY, generations, images_of


def test_the_client_for_openai_is_made_of_the_library_openai_is_built_on(recorder):
    assert stack_of(openai) == stack_of(OpenAI) == "httpx2"
    assert stack_of(httpx) == "httpx"  # a package without a Stainless client class
    with recorder.http_client_for(openai) as client:
        assert isinstance(client, httpx2.Client)
    client = recorder.http_client_for(OpenAI, asynchronous=True)
    assert isinstance(client, httpx2.AsyncClient)
    asyncio.run(client.aclose())


def test_openai_records_through_an_httpx2_client(recorder, openai_api):
    http_client = recorder.http_client_for(openai, user="svc", metadata={"team": "ads"})
    with OpenAI(base_url=openai_api.v1, api_key=API_KEY, http_client=http_client) as client:
        assert client.timeout.read == 600.0 and client.timeout.connect == 5.0  # the SDK's own
        image = client.images.generate(
            model="dall-e-3",
            prompt="httpx2",
            size="1024x1024",
            extra_headers={"x-imagelog-metadata": '{"feature": "f"}'},
        )

    [row] = generations(recorder)
    assert (row["prompt"], row["model"], row["status"], row["user_id"]) == (
        "httpx2",
        "dall-e-3",
        "ok",
        "svc",
    )
    assert (row["metadata_json"]["team"], row["metadata_json"]["feature"]) == ("ads", "f")
    assert "x-imagelog-metadata" not in openai_api.requests[-1].headers
    assert API_KEY not in json.dumps(row["request_json"])
    [stored] = images_of(recorder, row["id"])
    assert stored["url"] == image.data[0].url and stored["thumbnail"]


def test_async_openai_records_edits_and_streams_through_httpx2(recorder, openai_api):
    png = _draw("256x256", "httpx2 edit")

    async def calls() -> list:
        async with AsyncOpenAI(
            base_url=openai_api.v1,
            api_key=API_KEY,
            http_client=recorder.async_httpx2_client(),
        ) as client:
            await client.images.edit(
                model="gpt-image-1", image=("in.png", io.BytesIO(png), "image/png"), prompt="edit"
            )
            stream = await client.images.generate(
                model="gpt-image-1",
                prompt="streamed",
                stream=True,
                partial_images=1,
                extra_headers={SCENARIO_HEADER: "stream"},
            )
            return [event async for event in stream]

    events = asyncio.run(calls())

    assert events[-1].type == "image_generation.completed"
    rows = {row["prompt"]: row for row in generations(recorder)}
    assert rows["edit"]["operation"] == "edit" and rows["edit"]["image_count"] == 1
    assert rows["streamed"]["image_count"] == 1
    assert rows["streamed"]["usage_json"]["total_tokens"] == 1106


def test_errors_through_httpx2_are_recorded_and_raised_as_without_us(recorder, openai_api):
    with OpenAI(
        base_url=openai_api.v1, api_key=API_KEY, http_client=recorder.httpx2_client()
    ) as client:
        with pytest.raises(openai.BadRequestError):
            client.images.generate(prompt="x", extra_headers={SCENARIO_HEADER: "error-400"})
        with pytest.raises(openai.APITimeoutError):
            client.with_options(timeout=0.3, max_retries=0).images.generate(
                prompt="slow", extra_headers={SCENARIO_HEADER: "slow:1.5"}
            )

    rows = {row["prompt"]: row for row in generations(recorder)}
    assert (rows["x"]["status"], rows["x"]["http_status"]) == ("error", 400)
    assert rows["slow"]["error"].startswith("ReadTimeout")


def test_the_environments_proxy_is_honoured_by_the_httpx2_client(recorder, openai_api, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", openai_api.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with OpenAI(
        base_url="http://api.openai.com/v1",
        api_key=API_KEY,
        http_client=recorder.http_client_for(openai),
    ) as client:
        client.images.generate(model="dall-e-3", prompt="via the proxy")

    assert openai_api.requests[-1].headers["host"] == "api.openai.com"
    [row] = generations(recorder)
    assert row["provider"] == "openai"


def test_an_unknown_stack_is_refused(recorder):
    with pytest.raises(ValueError, match="stack must be"):
        recorder._client("requests", False, None, None, None, None, {})


def _mock_api(request):
    """What a mock of the SDK's test tooling answers: responses built already read."""
    body = json.loads(request.content or b"{}")
    if body["prompt"] == "fails":
        return {"status_code": 500, "json": {"error": {"message": "boom", "type": "server"}}}
    if body.get("stream"):
        event = {"type": "image_generation.completed", "b64_json": B64_PNG, "usage": {"n": 1}}
        content = f"event: x\ndata: {json.dumps(event)}\n\n".encode()
        return {"status_code": 200, "content": content, "headers": SSE}
    return {"status_code": 200, "json": {"created": 1, "data": [{"b64_json": B64_PNG}]}}


B64_PNG = base64.b64encode(_draw("64x64", "mock")).decode()
SSE = {"content-type": "text/event-stream"}


@pytest.mark.parametrize("library", [httpx, httpx2])
def test_responses_a_mock_transport_returns_already_read_are_recorded(recorder, library):
    mock = library.MockTransport(lambda request: library.Response(**_mock_api(request)))
    wrapped = (recorder.httpx_client if library is httpx else recorder.httpx2_client)(
        transport=mock
    )
    with OpenAI(base_url="https://api.openai.com/v1", api_key=API_KEY, http_client=wrapped) as c:
        c.images.generate(model="gpt-image-1", prompt="made")
        with pytest.raises(openai.InternalServerError):
            c.with_options(max_retries=0).images.generate(model="gpt-image-1", prompt="fails")
        events = list(c.images.generate(model="gpt-image-1", prompt="streamed", stream=True))

    assert events[-1].type == "image_generation.completed"
    rows = {row["prompt"]: row for row in generations(recorder)}
    assert (rows["made"]["status"], rows["made"]["image_count"]) == ("ok", 1)
    assert (rows["fails"]["status"], rows["fails"]["http_status"]) == ("error", 500)
    assert rows["fails"]["error"].startswith("HTTP 500: boom")
    assert (rows["streamed"]["status"], rows["streamed"]["image_count"]) == ("ok", 1)
    assert all("response_incomplete" not in row["metadata_json"] for row in rows.values())
    [image] = images_of(recorder, rows["made"]["id"])
    assert image["thumbnail"]


def test_an_already_read_gzip_response_is_not_decoded_twice(recorder):
    raw = json.dumps({"created": 1, "data": [{"b64_json": B64_PNG}]}).encode()
    mock = httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=gzip.compress(raw), headers={"content-encoding": "gzip"}
        )
    )
    with OpenAI(
        base_url="https://api.openai.com/v1",
        api_key=API_KEY,
        http_client=recorder.httpx_client(transport=mock),
    ) as client:
        client.images.generate(model="gpt-image-1", prompt="gzipped")

    [row] = generations(recorder)
    assert (row["status"], row["image_count"]) == ("ok", 1)

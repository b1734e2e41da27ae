"""The recording httpx transports, driven by the real openai SDK against the loopback stand-in."""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import openai
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from sqlalchemy import select

from store import Recorder
from store.capture.providers import Route, infer_route
from store.cli import main
from store.queries.export import iter_records
from store.queries.filters import LogFilter
from store.schema.db import make_engine
from store.schema.models import GENERATIONS
from tests.databases import generations, images_of
from tests.standins.openai_server import SCENARIO_HEADER, _draw

API_KEY = "sk-test-transport-0123456789abcdef"


@pytest.fixture
def client(recorder, openai_api):
    with OpenAI(
        base_url=openai_api.v1, api_key=API_KEY, http_client=recorder.httpx_client()
    ) as client:
        yield client


def test_sync_generate_records_the_call_and_its_hosted_image(recorder, client):
    image = client.images.generate(
        model="dall-e-3", prompt="Lucy in the sky with diamonds", size="1024x1024", quality="hd"
    )

    [row] = generations(recorder)
    assert row["provider"] == "127.0.0.1"  # an unknown OpenAI-compatible host is named by host
    assert row["model"] == "dall-e-3"
    assert row["operation"] == "generate"
    assert row["prompt"] == "Lucy in the sky with diamonds"
    assert row["revised_prompt"] == image.data[0].revised_prompt
    assert row["params_json"] == {"size": "1024x1024", "quality": "hd"}
    assert (row["size"], row["quality"], row["status"], row["http_status"]) == (
        "1024x1024",
        "hd",
        "ok",
        200,
    )
    assert row["request_id"].startswith("req_")
    assert row["latency_ms"] > 0
    assert row["source"] == "httpx"
    [stored] = images_of(recorder, row["id"])
    assert stored["url"] == image.data[0].url
    assert stored["thumbnail"] and stored["width"] == 1024
    assert stored["url_state"] == "live"  # the thumbnail download was the URL's first probe


def test_async_generate_records_b64_images_usage_and_resolved_params(recorder, openai_api):
    async def generate():
        async with AsyncOpenAI(
            base_url=openai_api.v1, api_key=API_KEY, http_client=recorder.async_httpx_client()
        ) as client:
            return await client.images.generate(
                model="gpt-image-1", prompt="a lighthouse", n=2, size="auto", user="u-42"
            )

    result = asyncio.run(generate())

    [row] = generations(recorder)
    assert row["model"] == "gpt-image-1"
    assert row["params_json"]["size"] == "auto"  # what the request sent...
    assert row["params_json"]["reported"] == {  # ...apart from what the response said it made
        "size": "1024x1024",
        "quality": "medium",
        "background": "opaque",
        "output_format": "png",
    }
    assert row["size"] == "1024x1024"  # the column and the price go by what was made
    assert row["usage_json"]["output_tokens"] == result.usage.output_tokens
    assert row["user_id"] == "u-42"
    assert row["image_count"] == 2
    stored = images_of(recorder, row["id"])
    assert [image["url_state"] for image in stored] == ["none", "none"]
    assert all(image["thumbnail"] for image in stored)
    # The response JSON is kept, but not the megabytes of base64 the images came as.
    assert row["response_json"]["data"][0]["b64_json"].endswith("base64 characters]")


def test_multipart_edit_is_recorded_without_the_uploaded_bytes(recorder, client):
    png = _draw("256x256", "edit input")

    client.images.edit(
        model="gpt-image-1",
        image=[("a.png", io.BytesIO(png), "image/png"), ("b.png", io.BytesIO(png), "image/png")],
        mask=("mask.png", io.BytesIO(png), "image/png"),
        prompt="add a red hat",
        n=1,
        size="1024x1024",
    )

    [row] = generations(recorder)
    assert (row["operation"], row["prompt"]) == ("edit", "add a red hat")
    assert row["params_json"]["n"] == 1 and row["params_json"]["size"] == "1024x1024"
    body = row["request_json"]["body"]
    assert body["mask"] == {"filename": "mask.png", "content_type": "image/png", "bytes": len(png)}
    assert [part["filename"] for part in body["image[]"]] == ["a.png", "b.png"]
    assert png.hex()[:64] not in json.dumps(row["request_json"])


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's own notice
def test_variation_is_recorded_as_a_variation(recorder, client):
    client.images.create_variation(image=("in.png", _draw("256x256", "v"), "image/png"), n=2)

    [row] = generations(recorder)
    assert row["operation"] == "variation"
    assert row["model"] == ""  # an unknown host has no documented default model
    assert row["image_count"] == 2


def test_other_endpoints_pass_through_unrecorded(recorder, client, openai_api):
    models = client.models.list()

    assert [model.id for model in models] == ["dall-e-3"]
    assert generations(recorder) == []


def test_http_error_is_recorded_and_the_sdk_raises_as_without_us(recorder, client):
    with pytest.raises(openai.BadRequestError):
        client.images.generate(
            model="dall-e-3", prompt="x", extra_headers={SCENARIO_HEADER: "error-400"}
        )

    [row] = generations(recorder)
    assert (row["status"], row["http_status"]) == ("error", 400)
    assert row["error"].startswith("HTTP 400: Your request was rejected by the safety system.")
    assert "content_policy_violation" in row["error"]
    assert row["response_json"]["error"]["code"] == "content_policy_violation"


def test_each_retry_of_a_server_error_is_recorded_with_its_retry_count(recorder, openai_api):
    client = OpenAI(
        base_url=openai_api.v1, api_key=API_KEY, max_retries=1, http_client=recorder.httpx_client()
    )

    with pytest.raises(openai.InternalServerError):
        client.images.generate(prompt="x", extra_headers={SCENARIO_HEADER: "error-500"})

    rows = sorted(generations(recorder), key=lambda row: row["created_at"])
    assert [row["http_status"] for row in rows] == [500, 500]
    assert [row["metadata_json"].get("retry_count") for row in rows] == [None, 1]


def test_non_json_error_body_is_kept_as_text(recorder, client):
    with pytest.raises(openai.APIStatusError):
        client.with_options(max_retries=0).images.generate(
            prompt="x", extra_headers={SCENARIO_HEADER: "error-html"}
        )

    [row] = generations(recorder)
    assert row["error"] == "HTTP 502: <html><body>Bad gateway</body></html>"


def test_a_response_we_cannot_make_sense_of_still_reaches_the_caller(recorder, client):
    result = client.images.generate(prompt="x", extra_headers={SCENARIO_HEADER: "bad-b64"})

    assert result.data[0].b64_json == "*%$"
    [row] = generations(recorder)
    assert (row["status"], row["image_count"]) == ("ok", 1)  # the image happened: its row stays
    [image] = images_of(recorder, row["id"])
    assert "not valid base64" in image["thumbnail_error"]
    assert (image["thumbnail"], image["url_state"]) == (None, "none")


def test_timeout_is_recorded_and_the_original_exception_reaches_the_caller(recorder, client):
    with pytest.raises(openai.APITimeoutError) as raised:
        client.with_options(timeout=0.3, max_retries=0).images.generate(
            prompt="x", extra_headers={SCENARIO_HEADER: "slow:1.5"}
        )

    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    [row] = generations(recorder)
    assert row["status"] == "error" and row["http_status"] is None
    assert row["error"].startswith("ReadTimeout")
    assert row["latency_ms"] >= 300


def test_connection_reset_is_recorded(recorder, client):
    with pytest.raises(openai.APIConnectionError):
        client.with_options(max_retries=0).images.generate(
            prompt="x", extra_headers={SCENARIO_HEADER: "reset"}
        )

    [row] = generations(recorder)
    assert row["status"] == "error"
    assert row["error"].startswith("RemoteProtocolError")


def test_caller_gets_the_exact_bytes_the_server_sent(recorder, openai_api):
    with (
        recorder.httpx_client() as http,
        http.stream(
            "POST",
            openai_api.v1 + "/images/generations",
            json={"model": "dall-e-3", "prompt": "bytes"},
            headers={"Authorization": f"Bearer {API_KEY}", "Accept-Encoding": "gzip"},
        ) as response,
    ):
        raw = b"".join(response.iter_raw())

    sent = openai_api.sent[-1]
    assert sent.headers["Content-Encoding"] == "gzip"
    assert raw == sent.body  # still gzip-encoded, byte for byte
    [row] = generations(recorder)
    assert row["prompt"] == "bytes" and row["image_count"] == 1


def test_streamed_images_are_recorded_from_their_completed_events(recorder, client):
    events = list(
        client.images.generate(
            model="gpt-image-1",
            prompt="streamed",
            stream=True,
            partial_images=1,
            extra_headers={SCENARIO_HEADER: "stream"},
        )
    )

    assert [event.type for event in events][-1] == "image_generation.completed"
    [row] = generations(recorder)
    assert row["image_count"] == 1
    assert row["usage_json"]["total_tokens"] == 1106
    assert row["response_json"]["partial_images"] == 1
    [image] = images_of(recorder, row["id"])
    assert image["thumbnail"] and image["url_state"] == "none"


def test_azure_deployment_names_the_model_and_provider(recorder, openai_api):
    client = AzureOpenAI(
        azure_endpoint=openai_api.base_url,
        api_key=API_KEY,
        api_version="2024-10-21",
        http_client=recorder.httpx_client(),
    )

    client.images.generate(model="my-dalle3", prompt="azure")

    [row] = generations(recorder)
    assert row["provider"] == "azure-openai"
    assert row["model"] == "my-dalle3"
    assert "api-version=2024-10-21" in row["request_json"]["url"]
    assert "api-key" not in row["request_json"]["headers"]


def test_portkey_headers_name_the_provider_and_the_gateway(recorder, openai_api):
    client = OpenAI(
        base_url=openai_api.v1,
        api_key=API_KEY,
        default_headers={
            "x-portkey-api-key": "pk-portkey-secret-123456",
            "x-portkey-provider": "openai",
            "x-portkey-trace-id": "trace-abc",
        },
        http_client=recorder.httpx_client(),
    )

    client.images.generate(model="dall-e-3", prompt="through the gateway")

    [row] = generations(recorder)
    assert row["provider"] == "openai"
    assert row["metadata_json"]["gateway"] == "portkey"
    assert row["trace_id"] == "trace-abc"
    assert "x-portkey-api-key" not in row["request_json"]["headers"]


def test_portkey_virtual_key_is_recorded_as_the_provider_the_response_names(recorder, openai_api):
    client = OpenAI(
        base_url=openai_api.v1,
        api_key="X",  # Portkey's documentation: the keys travel in its own headers
        default_headers={
            "x-portkey-api-key": "pk-portkey-secret-123456",
            "x-portkey-virtual-key": "vk-virtual-secret-123456",
        },
        http_client=recorder.httpx_client(),
    )

    client.images.generate(model="dall-e-3", prompt="virtual key", size="1024x1024")

    [row] = generations(recorder)
    assert (row["provider"], row["metadata_json"]["gateway"]) == ("openai", "portkey")
    assert row["trace_id"] == openai_api.sent[-1].headers["x-portkey-trace-id"]
    assert len(row["trace_id"]) == 36  # Portkey's trace ids are UUIDs
    assert (row["cost_usd"], row["cost_source"]) == (pytest.approx(0.04), "per_image")
    assert "vk-virtual-secret-123456" not in json.dumps(row["request_json"])


def test_the_provider_portkey_answered_with_wins_over_the_one_asked_for(recorder, openai_api):
    client = OpenAI(
        base_url=openai_api.v1,
        api_key=API_KEY,
        default_headers={"x-portkey-provider": "openai", "x-portkey-config": "pc-fallbacks"},
        http_client=recorder.httpx_client(),
    )
    openai_api.served_by = "@azure-openai-eu/dall-e-3"  # the config fell back to Azure
    try:
        client.images.generate(model="dall-e-3", prompt="fell back")
    finally:
        openai_api.served_by = None

    [row] = generations(recorder)
    assert (row["provider"], row["metadata_json"]["gateway"]) == ("azure-openai-eu", "portkey")


@pytest.mark.parametrize(
    ("host", "provider", "model"),
    [
        ("api.openai.com", "openai", "dall-e-2"),  # the API's default when no model is sent
        ("myresource.openai.azure.com", "azure-openai", ""),
        ("api.together.xyz", "together", ""),
        ("api.x.ai", "xai", ""),
        ("images.example.org", "images.example.org", ""),
    ],
)
def test_provider_is_inferred_from_the_host(recorder, openai_api, host, provider, model):
    # The stand-in also serves as a forward proxy, so the request really names that host.
    proxied = httpx.HTTPTransport(proxy=openai_api.base_url)
    client = OpenAI(
        base_url=f"http://{host}/v1",
        api_key=API_KEY,
        http_client=recorder.httpx_client(transport=proxied),
    )

    client.images.generate(prompt="where am I")

    [row] = generations(recorder)
    assert (row["provider"], row["model"]) == (provider, model)
    assert row["metadata_json"]["host"] == host


def test_proxy_settings_in_the_environment_are_honoured(recorder, openai_api, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", openai_api.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = OpenAI(
        base_url="http://api.openai.com/v1", api_key=API_KEY, http_client=recorder.httpx_client()
    )

    client.images.generate(model="dall-e-3", prompt="via the proxy")

    assert openai_api.requests[-1].headers["host"] == "api.openai.com"  # it came via the proxy
    [row] = generations(recorder)
    assert row["provider"] == "openai"


def test_the_sdk_keeps_its_default_timeout_with_our_client(recorder, openai_api):
    client = OpenAI(base_url=openai_api.v1, api_key=API_KEY, http_client=recorder.httpx_client())

    assert client.timeout.read == 600.0 and client.timeout.connect == 5.0


@pytest.mark.parametrize(
    ("host", "path", "headers", "route"),
    [
        (
            "api.portkey.ai",
            "/v1/images/generations",
            {"x-portkey-provider": "@openai-prod"},
            Route("openai-prod", "portkey"),
        ),
        (
            "gateway.ai.cloudflare.com",
            "/v1/acct/gw/azure-openai/res/images/generations",
            {},
            Route("azure-openai", "cloudflare"),
        ),
        ("oai.helicone.ai", "/v1/images/generations", {}, Route("openai", "helicone")),
        (
            "res.cognitiveservices.azure.com",
            "/openai/deployments/d/images/generations",
            {},
            Route("azure-openai"),
        ),
        ("10.0.0.7", "/openai/deployments/d/images/generations", {}, Route("azure-openai")),
        ("API.X.AI.", "/v1/images/generations", {}, Route("xai")),
    ],
)
def test_gateways_and_private_endpoints_are_told_apart(host, path, headers, route):
    assert infer_route(host, path, headers) == route


@pytest.mark.parametrize(
    ("base_url", "provider", "model", "cost"),
    [
        ("http://llm-proxy.corp/v1", "openai", "dall-e-3", 0.04),
        ("http://other.host/openai/deployments/my-dalle3", "azure-openai", "my-dalle3", None),
    ],
)
def test_a_company_proxy_is_recorded_and_priced_as_its_provider(
    recorder, openai_api, monkeypatch, base_url, provider, model, cost
):
    monkeypatch.setenv(
        "IMAGELOG_PROVIDER_HOSTS", " LLM-Proxy.corp = openai , other.host=azure-openai"
    )
    # The stand-in also serves as a forward proxy, so the request really names that host.
    client = OpenAI(
        base_url=base_url,
        api_key=API_KEY,
        default_query={"api-version": "2024-10-21"} if "deployments" in base_url else None,
        http_client=recorder.httpx_client(transport=httpx.HTTPTransport(proxy=openai_api.base_url)),
    )

    client.images.generate(model=model, prompt="behind the proxy", size="1024x1024")

    [row] = generations(recorder)
    host = httpx.URL(base_url).host
    assert (row["provider"], row["model"]) == (provider, model)
    assert (row["metadata_json"]["gateway"], row["metadata_json"]["host"]) == (host, host)
    assert row["cost_usd"] == (pytest.approx(cost) if cost else None)
    [found] = iter_records(recorder.engine, LogFilter(providers=(provider,)))
    assert found.id == row["id"]


@pytest.mark.parametrize(
    "setting", ["llm-proxy.corp", "llm-proxy.corp=", "http://llm-proxy.corp=openai", "a b=openai"]
)
def test_a_malformed_provider_hosts_setting_fails_when_the_recorder_starts(
    db_url, monkeypatch, setting
):
    monkeypatch.setenv("IMAGELOG_PROVIDER_HOSTS", setting)

    with pytest.raises(ValueError, match=r"IMAGELOG_PROVIDER_HOSTS: .* is not host=provider"):
        Recorder(db_url)


def test_a_response_the_caller_never_reads_is_recorded_as_incomplete_not_as_an_error(
    recorder, client
):
    with client.images.with_streaming_response.generate(model="dall-e-3", prompt="unread"):
        pass  # closed without reading the body

    [row] = generations(recorder)
    assert (row["status"], row["http_status"], row["error"]) == ("ok", 200, None)
    assert row["metadata_json"]["response_incomplete"] is True
    assert row["metadata_json"]["response_bytes_received"] == 0


def test_a_stream_closed_early_keeps_the_images_received(recorder, client):
    stream = client.images.generate(
        model="gpt-image-1",
        prompt="closed early",
        n=2,
        stream=True,
        partial_images=1,
        extra_headers={SCENARIO_HEADER: "stream"},
    )
    for event in stream:
        if event.type == "image_generation.completed":
            break
    stream.close()

    [row] = generations(recorder)
    assert (row["status"], row["error"]) == ("ok", None)
    assert row["metadata_json"]["response_incomplete"] is True
    assert row["metadata_json"]["response_bytes_received"] > 0
    assert row["image_count"] >= 1  # at least the image the caller saw
    assert row["response_json"]["stream"] is True


def test_a_json_body_cut_short_is_kept_as_text(recorder, openai_api):
    with (
        recorder.httpx_client() as http,
        http.stream(
            "POST",
            openai_api.v1 + "/images/generations",
            json={"model": "gpt-image-1", "prompt": "cut", "n": 16},  # more than one read
            headers={"Authorization": f"Bearer {API_KEY}", "Accept-Encoding": "identity"},
        ) as response,
    ):
        first = next(response.iter_raw(100))

    [row] = generations(recorder)
    assert (row["status"], row["error"]) == ("ok", None)
    assert row["metadata_json"]["response_incomplete"] is True
    body = openai_api.sent[-1].body
    assert len(first) <= row["metadata_json"]["response_bytes_received"] < len(body)
    assert row["response_json"]["text"] == body[:2000].decode()
    assert row["image_count"] == 0


def test_multipart_edit_fields_are_stored_with_the_types_a_json_call_has(recorder, client):
    png = _draw("256x256", "typed edit")
    options = {"n": 1, "output_compression": 50, "output_format": "webp", "size": "1024x1024"}

    client.images.generate(model="gpt-image-1", prompt="json", **options)
    events = client.images.edit(
        model="gpt-image-1",
        image=("in.png", io.BytesIO(png), "image/png"),
        prompt="0042",  # a prompt of digits stays the text it was
        user="12345",
        stream=True,
        extra_headers={SCENARIO_HEADER: "stream"},
        **options,
    )
    list(events)

    rows = {row["operation"]: row for row in generations(recorder)}
    edit, generate = rows["edit"], rows["generate"]
    assert edit["params_json"]["stream"] is True
    assert generate["params_json"]["reported"]["output_format"] == "png"  # what the stand-in made
    for key, value in options.items():
        assert edit["params_json"][key] == generate["params_json"][key] == value
        assert type(edit["params_json"][key]) is type(value)
    assert (edit["prompt"], edit["user_id"]) == ("0042", "12345")
    assert edit["request_json"]["body"]["stream"] is True


def test_requested_and_reported_params_survive_export_and_import(
    recorder, openai_api, db_url, fresh_db_url, tmp_path
):
    with OpenAI(
        base_url=openai_api.v1, api_key=API_KEY, http_client=recorder.httpx_client()
    ) as client:
        client.images.generate(model="gpt-image-1", prompt="auto", size="auto", quality="auto")
    [recorded] = generations(recorder)
    exported, target_url = tmp_path / "log.jsonl", fresh_db_url(recorder.engine.dialect.name)
    hand_written = {
        "provider": "openai",
        "model": "gpt-image-1",
        "prompt": "by hand",
        "params": {"size": "auto", "reported": {"size": "1536x1024", "quality": "high"}},
    }

    assert main(["--database-url", db_url, "export", "-o", str(exported)]) == 0
    with exported.open("a") as lines:
        lines.write(json.dumps(hand_written) + "\n")
    assert main(["--database-url", target_url, "import", str(exported), "--no-progress"]) == 0

    target = make_engine(target_url)
    try:
        with target.connect() as connection:
            rows = {
                row["prompt"]: row
                for row in connection.execute(select(GENERATIONS)).mappings().all()
            }
    finally:
        target.dispose()
    back = rows["auto"]
    assert back["params_json"] == recorded["params_json"]
    assert (back["params_json"]["quality"], back["params_json"]["reported"]["quality"]) == (
        "auto",
        "medium",
    )
    assert (back["size"], back["quality"]) == (recorded["size"], recorded["quality"])
    assert (rows["by hand"]["size"], rows["by hand"]["quality"]) == ("1536x1024", "high")

"""Turn one captured OpenAI-images HTTP exchange into a `CallRecord`.

The transport captures bytes and timings only (`Exchange`) and hands them to the recorder's
background thread, which calls `exchange_to_record`: parsing JSON, multipart and
base64 happens off the caller's thread. Secrets are dropped or scrubbed here, before the
record exists, so nothing downstream (queue, spool, database, logs) ever holds them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from store.capture.call_params import REPORTED
from store.capture.context import EMPTY, CallContext, from_headers, json_object
from store.capture.image_items import image_record
from store.capture.json_values import map_strings
from store.capture.providers import Route, azure_deployment, infer_route
from store.capture.redaction import (
    Scrubber,
    describe_exception,
    redact_url,
    safe_headers,
    secret_values,
)
from store.schema.models import Operation, Status
from store.schema.records import CallRecord, ImageRecord

#: The last path segment of each recorded endpoint, and the operation it stands for.
OPERATIONS = {
    "generations": Operation.generate,
    "edits": Operation.edit,
    "variations": Operation.variation,
}
_IMAGES_PATH = re.compile(r"/images/(generations|edits|variations)/?$")
#: Request fields with a column of their own, or file uploads: not repeated in `params`.
_NOT_PARAMS = frozenset({"prompt", "model", "user", "image", "image[]", "images", "mask"})
#: Inline uploads (data: URLs in JSON edits) longer than this are replaced by their length.
MAX_INLINE_DATA = 256
#: Response fields that say what was actually made (gpt-image), kept apart from the request's.
_RESOLVED_PARAMS = ("size", "quality", "background", "output_format")
#: Parameters only gpt-image models take: their presence means the default model is not dall-e-2.
_GPT_IMAGE_PARAMS = frozenset(
    {"background", "moderation", "output_format", "output_compression", "partial_images"}
)
REQUEST_ID_HEADERS = (
    "x-request-id",
    "apim-request-id",
    "x-ms-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-portkey-request-id",
    "cf-ray",
)
#: Longest error text kept from a response body that is not JSON.
MAX_ERROR_TEXT = 2000
#: A JSON number, short enough to be one (a longer digit string is kept as text).
_NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE][-+]?[0-9]{1,3})?")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def images_operation(path: str) -> Operation | None:
    """generate / edit / variation for an images endpoint path, else None (not recorded)."""
    match = _IMAGES_PATH.search(path)
    return OPERATIONS[match.group(1)] if match else None


@dataclass
class Exchange:
    """One images request and its answer as the transport saw them: bytes and times only.

    Holds the request's credentials in memory until `exchange_to_record` drops them; it is never
    serialised.
    """

    started_at: datetime
    method: str
    url: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""  # as on the wire: still content-encoded (unless body_decoded)
    body_decoded: bool = False  # True for a response that came already read (a mock, a cache)
    latency_ms: float | None = None
    error: BaseException | None = None  # a transport error (timeout, reset...)
    complete: bool = True  # False when the caller closed the response before its end
    context: CallContext = EMPTY  # the client's, under the caller's `recorder.context()`
    context_headers: dict[str, str] = field(default_factory=dict)  # x-imagelog-*, removed


def exchange_to_record(exchange: Exchange) -> CallRecord:
    """The record of one exchange, with every secret dropped or scrubbed."""
    url = httpx.URL(exchange.url)
    request_headers = {name.lower(): value for name, value in exchange.request_headers}
    response_headers = {name.lower(): value for name, value in exchange.response_headers}
    scrubber = Scrubber(secret_values(exchange.request_headers, exchange.url))
    route = infer_route(url.host, url.path, request_headers, response_headers)
    body, body_note = parse_request_body(request_headers.get("content-type", ""), exchange)
    params = {key: value for key, value in body.items() if key not in _NOT_PARAMS}
    context = call_context(exchange, body, request_headers)
    metadata = {
        **context.metadata,
        **_metadata(route, url, request_headers, body_note, exchange.complete),
    }
    if context.errors:
        metadata["context_errors"] = list(context.errors)

    record = CallRecord(
        created_at=exchange.started_at,
        provider=context.provider or route.provider,
        model=str(body.get("model") or _default_model(route, url.path, params)),
        operation=images_operation(url.path) or Operation.generate,
        prompt=scrubber.exact(str(body.get("prompt") or "")),
        params=scrubber.json(params),
        latency_ms=exchange.latency_ms,
        http_status=exchange.status,
        user=scrubber.exact(context.user) if context.user else None,
        request_id=_first_header(response_headers, REQUEST_ID_HEADERS),
        trace_id=_trace_id(request_headers, response_headers),
        metadata=scrubber.json(metadata),
        request=scrubber.json(
            {
                "method": exchange.method,
                "url": redact_url(exchange.url),
                "headers": safe_headers(exchange.request_headers),
                "body": body,
            }
        ),
        source="httpx",
    )
    if exchange.error is not None:
        record.status = Status.error
        record.error = describe_exception(exchange.error, scrubber)
    else:
        _apply_response(record, exchange, response_headers, scrubber)
    scrubber.record(record)  # what the response echoed too (a revised prompt, a JSON key)
    return record


# --- request ----------------------------------------------------------------------------------


def call_context(exchange: Exchange, body: dict[str, Any], headers: dict[str, str]) -> CallContext:
    """The call's context, the narrowest scope first (see `store.capture.context`): the
    request's `x-imagelog-*` headers, the body's `user`, Portkey's metadata, then the
    caller's block and client."""
    stated = from_headers(exchange.context_headers)
    body_user = CallContext(user=str(body["user"]) if body.get("user") else None)
    return stated.over(body_user).over(portkey_context(headers)).over(exchange.context)


def portkey_context(headers: dict[str, str]) -> CallContext:
    """Portkey's `x-portkey-metadata` keys as metadata, its `_user` as the user."""
    raw = headers.get("x-portkey-metadata")
    if raw is None:
        return EMPTY
    try:
        metadata = json_object(raw)
    except ValueError as exc:
        return CallContext(errors=(f"x-portkey-metadata ignored: {exc}",))
    user = metadata.pop("_user", None)
    return CallContext(user=str(user) if user not in (None, "") else None, metadata=metadata)


def parse_request_body(content_type: str, exchange: Exchange) -> tuple[dict[str, Any], str | None]:
    """The request's fields (files summarised, never their bytes) and a note if unreadable."""
    mime, options = parse_options_header(content_type)
    try:
        if mime == b"multipart/form-data" and b"boundary" in options:
            return parse_multipart(exchange.request_body, options[b"boundary"]), None
        if exchange.request_body:
            parsed = json.loads(exchange.request_body)
            if isinstance(parsed, dict):
                return _without_inline_data(parsed), None
            return {}, "request body is JSON but not an object"
    except Exception as exc:
        return {}, f"request body unreadable: {describe_exception(exc)}"
    return {}, None


def parse_multipart(body: bytes, boundary: bytes) -> dict[str, Any]:
    """Form fields as values (typed as JSON would have them), files as {filename,
    content_type, bytes}.

    Repeated names (`image[]` for several input images) become lists.
    """
    parts: list[dict[str, Any]] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}

    def on_part_begin() -> None:
        parts.append({"headers": {}, "data": bytearray(), "size": 0})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        parts[-1]["headers"][bytes(header["field"]).lower()] = bytes(header["value"])
        header["field"], header["value"] = bytearray(), bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        part["size"] += end - start
        if b"filename" not in _disposition(part)[1]:
            part["data"] += data[start:end]

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    parser.write(body)
    parser.finalize()

    fields: dict[str, Any] = {}
    for part in parts:
        _, options = _disposition(part)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            value: Any = {
                "filename": options[b"filename"].decode("utf-8", "replace"),
                "content_type": part["headers"].get(b"content-type", b"").decode("latin-1"),
                "bytes": part["size"],
            }
        else:
            value = _form_value(name, bytes(part["data"]).decode("utf-8", "replace"))
        if name in fields:
            existing = fields[name]
            fields[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            fields[name] = value
    return fields


def _form_value(name: str, text: str) -> Any:
    """A form field typed as the SDK's JSON body would have it: `true`/`false` as booleans,
    numbers as numbers (`stream`, `n`, `output_compression`), so a multipart edit's params
    compare with a JSON call's. Fields with a column of their own stay text."""
    if name in _NOT_PARAMS:
        return text
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.fullmatch(text):
        number = float(text) if any(c in text for c in ".eE") else int(text)
        if math.isfinite(number):
            return number
    return text


def _without_inline_data(value: Any) -> Any:
    """A copy with long `data:` URLs (uploaded images sent as JSON) replaced by their length."""
    return map_strings(value, _shortened_data_url)


def _shortened_data_url(text: str) -> str:
    if text.startswith("data:") and len(text) > MAX_INLINE_DATA:
        return f"[data URL: {len(text)} characters]"
    return text


def _disposition(part: dict[str, Any]) -> tuple[bytes, dict[bytes, bytes]]:
    return parse_options_header(part["headers"].get(b"content-disposition", b""))


def _default_model(route: Route, path: str, params: dict[str, Any]) -> str:
    """The model when the body names none: Azure's deployment, or OpenAI's documented default."""
    if deployment := azure_deployment(path):
        return deployment
    if route.provider == "openai" and not _GPT_IMAGE_PARAMS & params.keys():
        return "dall-e-2"  # the API's default when `model` is omitted
    return ""


def _metadata(
    route: Route,
    url: httpx.URL,
    headers: dict[str, str],
    body_note: str | None,
    complete: bool,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"host": url.host}
    if route.gateway:
        metadata["gateway"] = route.gateway
    if (retries := headers.get("x-stainless-retry-count", "0")) != "0":
        metadata["retry_count"] = int(retries) if retries.isdigit() else retries
    if client_request_id := headers.get("x-client-request-id"):
        metadata["client_request_id"] = client_request_id
    if user_agent := headers.get("user-agent"):
        metadata["user_agent"] = user_agent
    if body_note:
        metadata["note"] = body_note
    if not complete:
        metadata["response_incomplete"] = True
    return metadata


def _first_header(headers: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((headers[name][:200] for name in names if headers.get(name)), None)


def _trace_id(request: dict[str, str], response: dict[str, str]) -> str | None:
    for headers in (request, response):
        if trace := headers.get("x-portkey-trace-id") or headers.get("x-trace-id"):
            return trace[:200]
    if match := _TRACEPARENT.match(request.get("traceparent", "")):
        return match.group("trace")
    return None


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- response ---------------------------------------------------------------------------------


def _apply_response(
    record: CallRecord, exchange: Exchange, headers: dict[str, str], scrubber: Scrubber
) -> None:
    """Fill status, error, images, usage and response JSON from the response body."""
    status = exchange.status or 0
    try:
        text = _decoded(exchange).decode("utf-8", "replace")
    except Exception as exc:
        text = ""
        record.metadata_json["note"] = f"response body undecodable: {describe_exception(exc)}"
    is_stream = headers.get("content-type", "").startswith("text/event-stream")
    payload = _stream_payload(text) if is_stream else _json_or_text(text)
    ok = 200 <= status < 300
    if not ok:
        record.status = Status.error
        record.error = scrubber.text(_error_text(status, payload))
    elif not isinstance(payload, dict) and exchange.complete:
        record.status = Status.error
        record.error = "response is not a JSON object"
    if not exchange.complete:  # the caller closed it early: keep what was received, no error
        record.metadata_json["response_bytes_received"] = len(exchange.response_body)
    if isinstance(payload, dict):
        if ok:
            _take_images(record, payload)
        record.response_json = scrubber.json(_without_b64(payload))
    elif text:
        record.response_json = {"text": scrubber.text(text[:MAX_ERROR_TEXT])}


def _decoded(exchange: Exchange) -> bytes:
    """The body without its content-encoding (gzip, br...), decoded the way httpx would."""
    if exchange.body_decoded:
        return exchange.response_body
    response = httpx.Response(
        exchange.status or 200, headers=exchange.response_headers, content=exchange.response_body
    )
    return response.read()


def _stream_payload(text: str) -> dict[str, Any]:
    """A streamed images response (SSE) folded into the shape of a plain one.

    Partial images are counted, not kept; each `*.completed` event is one final image.
    """
    images: list[dict[str, Any]] = []
    payload: dict[str, Any] = {"data": images, "stream": True, "partial_images": 0}
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        event = _json_or_text(line[5:].strip())
        if not isinstance(event, dict):
            continue
        kind = str(event.get("type", ""))
        if kind.endswith(".partial_image"):
            payload["partial_images"] += 1
        elif kind.endswith(".completed"):
            images.append({"b64_json": event.get("b64_json")})
            for key in ("usage", *_RESOLVED_PARAMS):
                if key in event:
                    payload[key] = event[key]
        elif "error" in event:
            payload["error"] = event["error"]
    return payload


def _take_images(record: CallRecord, payload: dict[str, Any]) -> None:
    for item in payload.get("data") or []:
        if not isinstance(item, dict):
            continue
        try:
            record.images.append(_image(item))
        except ValueError as exc:
            notes = record.metadata_json.setdefault("image_notes", [])
            notes.append(f"image {len(notes)}: {describe_exception(exc)}")
    record.revised_prompt = next(
        (i.revised_prompt for i in record.images if i.revised_prompt), None
    )
    if isinstance(payload.get("usage"), dict):
        record.usage_json = payload["usage"]
    reported = {key: payload[key] for key in _RESOLVED_PARAMS if payload.get(key)}
    if reported:
        record.params_json[REPORTED] = reported


def _image(item: dict[str, Any]) -> ImageRecord:
    """The image of one response item: only what a provider says (never a state or a hash)."""
    url, b64 = item.get("url"), item.get("b64_json")
    if isinstance(url, str) and url.startswith("data:") and "," in url:
        # Some OpenAI-compatible hosts inline the image as a data: URL.
        b64 = url.split(",", 1)[1]
        url = None
    return image_record({"url": url, "b64_json": b64, "revised_prompt": item.get("revised_prompt")})


def _error_text(status: int, payload: Any) -> str:
    """`HTTP 400: <message> (code: x, type: y)` from an OpenAI-shaped error, else the body text."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        details = ", ".join(f"{key}: {error[key]}" for key in ("code", "type") if error.get(key))
        message = str(error.get("message") or "").strip()
        return f"HTTP {status}: {message}" + (f" ({details})" if details else "")
    if isinstance(error, str):
        return f"HTTP {status}: {error}"
    body = json.dumps(payload) if isinstance(payload, dict | list) else str(payload or "")
    return f"HTTP {status}: {body[:MAX_ERROR_TEXT]}".rstrip(": ")


def _without_b64(payload: dict[str, Any]) -> dict[str, Any]:
    """The response JSON with base64 images replaced by their length: the bytes go elsewhere."""
    result = dict(payload)
    if isinstance(payload.get("data"), list):
        result["data"] = [
            {**item, "b64_json": f"[{len(item['b64_json'])} base64 characters]"}
            if isinstance(item, dict) and isinstance(item.get("b64_json"), str)
            else item
            for item in payload["data"]
        ]
    return result

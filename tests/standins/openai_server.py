"""A loopback stand-in for an OpenAI-compatible images API, and the host of the images it makes.

It answers `POST .../images/generations|edits|variations` under any prefix (`/v1`, Azure's
`/openai/deployments/{name}`, a gateway's path), as OpenAI does: `url` or `b64_json` images
(gpt-image models always b64, with `usage`), `revised_prompt` for dall-e-3, and serves the PNGs
its URLs point to (with an Azure-SAS-like signature in the query, as real URLs carry). It also
works as a plain-HTTP forward proxy target, so a client can address `http://api.openai.com`
and still land here.

A test picks a misbehaviour per call with the `x-standin-scenario` header:
`error-400`, `error-500`, `error-html`, `echo-key` (a 401 whose message repeats the API key),
`echo-key-200` (a success that repeats it in the revised prompt and as a JSON key),
`slow:<seconds>`, `reset` (close the connection without an answer), `stream` (SSE events),
`bad-b64` (a 200 whose image is not base64). Chat completions (plain and streamed) and
embeddings answer too, for what a gateway passes through.

A request with `x-portkey-*` headers is answered as Portkey's gateway answers: the response
names the provider that served it in `x-portkey-provider` (the request's own, else the provider
behind its virtual key, `virtual_key_provider`; `served_by`, when set, as a config's fallback
that served instead) and the trace in `x-portkey-trace-id`.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import gzip
import hashlib
import io
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from tests.standins.server import LoopbackServer, Reply, Request

_IMAGES_PATH = re.compile(r"/images/(generations|edits|variations)/?$")
SCENARIO_HEADER = "x-standin-scenario"
DEFAULT_SIZE = "1024x1024"
MAX_DRAWN_SIDE = 1024


@dataclass
class Sent:
    """One images answer as written to the socket (after gzip, if any)."""

    path: str
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class OpenAIStandIn:
    """`with OpenAIStandIn() as api: OpenAI(base_url=api.v1, http_client=...)`."""

    sent: list[Sent] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    gzip_responses: bool = True
    virtual_key_provider: str = "openai"
    served_by: str | None = None

    def __post_init__(self) -> None:
        self.server = LoopbackServer(self._route)
        self.chat_gate = threading.Event()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def v1(self) -> str:
        return self.server.url("/v1")

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def image_requests(self) -> list[Request]:
        return [r for r in self.server.requests if _IMAGES_PATH.search(r.path)]

    def __enter__(self) -> OpenAIStandIn:
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.__exit__(*exc_info)

    # --- routing ------------------------------------------------------------------------------

    def _route(self, request: Request) -> Reply | None:
        if request.method == "GET" and request.path.startswith("/files/"):
            return self._file(request)
        if request.method == "GET" and request.path.endswith("/models"):
            return _json_reply(200, {"object": "list", "data": [{"id": "dall-e-3"}]})
        if request.method == "POST" and request.path.endswith("/chat/completions"):
            return self._chat(request)
        if request.method == "POST" and request.path.endswith("/embeddings"):
            return _json_reply(200, {"object": "list", "data": [{"embedding": [0.1, 0.2]}]})
        match = _IMAGES_PATH.search(request.path)
        if request.method != "POST" or not match:
            return _json_reply(404, {"error": {"message": f"no route {request.path}"}})
        scenario = request.headers.get(SCENARIO_HEADER, "")
        if scenario.startswith("slow:"):
            time.sleep(float(scenario.split(":", 1)[1]))
        if scenario == "reset":
            _reset(request)
            return None
        reply = self._images(request, match.group(1), scenario)
        return self._finish(request, reply)

    def _finish(self, request: Request, reply: Reply) -> Reply:
        if any(name.startswith("x-portkey-") for name in request.headers):
            asked = request.headers.get("x-portkey-provider", "")
            served = self.served_by or asked or self.virtual_key_provider
            reply.headers["x-portkey-provider"] = served
            trace = request.headers.get("x-portkey-trace-id") or str(uuid.uuid4())
            reply.headers["x-portkey-trace-id"] = trace
        if self.gzip_responses and "gzip" in request.headers.get("accept-encoding", ""):
            reply.body = gzip.compress(reply.body, mtime=0)
            reply.headers["Content-Encoding"] = "gzip"
        with self._lock:
            self.sent.append(Sent(request.path, reply.status, dict(reply.headers), reply.body))
        return reply

    def _file(self, request: Request) -> Reply:
        name = request.path.removeprefix("/files/")
        data = self.files.get(name)
        if data is None:
            return Reply(
                404, b"<Error><Code>BlobNotFound</Code></Error>", {"Content-Type": "text/xml"}
            )
        return Reply(200, data, {"Content-Type": "image/png"})

    def _chat(self, request: Request) -> Reply | None:
        """A chat completion; streamed (`"stream": true`) as SSE in chunks, the rest held back
        until `chat_gate` is set, so a test can see the first event arrive on its own."""
        answer = {"role": "assistant", "content": "Hello"}
        if not json.loads(request.body or b"{}").get("stream"):
            return _json_reply(200, {"object": "chat.completion", "choices": [{"message": answer}]})
        handler = request.handler
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        events = [{"choices": [{"delta": {"content": word}}]} for word in ("Hel", "lo")]
        lines = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
        for number, line in enumerate([*lines, b"data: [DONE]\n\n", b""]):
            handler.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            handler.wfile.flush()
            if number == 0:
                self.chat_gate.wait(10)
        return None

    # --- the images API -----------------------------------------------------------------------

    def _images(self, request: Request, endpoint: str, scenario: str) -> Reply:
        fields = _request_fields(request)
        model = str(fields.get("model") or "dall-e-2")
        if scenario == "error-400":
            return _json_reply(
                400,
                _error(
                    "Your request was rejected by the safety system.",
                    "invalid_request_error",
                    "content_policy_violation",
                ),
            )
        if scenario == "error-500":
            return _json_reply(
                500,
                _error("The server had an error processing your request.", "server_error", None),
            )
        if scenario == "error-html":
            return Reply(
                502, b"<html><body>Bad gateway</body></html>", {"Content-Type": "text/html"}
            )
        if scenario == "echo-key":
            key = request.headers.get("authorization", "").removeprefix("Bearer ")
            return _json_reply(
                401,
                _error(
                    f"Incorrect API key provided: {key}.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )
        n = int(fields.get("n") or 1)
        size = str(fields.get("size") or DEFAULT_SIZE)
        size = DEFAULT_SIZE if size == "auto" else size
        gpt_image = model.startswith("gpt-image")
        as_b64 = gpt_image or fields.get("response_format") == "b64_json"
        prompt = str(fields.get("prompt") or "")
        pngs = [_draw(size, f"{prompt}/{i}") for i in range(n)]
        if scenario == "stream":
            return _stream_reply(pngs, size)
        if scenario == "echo-key-200":  # a success that repeats the key in its text and keys
            key = request.headers.get("authorization", "").removeprefix("Bearer ")
            item = {"url": self.host(pngs[0]), "revised_prompt": f"made with {key}"}
            return _json_reply(200, {"created": int(time.time()), "data": [item], key: "x"})
        if scenario == "bad-b64":
            return _json_reply(200, {"created": int(time.time()), "data": [{"b64_json": "*%$"}]})
        data = []
        for png in pngs:
            item: dict[str, Any] = {}
            if as_b64:
                item["b64_json"] = base64.b64encode(png).decode()
            else:
                item["url"] = self.host(png)
            if model == "dall-e-3":
                item["revised_prompt"] = f"A vivid rendering of: {prompt}"
            data.append(item)
        body: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image:
            body.update(
                size=size,
                quality=str(fields.get("quality") or "medium").replace("auto", "medium"),
                output_format="png",
                background="opaque",
                usage={
                    "input_tokens": 50,
                    "output_tokens": 1056 * n,
                    "total_tokens": 50 + 1056 * n,
                    "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
                },
            )
        reply = _json_reply(200, body)
        reply.headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
        if endpoint != "generations":
            reply.headers["x-standin-endpoint"] = endpoint
        return reply

    def host(self, png: bytes) -> str:
        """Keep the image and return its URL, signed like an Azure blob SAS URL."""
        name = f"{uuid.uuid4().hex}.png"
        self.files[name] = png
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        signature = base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()
        return f"{self.base_url}/files/{name}?se={expiry.replace(':', '%3A')}&sp=r&sig={signature}"


def _request_fields(request: Request) -> dict[str, Any]:
    """JSON body, or multipart form fields (files as their bytes), parsed by the stdlib."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
        )
        return {
            part.get_param("name", header="content-disposition"): (
                part.get_payload(decode=True)
                if part.get_filename()
                else part.get_payload(decode=True).decode()
            )
            for part in message.iter_parts()
        }
    return json.loads(request.body or b"{}")


_DRAWN: dict[tuple[str, str], bytes] = {}


def _draw(size: str, seed: str) -> bytes:
    """A PNG of the requested size (capped), coloured by the prompt, so thumbnails differ."""
    key = (size, seed)
    if key not in _DRAWN:
        width, height = (min(int(side), MAX_DRAWN_SIDE) for side in size.split("x"))
        digest = hashlib.sha256(seed.encode()).digest()
        image = Image.new("RGB", (width, height), tuple(digest[:3]))
        ImageDraw.Draw(image).ellipse(
            (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=tuple(digest[3:6])
        )
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        _DRAWN[key] = buffer.getvalue()
    return _DRAWN[key]


def _stream_reply(pngs: list[bytes], size: str) -> Reply:
    """gpt-image streaming: a partial image, then one `completed` event per image."""
    events = []
    for index, png in enumerate(pngs):
        b64 = base64.b64encode(png).decode()
        events.append(
            {"type": "image_generation.partial_image", "b64_json": b64, "partial_image_index": 0}
        )
        events.append(
            {
                "type": "image_generation.completed",
                "b64_json": b64,
                "size": size,
                "output_format": "png",
                "index": index,
                "usage": {"input_tokens": 50, "output_tokens": 1056, "total_tokens": 1106},
            }
        )
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return Reply(200, body.encode(), {"Content-Type": "text/event-stream"})


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _json_reply(status: int, body: dict[str, Any]) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _reset(request: Request) -> None:
    """Drop the connection without answering, as a crashed upstream does."""
    request.handler.close_connection = True
    request.handler.connection.shutdown(socket.SHUT_RDWR)

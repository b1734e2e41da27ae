"""The gateway's ASGI app (Starlette): every request goes to its configured upstream through the
recorder's own async httpx client, so images calls are recorded by the very transport Python
callers use, and everything else passes through unrecorded.

The caller gets the upstream's status, headers and body bytes as they came (still
content-encoded; only hop-by-hop headers are dropped), streamed as they arrive, so a streaming
chat completion or an SSE images stream is never buffered. What the gateway answers itself is
an OpenAI-shaped JSON error, so every SDK shows its message:

- 404 `unknown_route`: the request names a route the configuration does not have;
- 413 `request_too_large`: the body is larger than `max_body_bytes` (never sent upstream);
- 502 `upstream_unreachable` / 504 `upstream_timeout`: the upstream refused, reset or did not
  answer in time (an images call is recorded as an error by the transport);
- `GET /healthz` answers 200 with the recorder's state, without going upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from store.capture.recorder import Recorder
from store.capture.redaction import describe_exception
from store.capture.transport import SDK_LIMITS
from store.gateway.config import GatewayConfig
from store.gateway.routing import (
    Target,
    UnknownRoute,
    Upstreams,
    forwarded_headers,
    returned_headers,
)
from store.media.guarded_transport import async_guarded_transport
from store.media.network_guard import NetworkGuard

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: The longest a connection to an upstream may take, within the configured timeout.
CONNECT_TIMEOUT = 5.0


class BodyTooLarge(Exception):
    """The request body passes `max_body_bytes`: answered 413, never sent upstream."""


def build_app(config: GatewayConfig, recorder: Recorder, *, drain_timeout: float) -> Starlette:
    """The gateway for `config`, recording into `recorder`; its shutdown closes the upstream
    client and then drains the recorder (`recorder.close(drain_timeout)`)."""
    gateway = _Gateway(config, recorder)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.client.aclose()
            await asyncio.to_thread(recorder.close, drain_timeout)

    return Starlette(
        routes=[
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/{path:path}", gateway.forward, methods=METHODS),
        ],
        lifespan=lifespan,
    )


class _Gateway:
    def __init__(self, config: GatewayConfig, recorder: Recorder) -> None:
        self.recorder = recorder
        self.upstreams = Upstreams.from_config(config)
        self.max_body_bytes = config.max_body_bytes
        self.timeout = config.timeout
        transport = async_guarded_transport(
            NetworkGuard.configured(), ssl_context=httpx.create_ssl_context(), limits=SDK_LIMITS
        )
        self.client = recorder.async_httpx_client(
            transport=transport,
            timeout=httpx.Timeout(config.timeout, connect=min(CONNECT_TIMEOUT, config.timeout)),
            follow_redirects=False,  # a redirect goes back to the caller, as the upstream sent it
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),  # callers share no jar
        )

    async def healthz(self, request: Request) -> Response:
        spool = self.recorder.spool
        return JSONResponse(
            {
                "status": "ok",
                "recorder": {"dropped": self.recorder.dropped, "spool_pending": spool.pending()},
            }
        )

    async def forward(self, request: Request) -> Response:
        scope = request.scope
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        try:
            target = self.upstreams.target(raw_path, scope["query_string"], scope["headers"])
        except UnknownRoute as exc:
            return error(404, str(exc), "unknown_route")
        try:
            body = await self._body(request)
        except BodyTooLarge:
            return error(
                413,
                f"request body larger than the gateway's limit of {self.max_body_bytes} bytes",
                "request_too_large",
            )
        upstream_request = httpx.Request(
            request.method, target.url, headers=forwarded_headers(scope["headers"]), content=body
        )
        try:
            response = await self.client.send(upstream_request, stream=True)
        except httpx.TimeoutException as exc:
            return error(
                504,
                f"the {target.name} upstream ({_where(target)}) {self._late(exc)}",
                "upstream_timeout",
            )
        except httpx.TransportError as exc:
            return error(
                502,
                f"the {target.name} upstream ({_where(target)}) could not be reached: "
                f"{describe_exception(exc)}",
                "upstream_unreachable",
            )
        return _streamed(response)

    def _late(self, exc: httpx.TimeoutException) -> str:
        """What ran out of time, for the 504's message."""
        if isinstance(exc, httpx.ConnectTimeout):
            return f"did not accept a connection within {min(CONNECT_TIMEOUT, self.timeout):g} s"
        if isinstance(exc, httpx.PoolTimeout):
            return "had no free connection in time (too many requests in flight)"
        return f"did not answer within {self.timeout:g} s"

    async def _body(self, request: Request) -> bytes:
        """The request body, or BodyTooLarge as soon as it is known to pass the limit."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BodyTooLarge
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)


def _streamed(response: httpx.Response) -> Response:
    """The upstream's response, relayed chunk by chunk as it arrives (raw: still encoded)."""

    async def chunks() -> AsyncIterator[bytes]:
        # An upstream that breaks off raises out of here: the server then drops the caller's
        # connection, so a cut body never passes for a whole one.
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            await response.aclose()  # also when the caller went away (the stream is cancelled)

    relayed = StreamingResponse(chunks(), status_code=response.status_code)
    relayed.raw_headers = returned_headers(response.headers.raw)
    return relayed


def _where(target: Target) -> str:
    """The upstream's origin, for messages (its path and the caller's query stay out)."""
    url = target.url
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def error(status: int, message: str, code: str) -> JSONResponse:
    """An error in OpenAI's shape, which every OpenAI-compatible SDK shows as its message."""
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "imagelog_gateway_error",
                "param": None,
                "code": code,
            }
        },
        status_code=status,
    )

"""httpx transports (sync and async) that record OpenAI-images calls on their way through.

The transport is the seam (as in encode/httpx): it wraps the real transport, lets every request
through, and for a POST to `/images/generations|edits|variations` tees the response body as
the caller reads it. The caller gets the very response object, and the very bytes, it would
have got without us (still content-encoded: httpx decodes them later, as usual). Only bytes and
timings are captured here; parsing happens on the recorder's thread, so the caller pays for a
list append per chunk and a queue put.

A failure of ours is logged and the call goes on as if unrecorded; a failure of the call itself
(timeout, reset) is recorded and the original exception re-raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

import httpx

from store.capture.openai_exchange import Exchange, images_operation
from store.media.proxies import ProxyRouter
from store.schema.models import utcnow

log = logging.getLogger(__name__)

#: Where captured exchanges go (the recorder's non-blocking enqueue).
Sink = Callable[[Exchange], None]
#: The openai SDK's own defaults: a client of ours must not change how the SDK behaves.
SDK_TIMEOUT = httpx.Timeout(timeout=600.0, connect=5.0)
SDK_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


def recording_client(
    sink: Sink, transport: httpx.BaseTransport | None = None, **kwargs: Any
) -> httpx.Client:
    """An `httpx.Client` configured as the SDK's own, whose every transport records.

    Given a `transport`, it is wrapped as is. Otherwise the transport httpx would have made is
    made here and wrapped: through `proxy` when given, else through the environment's proxy
    for each URL (unless `trust_env=False`). Passing a transport to `httpx.Client` turns its
    own proxy support off, so `ProxyRouter` does that part. `mounts` are used as given.
    """
    _sdk_defaults(kwargs)
    if transport is None:
        transport = _inner(httpx.HTTPTransport, kwargs)
    return httpx.Client(transport=RecordingTransport(transport, sink), **kwargs)


def async_recording_client(
    sink: Sink, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
) -> httpx.AsyncClient:
    """The async twin of `recording_client`."""
    _sdk_defaults(kwargs)
    if transport is None:
        transport = _inner(httpx.AsyncHTTPTransport, kwargs)
    return httpx.AsyncClient(transport=AsyncRecordingTransport(transport, sink), **kwargs)


def _sdk_defaults(kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("timeout", SDK_TIMEOUT)
    kwargs.setdefault("follow_redirects", True)


def _inner(make: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """The transport `httpx.Client(**kwargs)` would send through (`make`: its class).

    Pops `proxy`, which `httpx.Client` ignores once it is given a transport.
    """
    if (proxy := kwargs.pop("proxy", None)) is not None:
        return make(limits=SDK_LIMITS, proxy=proxy)
    if not kwargs.get("trust_env", True):
        return make(limits=SDK_LIMITS)
    return ProxyRouter(lambda proxy: make(limits=SDK_LIMITS, proxy=proxy))


def is_recorded(request: httpx.Request) -> bool:
    return request.method == "POST" and images_operation(request.url.path) is not None


def _start(request: httpx.Request, body: bytes) -> tuple[Exchange, float]:
    exchange = Exchange(
        started_at=utcnow(),
        method=request.method,
        url=str(request.url),
        request_headers=list(request.headers.multi_items()),
        request_body=body,
    )
    return exchange, time.perf_counter()


def _answered(exchange: Exchange, response: httpx.Response) -> None:
    exchange.status = response.status_code
    exchange.response_headers = list(response.headers.multi_items())


def _emit(sink: Sink, exchange: Exchange) -> None:
    try:
        sink(exchange)
    except Exception:
        log.exception("could not enqueue an images call for recording")


class _Tee:
    """Collects the body chunks the caller reads, and emits the exchange once at the end."""

    def __init__(self, exchange: Exchange, started: float, sink: Sink) -> None:
        self.exchange, self.started, self.sink = exchange, started, sink
        self.chunks: list[bytes] = []
        self.finished = False
        self.emitted = False

    def finish(self, error: BaseException | None = None) -> None:
        if self.emitted:
            return
        self.emitted = True
        exchange = self.exchange
        exchange.latency_ms = (time.perf_counter() - self.started) * 1000
        exchange.response_body = b"".join(self.chunks)
        exchange.complete = self.finished
        exchange.error = error
        _emit(self.sink, exchange)


class _SyncTeeStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, tee: _Tee) -> None:
        self.inner, self.tee = inner, tee

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.inner:
                self.tee.chunks.append(chunk)
                yield chunk
        except Exception as exc:
            self.tee.finish(exc)
            raise
        self.tee.finished = True
        self.tee.finish()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.tee.finish()


class _AsyncTeeStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, tee: _Tee) -> None:
        self.inner, self.tee = inner, tee

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                self.tee.chunks.append(chunk)
                yield chunk
        except Exception as exc:
            self.tee.finish(exc)
            raise
        self.tee.finished = True
        self.tee.finish()

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self.tee.finish()


class RecordingTransport(httpx.BaseTransport):
    """Wraps `inner`; images calls are captured and handed to `sink`, all else passes through."""

    def __init__(self, inner: httpx.BaseTransport, sink: Sink) -> None:
        self.inner, self.sink = inner, sink

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not is_recorded(request):
            return self.inner.handle_request(request)
        try:
            exchange, started = _start(request, request.read())
        except Exception:
            log.exception("could not capture an images request; sending it unrecorded")
            return self.inner.handle_request(request)
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            _Tee(exchange, started, self.sink).finish(exc)
            raise
        _answered(exchange, response)
        inner = cast(httpx.SyncByteStream, response.stream)  # a sync transport's own kind
        response.stream = _SyncTeeStream(inner, _Tee(exchange, started, self.sink))
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncRecordingTransport(httpx.AsyncBaseTransport):
    """The async twin of `RecordingTransport`, for `AsyncOpenAI`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, sink: Sink) -> None:
        self.inner, self.sink = inner, sink

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not is_recorded(request):
            return await self.inner.handle_async_request(request)
        try:
            exchange, started = _start(request, await request.aread())
        except Exception:
            log.exception("could not capture an images request; sending it unrecorded")
            return await self.inner.handle_async_request(request)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as exc:
            _Tee(exchange, started, self.sink).finish(exc)
            raise
        _answered(exchange, response)
        inner = cast(httpx.AsyncByteStream, response.stream)  # an async transport's own kind
        response.stream = _AsyncTeeStream(inner, _Tee(exchange, started, self.sink))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

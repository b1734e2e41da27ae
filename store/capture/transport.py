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

import functools
import importlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx

from store.capture.context import EMPTY, HEADER_PREFIX, CallContext, current
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
    sink: Sink,
    transport: Any = None,
    *,
    context: CallContext = EMPTY,
    stack: str = "httpx",
    **kwargs: Any,
) -> Any:
    """A `Client` of `stack` (httpx, or httpx2 as openai 3.x is built on) configured as the
    SDK's own, whose every transport records, with `context` for its calls.

    Given a `transport`, it is wrapped as is. Otherwise the transport the library would have
    made is made here and wrapped: through `proxy` when given, else through the environment's
    proxy for each URL (unless `trust_env=False`). Passing a transport to a client turns its
    own proxy support off, so `ProxyRouter` does that part. `mounts` are used as given.
    """
    http = http_stack(stack)
    _sdk_defaults(http.module, kwargs)
    if transport is None:
        transport = _inner(http.module, http.module.HTTPTransport, kwargs)
    recording = RecordingTransport(transport, sink, context, http)
    return http.module.Client(transport=recording, **kwargs)


def async_recording_client(
    sink: Sink,
    transport: Any = None,
    *,
    context: CallContext = EMPTY,
    stack: str = "httpx",
    **kwargs: Any,
) -> Any:
    """The async twin of `recording_client` (an `AsyncClient`)."""
    http = http_stack(stack)
    _sdk_defaults(http.module, kwargs)
    if transport is None:
        transport = _inner(http.module, http.module.AsyncHTTPTransport, kwargs)
    recording = RecordingTransport(transport, sink, context, http)
    return http.module.AsyncClient(transport=recording, **kwargs)


@dataclass(frozen=True)
class HttpStack:
    """One HTTP library (httpx, or httpx2: the same API under another name) and the classes
    of its that a recording client is made of. Its stream classes must be the library's own:
    a response checks its stream's kind before it is read."""

    module: Any
    sync_tee: type[_SyncTeeStream]
    async_tee: type[_AsyncTeeStream]


@functools.cache
def http_stack(name: str) -> HttpStack:
    """The stack of library `name` ("httpx" or "httpx2"), imported on first use."""
    if name not in ("httpx", "httpx2"):
        raise ValueError(f"stack must be 'httpx' or 'httpx2', not {name!r}")
    module = importlib.import_module(name)
    return HttpStack(
        module,
        type("SyncTeeStream", (_SyncTeeStream, module.SyncByteStream), {}),
        type("AsyncTeeStream", (_AsyncTeeStream, module.AsyncByteStream), {}),
    )


def stack_of(sdk: Any) -> str:
    """ "httpx2" when `sdk` (a module, class or object of an SDK package) is built on httpx2, as
    openai 3.x is, else "httpx": Stainless SDKs name their client class `DefaultHttpxClient`,
    a subclass (or an alias) of the library's `Client`."""
    name = sdk.__name__ if isinstance(sdk, ModuleType) else _type_of(sdk).__module__
    package = sys.modules.get(name.partition(".")[0])
    default = getattr(package, "DefaultHttpxClient", None)
    bases = default.__mro__ if isinstance(default, type) else ()
    return "httpx2" if any(base.__module__.startswith("httpx2") for base in bases) else "httpx"


def _type_of(value: Any) -> type:
    return value if isinstance(value, type) else type(value)


def _sdk_defaults(module: Any, kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("timeout", module.Timeout(**SDK_TIMEOUT.as_dict()))
    kwargs.setdefault("follow_redirects", True)


def _inner(module: Any, make: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """The transport `Client(**kwargs)` would send through (`make`: its class).

    Pops `proxy`, which a client ignores once it is given a transport.
    """
    limits = module.Limits(
        max_connections=SDK_LIMITS.max_connections,
        max_keepalive_connections=SDK_LIMITS.max_keepalive_connections,
    )
    if (proxy := kwargs.pop("proxy", None)) is not None:
        return make(limits=limits, proxy=proxy)
    if not kwargs.get("trust_env", True):
        return make(limits=limits)
    return ProxyRouter(lambda proxy: make(limits=limits, proxy=proxy))


def is_recorded(request: Any) -> bool:
    return request.method == "POST" and images_operation(request.url.path) is not None


def take_context_headers(request: Any) -> dict[str, str]:
    """Remove the `x-imagelog-*` headers from `request` (they never leave) and return them."""
    names = [name for name in request.headers if name.lower().startswith(HEADER_PREFIX)]
    taken = {name.lower(): request.headers[name] for name in names}
    for name in names:
        del request.headers[name]
    return taken


def _start(
    request: Any, body: bytes, context: CallContext, headers: dict[str, str]
) -> tuple[Exchange, float]:
    exchange = Exchange(
        started_at=utcnow(),
        method=request.method,
        url=str(request.url),
        request_headers=list(request.headers.multi_items()),
        request_body=body,
        context=current().over(context),
        context_headers=headers,
    )
    return exchange, time.perf_counter()


def _answered(exchange: Exchange, response: Any) -> None:
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


class _SyncTeeStream:
    """Mixed into the stack's `SyncByteStream` by `http_stack`."""

    def __init__(self, inner: Any, tee: _Tee) -> None:
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


class _AsyncTeeStream:
    """Mixed into the stack's `AsyncByteStream` by `http_stack`."""

    def __init__(self, inner: Any, tee: _Tee) -> None:
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


class RecordingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps `inner`; images calls are captured and handed to `sink`, all else passes through.

    One class serves sync and async clients (as httpx's `MockTransport` does), of httpx or
    httpx2 (`http`). Every request loses its `x-imagelog-*` headers here, recorded or not;
    an images call's exchange carries them, and `context`, the client's call context.
    """

    def __init__(
        self, inner: Any, sink: Sink, context: CallContext = EMPTY, http: HttpStack | None = None
    ) -> None:
        self.inner, self.sink, self.context = inner, sink, context
        self.http = http or http_stack("httpx")

    def handle_request(self, request: Any) -> Any:
        headers = take_context_headers(request)
        if not is_recorded(request):
            return self.inner.handle_request(request)
        try:
            exchange, started = _start(request, request.read(), self.context, headers)
        except Exception:
            log.exception("could not capture an images request; sending it unrecorded")
            return self.inner.handle_request(request)
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            _Tee(exchange, started, self.sink).finish(exc)
            raise
        return self._tee(response, exchange, started, self.http.sync_tee)

    async def handle_async_request(self, request: Any) -> Any:
        headers = take_context_headers(request)
        if not is_recorded(request):
            return await self.inner.handle_async_request(request)
        try:
            exchange, started = _start(request, await request.aread(), self.context, headers)
        except Exception:
            log.exception("could not capture an images request; sending it unrecorded")
            return await self.inner.handle_async_request(request)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as exc:
            _Tee(exchange, started, self.sink).finish(exc)
            raise
        return self._tee(response, exchange, started, self.http.async_tee)

    def _tee(self, response: Any, exchange: Exchange, started: float, tee_class: type) -> Any:
        """The response, its body teed into the exchange as the caller reads it; a response
        that comes already read (a mock, a cache) is recorded at once, from its content."""
        _answered(exchange, response)
        tee = _Tee(exchange, started, self.sink)
        if response.is_stream_consumed:
            try:
                tee.chunks.append(response.content)
            except Exception:  # read by someone who kept no content: recorded as incomplete
                log.debug("an images response came read without its content")
            else:
                exchange.body_decoded = True  # `content` has lost its content-encoding
                tee.finished = True
            tee.finish()
            return response
        response.stream = tee_class(response.stream, tee)
        return response

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

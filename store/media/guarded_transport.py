"""The httpx transports of server-side fetches: they connect only where the network guard
allows (`store.media.network_guard`), and the blocking one bounds every wait by the fetch's
deadline (`store.media.deadline`).

httpx's own transports cannot be given another network backend (encode/httpx#3749), so these
are small httpx transports over httpcore connection pools that get one, through httpcore's
public network-backend API:

- `GuardedBackend` (blocking) and `AsyncGuardedBackend` resolve the host themselves, check
  every address with the guard and connect to a checked address, so the address checked is the
  address connected to: no later lookup can answer differently (DNS rebinding), and a refused
  address never sees a packet. httpcore still sends the URL's host name as the Host header and
  as TLS SNI, and checks the certificate against it. Each redirect hop is a new connection
  through the same backend, so it is checked too.
- Through a proxy the connection goes to the proxy the user configured (wherever it is), and
  the proxy resolves the target: `store.media.proxies.ProxyRouter` checks the target's host
  with the guard before handing the request over (`NetworkGuard.check_proxied`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypedDict, cast

import httpcore
import httpx

from store.media.deadline import exceeded, time_left
from store.media.network_guard import NetworkGuard

#: httpcore's errors and the httpx errors httpx's own transports raise for them.
_HTTPX_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """Raise httpcore's errors as the most specific httpx error; anything else as it is (the
    guard's `AddressRefused` and the deadline's `DeadlineExceeded` are httpx errors already)."""
    try:
        yield
    except Exception as exc:
        for kind in type(exc).__mro__:
            if (mapped := _HTTPX_ERRORS.get(kind)) is not None:
                raise mapped(str(exc)) from exc
        raise


@contextmanager
def _connect_errors() -> Iterator[None]:
    """A failed lookup or connect as httpcore reports its own: ConnectTimeout or ConnectError."""
    try:
        yield
    except TimeoutError as exc:  # socket.timeout is TimeoutError
        raise httpcore.ConnectTimeout(str(exc) or "connect timed out") from exc
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc


@contextmanager
def _deadline_errors() -> Iterator[None]:
    """A timeout caused by the deadline running out is raised as DeadlineExceeded."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        if (error := exceeded()) is not None:
            raise error from exc
        raise


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits at most the time left."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _deadline_errors():
            return self._stream.read(max_bytes, time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _deadline_errors():
            self._stream.write(buffer, time_left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        with _deadline_errors():
            secure = self._stream.start_tls(ssl_context, server_hostname, time_left(timeout))
        return _DeadlineStream(secure)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Blocking connections to the addresses `guard` allows, bounded by the deadline.

    `guard=None` is for the connection to a proxy, which goes where the user configured it;
    the target behind the proxy is checked by `ProxyRouter` instead.
    """

    def __init__(self, guard: NetworkGuard | None) -> None:
        self.guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        with _deadline_errors():
            budget = time_left(timeout)  # the lookup and every attempt share it
            ends_at = None if budget is None else time.monotonic() + budget
            targets = [host]
            if self.guard is not None:
                with _connect_errors():
                    targets = [str(address) for address in self.guard.addresses(host, port, budget)]
            failure: httpcore.ConnectError | None = None
            for target in targets:  # the next address when one refuses the connection
                left = None if ends_at is None else max(ends_at - time.monotonic(), 0.001)
                try:
                    stream = self._inner.connect_tcp(
                        target, port, left, local_address, socket_options
                    )
                except httpcore.ConnectError as exc:
                    failure = exc
                    continue
                return _DeadlineStream(stream)
            raise cast(httpcore.ConnectError, failure)


class AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    """Connections on an asyncio loop to the addresses `guard` allows. (No deadline here:
    a coroutine is bounded whole by `asyncio.timeout`, as the URL probe is.)"""

    def __init__(self, guard: NetworkGuard) -> None:
        self.guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | None = None
        with _connect_errors():
            async with asyncio.timeout(timeout):  # the lookup and every attempt share it
                for address in await self.guard.addresses_async(host, port):
                    try:
                        return await self._inner.connect_tcp(
                            str(address), port, None, local_address, socket_options
                        )
                    except httpcore.ConnectError as exc:
                        failure = exc
        raise cast(httpcore.ConnectError, failure)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool built with a `GuardedBackend`."""

    def __init__(self, pool: httpcore.ConnectionPool) -> None:
        self._pool = pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with _as_httpx_errors():
            answer = self._pool.handle_request(_core_request(request))
        body = cast(Iterable[bytes], answer.stream)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=_Body(body),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class AsyncGuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool built with an `AsyncGuardedBackend`."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _as_httpx_errors():
            answer = await self._pool.handle_async_request(_core_request(request))
        body = cast(httpx.AsyncByteStream, answer.stream)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=_AsyncBody(body),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            self._stream.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


def _core_request(request: httpx.Request) -> httpcore.Request:
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


def guarded_transport(
    guard: NetworkGuard,
    proxy: str | None,
    *,
    ssl_context: ssl.SSLContext,
    limits: httpx.Limits,
) -> GuardedTransport:
    """A blocking transport straight to the addresses `guard` allows, or through `proxy`;
    either way every wait is bounded by the deadline."""
    sizes = _sizes(limits)
    if proxy is None:
        backend = GuardedBackend(guard)
        return GuardedTransport(
            httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend, **sizes)
        )
    settings = httpx.Proxy(proxy)
    proxy_url = httpcore.URL(
        scheme=settings.url.raw_scheme,
        host=settings.url.raw_host,
        port=settings.url.port,
        target=settings.url.raw_path,
    )
    if settings.url.scheme.startswith("socks"):
        pool: httpcore.ConnectionPool = httpcore.SOCKSProxy(
            proxy_url=proxy_url,
            proxy_auth=settings.raw_auth,
            ssl_context=ssl_context,
            network_backend=GuardedBackend(None),
            **sizes,
        )
    else:
        pool = httpcore.HTTPProxy(
            proxy_url=proxy_url,
            proxy_auth=settings.raw_auth,
            proxy_headers=settings.headers.raw,
            ssl_context=ssl_context,
            proxy_ssl_context=settings.ssl_context,
            network_backend=GuardedBackend(None),
            **sizes,
        )
    return GuardedTransport(pool)


def async_guarded_transport(
    guard: NetworkGuard, *, ssl_context: ssl.SSLContext, limits: httpx.Limits
) -> AsyncGuardedTransport:
    """An asyncio transport straight to the addresses `guard` allows (a proxied request goes
    through httpx's own transport: the proxy makes the connection that matters)."""
    return AsyncGuardedTransport(
        httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=AsyncGuardedBackend(guard), **_sizes(limits)
        )
    )


class _Sizes(TypedDict):
    max_connections: int | None
    max_keepalive_connections: int | None
    keepalive_expiry: float | None


def _sizes(limits: httpx.Limits) -> _Sizes:
    """httpx's limits as httpcore's pools take them."""
    return _Sizes(
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
    )

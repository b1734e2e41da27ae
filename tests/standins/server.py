"""A real HTTP server on 127.0.0.1 for stand-ins of providers and image hosts.

Each stand-in is a `Route` function: it gets the parsed request and returns a `Reply`
(or writes to the socket itself for broken-host cases). The server runs in a thread with
one thread per connection, so slow routes never hold up the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    handler: BaseHTTPRequestHandler  # for routes that misbehave on purpose (resets, stalls)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


#: A route returns a Reply, or None when it has already written (or broken) the response.
Route = Callable[[Request], Reply | None]


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections when a client opens dozens at once.
    request_queue_size = 128


class LoopbackServer:
    """`with LoopbackServer(route) as server: server.url("/path")`; `address` is any loopback
    address (Linux answers on all of 127.0.0.0/8), for tests that tell hosts apart by address."""

    def __init__(self, route: Route, address: str = "127.0.0.1") -> None:
        self.route = route
        self.requests: list[Request] = []
        self._httpd = _Server((address, 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY, delayed ACKs add
            # ~40 ms to every answer on loopback, which would swamp latency figures.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                    handler=self,
                )
                server.requests.append(request)
                reply = server.route(request)
                if reply is None:
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve

        return Handler

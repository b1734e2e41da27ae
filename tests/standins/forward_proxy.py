"""A plain-HTTP forward proxy on loopback: it notes every request it relays, then relays it.

A client configured to use it sends absolute-form requests (`GET http://host:port/path`); the
proxy opens its own connection to that host and hands the answer back. `relayed` lists the
URLs that came through, so a test can tell a proxied request from a direct one. Targets must
be loopback addresses: the tests never reach beyond the machine.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from tests.standins.server import LoopbackServer, Reply, Request

#: Headers that describe one connection, not the message: never relayed (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "content-length",  # the server writes its own
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class ForwardProxy(LoopbackServer):
    """`with ForwardProxy() as proxy:` then `HTTP_PROXY=proxy.base_url`; `proxy.relayed`."""

    def __init__(self) -> None:
        super().__init__(self._relay)
        self.relayed: list[str] = []

    def reset(self) -> None:
        self.relayed.clear()
        self.requests.clear()

    def _relay(self, request: Request) -> Reply:
        target = urlsplit(request.handler.path)
        if target.scheme != "http" or not target.hostname:
            return Reply(400, b"a forward proxy takes absolute-form http:// requests only")
        self.relayed.append(request.handler.path)
        connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            connection.request(
                request.method,
                target.path + (f"?{target.query}" if target.query else ""),
                body=request.body or None,
                headers={k: v for k, v in request.headers.items() if k not in HOP_BY_HOP},
            )
            answer = connection.getresponse()
            headers = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP}
            return Reply(answer.status, answer.read(), headers)
        finally:
            connection.close()

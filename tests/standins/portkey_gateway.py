"""A loopback stand-in for Portkey's gateway (`api.portkey.ai`) in front of the OpenAI stand-in.

Like Portkey, it wants an `x-portkey-api-key`, serves a request by its virtual key
(`x-portkey-virtual-key`, mapped here to a provider by `virtual_keys`) or by a named provider
(`x-portkey-provider`), and names the provider that served it in its `x-portkey-provider`
response header, with the trace in `x-portkey-trace-id`. The answer itself is the OpenAI
stand-in's (same images, same scenarios).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from tests.standins.openai_server import OpenAIStandIn
from tests.standins.server import LoopbackServer, Reply, Request


@dataclass
class PortkeyStandIn:
    """`with PortkeyStandIn() as portkey: ... portkey.base_url ...`"""

    virtual_keys: dict[str, str] = field(default_factory=lambda: {"openai-virtual-key": "openai"})

    def __post_init__(self) -> None:
        self.api = OpenAIStandIn()
        self.server = LoopbackServer(self._route)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def __enter__(self) -> PortkeyStandIn:
        self.api.__enter__()
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.__exit__(*exc_info)
        self.api.__exit__(*exc_info)

    def _route(self, request: Request) -> Reply | None:
        headers = request.headers
        if not headers.get("x-portkey-api-key"):
            return _error(401, "Either x-portkey-api-key or x-portkey-virtual-key is required")
        provider = headers.get("x-portkey-provider", "").lstrip("@").split("/")[0]
        if virtual_key := headers.get("x-portkey-virtual-key"):
            provider = self.virtual_keys.get(virtual_key, "")
            if not provider:
                return _error(401, f"Invalid virtual key: {virtual_key}")
        if not provider:
            return _error(400, "x-portkey-provider or x-portkey-virtual-key is required")
        reply = self.api.server.route(request)
        if reply is None:  # the OpenAI stand-in wrote (or broke) the answer itself
            return None
        reply.headers["x-portkey-provider"] = provider
        reply.headers["x-portkey-trace-id"] = headers.get("x-portkey-trace-id", uuid.uuid4().hex)
        return reply


def _error(status: int, message: str) -> Reply:
    body = json.dumps({"status": "failure", "message": message}).encode()
    return Reply(status, body, {"Content-Type": "application/json"})

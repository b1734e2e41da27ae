"""Running the gateway on uvicorn: the same settings for `imagelog gateway` and for tests and
benchmarks, which run it in a thread of their own.

uvicorn is told to add no `server` or `date` header (the caller gets the upstream's own), to
write no access log (a request line's query may carry a key), and to give requests in flight
`GRACEFUL_SHUTDOWN` seconds when it is stopped; the app's shutdown then drains the recorder.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import uvicorn

from store.capture.recorder import Recorder
from store.gateway.config import GatewayConfig
from store.gateway.proxy import build_app

GRACEFUL_SHUTDOWN = 30
#: How long an idle client connection is kept: longer than clients keep theirs (httpx 5 s, Node's
#: agents 4-15 s, load balancers 60 s), so a client never sends on a connection the gateway is
#: closing at that moment (which the client sees as a reset).
KEEP_ALIVE = 75


def make_server(
    config: GatewayConfig,
    recorder: Recorder,
    *,
    drain_timeout: float = 10.0,
    log_level: str = "warning",
) -> uvicorn.Server:
    """A uvicorn server for the gateway, not yet started (`.run()` blocks until stopped)."""
    app = build_app(config, recorder, drain_timeout=drain_timeout)
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            lifespan="on",
            server_header=False,
            date_header=False,
            access_log=False,
            log_level=log_level,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            timeout_keep_alive=KEEP_ALIVE,
        )
    )


@contextlib.contextmanager
def running(
    config: GatewayConfig, recorder: Recorder, *, drain_timeout: float = 10.0
) -> Iterator[str]:
    """Run the gateway in a thread (port 0: any free port) and yield its base URL; on exit it
    is stopped as a signal stops it, and its shutdown drains `recorder`."""
    server = make_server(config, recorder, drain_timeout=drain_timeout)
    thread = threading.Thread(target=server.run, name="imagelog-gateway", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the gateway did not start (see the log above)")
            thread.join(0.01)
        socket = server.servers[0].sockets[0]
        host, port = socket.getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join()

"""What `imagelog gateway` adds to a call, against calling the upstream directly.

    .venv/bin/python benchmarks/gateway_overhead.py                  # 2000 calls per side
    .venv/bin/python benchmarks/gateway_overhead.py --calls 5000 --concurrency 1 50

The loopback stand-in API (tests/standins/openai_server.py) runs in a process of its own, and so
does the gateway (`imagelog gateway`, recording into a SQLite file in a temporary folder, with
thumbnails); the clients (httpx, one client per thread) run here. Two kinds of call are timed:
an images generation (recorded: the transport tees the body, the recorder parses and writes it
and takes the thumbnail from the base64; `--size`, 256x256 by default) and a passthrough
(`GET /v1/models`, not recorded).
Each is timed straight to the stand-in (the raw baseline), through the gateway, and through the
smallest proxy of the same stack (`httpx-proxy`: Starlette on uvicorn relaying with a plain
`httpx.AsyncClient`, nothing recorded: the floor of a gateway whose upstream client is httpx),
in rounds whose order turns so drift hits every side alike, at each concurrency (that many
clients calling at once). It prints median and p99 per side, what the gateway adds (gateway
minus direct) and the ratio, against the goal (<= 1 ms added at the median, <= 5 ms at p99),
the CPU each proxy process spends per call, and the machine's load.

Loopback is the worst case: the direct call takes about a millisecond, where a real provider
takes seconds for an image, so the gateway's share shows here at its largest. All processes
share this machine's cores, so a busy machine (see the load) inflates both sides' tails.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
GOAL_MEDIAN_MS = 1.0
GOAL_P99_MS = 5.0
STANDIN = """
import sys
from tests.standins.openai_server import OpenAIStandIn
with OpenAIStandIn() as api:
    print(api.base_url, flush=True)
    sys.stdin.read()
"""
#: The floor: the same server stack relaying through a plain httpx client, recording nothing.
HTTPX_PROXY = """
import sys, httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route
upstream, port = sys.argv[1], int(sys.argv[2])
client = httpx.AsyncClient()
async def relay(request):
    outgoing = httpx.Request(
        request.method, upstream + request.url.path, headers=request.headers.raw,
        content=await request.body(),
    )
    response = await client.send(outgoing, stream=True)
    async def chunks():
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            await response.aclose()
    return StreamingResponse(chunks(), response.status_code, headers=response.headers)
app = Starlette(routes=[Route("/{path:path}", relay, methods=["GET", "POST"])])
uvicorn.run(app, port=port, log_level="warning", access_log=False, timeout_keep_alive=75)
"""
#: One call, made by a client against a base URL.
Call = Callable[[httpx.Client, str], None]


def images_call(size: str) -> Call:
    """An images generation of one `size` image, answered as base64 (no second request for
    the thumbnail, which the recorder then takes from the answer in the background)."""
    request = {"model": "dall-e-2", "prompt": "a benchmark", "size": size}

    def call(client: httpx.Client, base: str) -> None:
        answer = client.post(
            base + "/v1/images/generations",
            json={**request, "response_format": "b64_json"},
            headers={"Authorization": "Bearer sk-benchmark-0123456789abcdef"},
        )
        assert answer.status_code == 200, answer.text

    return call


def passthrough_call(client: httpx.Client, base: str) -> None:
    answer = client.get(base + "/v1/models")
    assert answer.status_code == 200, answer.text


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(call: Call, base: str, concurrency: int, calls: int) -> list[float]:
    """Milliseconds per call, `calls` in all, from `concurrency` clients calling at once."""
    per_client = max(1, calls // concurrency)
    results: list[list[float]] = [[] for _ in range(concurrency)]
    start = threading.Barrier(concurrency, timeout=120)

    def client_thread(times: list[float]) -> None:
        try:
            with httpx.Client(timeout=60) as client:
                call(client, base)  # the connection is opened before the clock starts
                start.wait()
                for _ in range(per_client):
                    began = time.perf_counter()
                    call(client, base)
                    times.append((time.perf_counter() - began) * 1000)
        except Exception as exc:  # counted and shown, so a failing side never passes as fast
            start.abort()
            failures.append(f"{type(exc).__name__}: {exc}"[:300])

    failures: list[str] = []
    threads = [threading.Thread(target=client_thread, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} client(s) failed against {base}: {failures[0]}")
    return [value for times in results for value in times]


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def free_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up") from None
            time.sleep(0.1)


def main() -> int:
    # A SIGTERM (timeout, Ctrl-C's cousin) unwinds like an exception, so the servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per side and kind")
    parser.add_argument("--rounds", type=int, default=6, help="rounds (each side once a round)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument(
        "--kind", nargs="+", default=["images", "passthrough"], choices=["images", "passthrough"]
    )
    parser.add_argument(
        "--size",
        default="256x256",
        help="image size of the images calls (a 1024x1024 one costs the recorder ~30 ms of "
        "CPU for its thumbnail, on the gateway's cores: see benchmarks/thumbnails.py)",
    )
    args = parser.parse_args()

    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "IMAGELOG_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        environment["IMAGELOG_HOME"] = folder
        standin = subprocess.Popen(
            [sys.executable, "-c", STANDIN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        assert standin.stdout is not None
        upstream = standin.stdout.readline().strip()
        port = free_port()
        gateway = f"http://127.0.0.1:{port}"
        database = f"sqlite:///{folder}/gateway.db"
        command = [sys.executable, "-m", "store", "--database-url", database, "gateway"]
        server = subprocess.Popen(
            [*command, "--upstream", upstream, "--port", str(port)],
            env=environment,
            stderr=subprocess.DEVNULL,
        )
        floor_port = free_port()
        floor = subprocess.Popen(
            [sys.executable, "-c", HTTPX_PROXY, upstream, str(floor_port)], env=environment
        )
        sides = {
            "direct": (upstream, None),
            "httpx-proxy": (f"http://127.0.0.1:{floor_port}", floor.pid),
            "gateway": (gateway, server.pid),
        }
        try:
            wait_until_up(gateway + "/healthz", server)
            wait_until_up(sides["httpx-proxy"][0] + "/v1/models", floor)
            print(
                f"{args.calls} calls per side and kind ({args.size} images), "
                f"{args.rounds} rounds; "
                f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} "
                f"{load_before[2]:.2f} on {os.cpu_count()} CPUs"
            )
            header = f"{'call':<12}{'clients':>8}  {'side':<18}{'median ms':>10}{'p99 ms':>9}"
            print(header)
            kinds = (("images", images_call(args.size)), ("passthrough", passthrough_call))
            for name, call in (kind for kind in kinds if kind[0] in args.kind):
                for concurrency in args.concurrency:
                    measure(name, call, sides, concurrency, args)
        finally:
            floor.terminate()
            server.terminate()
            floor.wait(60)
            server.wait(60)
            standin.communicate("", timeout=30)
        recorded = count_recorded(database)
    load_after = os.getloadavg()
    print(f"images calls recorded by the gateway: {recorded}")
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    return 0


def measure(
    name: str,
    call: Call,
    sides: dict[str, tuple[str, int | None]],
    concurrency: int,
    args: argparse.Namespace,
) -> None:
    """Time `call` on every side, in rounds whose order turns (and turns back), and print."""
    per_round = max(concurrency, args.calls // args.rounds)
    names = list(sides)
    times: dict[str, list[float]] = {side: [] for side in names}
    cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    for number in range(args.rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        for side in order if number % 2 == 0 else reversed(order):
            base, pid = sides[side]
            cpu_before = cpu_seconds(pid) if pid else 0.0
            times[side] += timed(call, base, concurrency, per_round)
            cpu[side] += (cpu_seconds(pid) - cpu_before) if pid else 0.0
    direct = times["direct"]
    for side, values in times.items():
        spent = f"   proxy CPU {cpu[side] * 1000 / len(values):.3f} ms/call" if cpu[side] else ""
        print(
            f"{name:<12}{concurrency:>8}  {side:<18}"
            f"{statistics.median(values):>10.3f}{p99(values):>9.3f}{spent}"
        )
    for side in names[1:]:
        through = times[side]
        added_median = statistics.median(through) - statistics.median(direct)
        added_p99 = p99(through) - p99(direct)
        verdict = (
            "meets the goal"
            if added_median <= GOAL_MEDIAN_MS and added_p99 <= GOAL_P99_MS
            else "MISSES the goal"
        )
        ratio = statistics.median(through) / statistics.median(direct)
        print(
            f"{name:<12}{concurrency:>8}  {side + ' adds':<18}{added_median:>10.3f}"
            f"{added_p99:>9.3f}   ratio {ratio:.2f}x median, "
            f"{p99(through) / p99(direct):.2f}x p99: {verdict} "
            f"(<= {GOAL_MEDIAN_MS:g} ms median, <= {GOAL_P99_MS:g} ms p99)"
        )


def count_recorded(database: str) -> int:
    from sqlalchemy import create_engine, func, select

    sys.path.insert(0, str(ROOT))
    from store.schema.models import GENERATIONS

    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(GENERATIONS)).scalar_one()
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())

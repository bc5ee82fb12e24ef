"""The ceiling of the stack itself: how many WebSocket frames/s one Quart-Trio + Hypercorn process
can push when it does nothing but send one pre-encoded frame over and over.

`serve_bare` is the server: `GET /health`, and two WebSocket routes that answer each text request
`{"frames": N}` with N copies of the same pre-encoded ~200-byte `StepProgress` event, then
`{"event":"done"}`, then wait for the next request on the same socket. `/bare/ws` is a Quart route;
`/bare/ws-raw` is plain ASGI in front of the Quart app, so the two differ only by what Quart costs.
`--transport hypercorn` serves it with stock Hypercorn (one `send` system call per frame: the
stack's ceiling as shipped); `--transport runcast` with `web.transport`, the Hypercorn worker that
`runcast serve` uses, which writes everything a connection has queued in one call and frames text
messages without Hypercorn's per-message layers.

`measure_ceiling` starts that server as a subprocess, spreads the connections over client processes
("spawn" context, the harness's lean client, `lean_ws`), warms every connection up (200 untimed
frames on the same socket), then times one request per connection: from the start signal until
every client process has counted all its frames. It reports frames/s and the CPU the server
(utime + stime from /proc) and the client processes each used meanwhile.

    python -m benchmarks.bare_stack serve --port 8001 [--frame-bytes 200] [--transport hypercorn]
    python -m benchmarks.bare_stack measure [--connections 100] [--frames-per-connection 2000]
        [--processes 1] [--route /bare/ws|/bare/ws-raw] [--transport hypercorn|runcast] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import queue
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any, TypeVar

import attrs
import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as serve_stock
from quart import websocket
from quart_trio import QuartTrio

from benchmarks.lean_ws import LeanWebSocket, open_websocket_url
from benchmarks.options import CLIENT_PROCESSES
from benchmarks.server import free_port, process_cpu_seconds, wait_for_health
from web.transport import serve as serve_runcast

QUART_ROUTE = "/bare/ws"
RAW_ROUTE = "/bare/ws-raw"
ROUTES = (QUART_ROUTE, RAW_ROUTE)
STOCK_TRANSPORT = "hypercorn"
RUNCAST_TRANSPORT = "runcast"
TRANSPORTS = (STOCK_TRANSPORT, RUNCAST_TRANSPORT)
DONE = orjson.dumps({"event": "done"}).decode()
ERROR_PREFIX = '{"event":"error"'
WARMUP_FRAMES = 200
RUN_TIMEOUT = 600.0
REPO_ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BadRequest(ValueError):
    """A request that is not `{"frames": <positive integer>}`; the message says why."""


def step_progress_frame(frame_bytes: int) -> str:
    """An Agno-like `StepProgress` event, its content padded so the frame is `frame_bytes` long."""
    event: dict[str, Any] = {
        "created_at": 1767225600,
        "event": "StepProgress",
        "workflow_id": "content-creation-workflow",
        "workflow_name": "Content Creation Workflow",
        "session_id": "9f1c2a6e-5b7d-4e0a-8c3f-2d6b1a9e7c40",
        "run_id": "3e8a7b1c-0d4f-4a2e-9b6c-5f1d8e2a7c93",
        "nested_depth": 0,
        "step_id": "research",
        "step_name": "research",
        "step_index": 0,
        "attempt": 1,
        "content": "",
        "event_index": 42,
    }
    padding = max(0, frame_bytes - len(orjson.dumps(event)))
    event["content"] = ("Searching sources on the topic. " * (padding // 32 + 1))[:padding]
    return orjson.dumps(event).decode()


def error_frame(problem: BadRequest) -> str:
    return orjson.dumps({"event": "error", "message": str(problem)}).decode()


def frames_requested(message: str | bytes) -> int:
    """The N of a request `{"frames": N}`; BadRequest if it is anything else."""
    try:
        request = json.loads(message)
    except ValueError as error:
        raise BadRequest(f'request is not JSON ({error}); send {{"frames": N}}') from None
    if not isinstance(request, dict) or "frames" not in request:
        raise BadRequest(f'request must be an object {{"frames": N}}, got {message!r}')
    frames = request["frames"]
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise BadRequest(f"frames must be a positive integer, got {frames!r}")
    return frames


def create_app(frame: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The Quart app (`/health`, `/bare/ws`) behind an ASGI wrapper that owns `/bare/ws-raw`."""
    app = QuartTrio(__name__)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket(QUART_ROUTE)
    async def bare_ws() -> None:
        while True:
            try:
                frames = frames_requested(await websocket.receive())
            except BadRequest as problem:
                await websocket.send(error_frame(problem))
                continue
            for _ in range(frames):
                await websocket.send(frame)
            await websocket.send(DONE)

    frame_message = {"type": "websocket.send", "text": frame}
    done_message = {"type": "websocket.send", "text": DONE}

    async def raw_bare_ws(receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                frames = frames_requested(message.get("text") or message.get("bytes") or "")
            except BadRequest as problem:
                await send({"type": "websocket.send", "text": error_frame(problem)})
                continue
            for _ in range(frames):
                await send(frame_message)
            await send(done_message)

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == RAW_ROUTE:
            await raw_bare_ws(receive, send)
        else:
            await app(scope, receive, send)

    return asgi


async def serve_bare(
    port: int,
    frame_bytes: int = 200,
    transport: str = STOCK_TRANSPORT,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the bare app on 127.0.0.1:`port` (0: any free port) until cancelled;
    `task_status.started` gets the bound addresses, e.g. `["http://127.0.0.1:8001"]`."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    app = create_app(step_progress_frame(frame_bytes))
    if transport == STOCK_TRANSPORT:
        await serve_stock(app, config, task_status=task_status)
    elif transport == RUNCAST_TRANSPORT:
        await serve_runcast(app, config, shutdown_trigger=trio.sleep_forever, task_status=task_status)
    else:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")


@attrs.frozen
class ClientResult:
    """What one client process reports: frames received, CPU (user + system) used while timed."""

    frames: int
    cpu_seconds: float


@attrs.frozen
class CeilingResult:
    """One timed measurement; CPU figures are user + system seconds spent while timed."""

    connections: int
    frames_per_connection: int
    processes: int
    route: str
    transport: str
    frames: int
    wall_seconds: float
    frames_per_second: float
    server_cpu_seconds: float
    server_cpu_us_per_frame: float
    server_core_percent: float
    client_cpu_seconds: float
    client_cpu_us_per_frame: float


async def request_frames(ws: LeanWebSocket, frames: int) -> int:
    """Ask for `frames` frames and count them up to the done frame."""
    await ws.send_message(json.dumps({"frames": frames}))
    received = 0
    while (message := await ws.get_message()) != DONE:
        if isinstance(message, str) and message.startswith(ERROR_PREFIX):
            raise RuntimeError(f"server refused {frames} frames: {message}")
        received += 1
    if received != frames:
        raise AssertionError(f"asked for {frames} frames, received {received}")
    return received


async def drive_connections(
    url: str,
    connections: int,
    frames: int,
    ready: Queue[None],
    go: ProcessEvent,
    results: Queue[ClientResult],
) -> None:
    """Open and warm up `connections` connections, put None on `ready`, wait for `go`, time one
    request on each connection and put the ClientResult on `results` (before closing them)."""
    warmed_send, warmed_receive = trio.open_memory_channel[None](connections)
    finished_send, finished_receive = trio.open_memory_channel[int](connections)
    start = trio.Event()

    async def connection() -> None:
        async with open_websocket_url(url) as ws:
            await request_frames(ws, WARMUP_FRAMES)
            warmed_send.send_nowait(None)
            await start.wait()
            finished_send.send_nowait(await request_frames(ws, frames))

    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(connection)
        for _ in range(connections):
            await warmed_receive.receive()
        ready.put(None)
        if not await trio.to_thread.run_sync(go.wait, RUN_TIMEOUT):
            raise RuntimeError(f"no start signal within {RUN_TIMEOUT} s")
        cpu_before = time.process_time()
        start.set()
        received = [await finished_receive.receive() for _ in range(connections)]
        results.put(ClientResult(sum(received), time.process_time() - cpu_before))


def client_process(
    url: str,
    connections: int,
    frames: int,
    ready: Queue[None],
    go: ProcessEvent,
    results: Queue[ClientResult],
) -> None:
    trio.run(drive_connections, url, connections, frames, ready, go, results)


def gather(messages: Queue[T], workers: list[BaseProcess]) -> list[T]:
    """One message from each client process; RuntimeError as soon as one of them fails."""
    deadline = time.monotonic() + RUN_TIMEOUT
    gathered: list[T] = []
    while len(gathered) < len(workers):
        try:
            gathered.append(messages.get(timeout=0.5))
        except queue.Empty:
            exit_codes = [worker.exitcode for worker in workers]
            if any(code not in (None, 0) for code in exit_codes) or time.monotonic() > deadline:
                raise RuntimeError(
                    f"client processes failed or hung: exit codes {exit_codes}"
                ) from None
    return gathered


def measure_ceiling(
    connections: int,
    frames_per_connection: int,
    processes: int,
    route: str = QUART_ROUTE,
    transport: str = STOCK_TRANSPORT,
) -> CeilingResult:
    """Start the bare server, spread `connections` over `processes` client processes, and time
    `frames_per_connection` frames on each connection."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {', '.join(ROUTES)}, got {route!r}")
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    if processes < 1 or connections < processes or frames_per_connection < 1:
        raise ValueError(
            "need processes >= 1, connections >= processes and frames_per_connection >= 1, got "
            f"connections={connections} frames_per_connection={frames_per_connection} "
            f"processes={processes}"
        )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bare_stack", "serve", "--port", str(port),
         "--transport", transport],
        cwd=REPO_ROOT,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}")
        context = multiprocessing.get_context("spawn")
        ready, go, results = context.Queue(), context.Event(), context.Queue()
        url = f"ws://127.0.0.1:{port}{route}"
        base, extra = divmod(connections, processes)
        shares = [base + (i < extra) for i in range(processes)]
        workers = [
            context.Process(
                target=client_process, args=(url, share, frames_per_connection, ready, go, results)
            )
            for share in shares
        ]
        for worker in workers:
            worker.start()
        try:
            gather(ready, workers)  # every connection is open and warmed up
            server_before = process_cpu_seconds(server.pid)
            started = time.perf_counter()
            go.set()
            clients = gather(results, workers)
            wall = time.perf_counter() - started
            server_cpu = process_cpu_seconds(server.pid) - server_before
        finally:
            for worker in workers:
                worker.join(timeout=30)
                if worker.exitcode is None:
                    worker.kill()
    finally:
        server.terminate()
        server.wait(timeout=30)
    frames = sum(client.frames for client in clients)
    client_cpu = sum(client.cpu_seconds for client in clients)
    return CeilingResult(
        connections=connections,
        frames_per_connection=frames_per_connection,
        processes=processes,
        route=route,
        transport=transport,
        frames=frames,
        wall_seconds=wall,
        frames_per_second=frames / wall,
        server_cpu_seconds=server_cpu,
        server_cpu_us_per_frame=server_cpu / frames * 1e6,
        server_core_percent=server_cpu / wall * 100,
        client_cpu_seconds=client_cpu,
        client_cpu_us_per_frame=client_cpu / frames * 1e6,
    )


def report(result: CeilingResult) -> str:
    return "\n".join(
        [
            (
                f"route={result.route} transport={result.transport} connections={result.connections} "
                f"frames/connection={result.frames_per_connection} "
                f"client processes={result.processes}"
            ),
            (
                f"frames received  {result.frames} in {result.wall_seconds:.2f} s = "
                f"{result.frames_per_second:,.0f} frames/s"
            ),
            (
                f"server CPU       {result.server_cpu_seconds:.2f} s = "
                f"{result.server_cpu_us_per_frame:.1f} us per frame "
                f"({result.server_core_percent:.0f}% of one core)"
            ),
            (
                f"client CPU       {result.client_cpu_seconds:.2f} s = "
                f"{result.client_cpu_us_per_frame:.1f} us per frame (all client processes)"
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser("serve", help="run the bare server")
    serve_command.add_argument("--port", type=int, required=True)
    serve_command.add_argument("--frame-bytes", type=int, default=200)
    serve_command.add_argument("--transport", choices=TRANSPORTS, default=STOCK_TRANSPORT)
    measure_command = commands.add_parser("measure", help="start the server and measure it")
    measure_command.add_argument("--connections", type=int, default=100)
    measure_command.add_argument("--frames-per-connection", type=int, default=2000)
    measure_command.add_argument("--processes", type=int, default=CLIENT_PROCESSES)
    measure_command.add_argument("--route", choices=ROUTES, default=QUART_ROUTE)
    measure_command.add_argument("--transport", choices=TRANSPORTS, default=STOCK_TRANSPORT)
    measure_command.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.command == "serve":
        trio.run(serve_bare, args.port, args.frame_bytes, args.transport)
        return
    result = measure_ceiling(
        args.connections, args.frames_per_connection, args.processes, args.route, args.transport
    )
    print(json.dumps(attrs.asdict(result)) if args.json else report(result))


if __name__ == "__main__":
    main()


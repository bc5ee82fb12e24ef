"""Fixtures that start a real runcast server (Hypercorn on a loopback port, real store) in the
test's own nursery, and stop it through the same shutdown path as SIGTERM.

`start_server` runs the app on runcast's transport (`web.transport`); a test marked
`ON_BOTH_TRANSPORTS` runs once more with the app on stock Hypercorn (`hypercorn.trio.serve`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as serve_stock
from hypercorn.typing import Framework

from actors import WorkflowCatalog
from actors.workflows.tools import ToolRegistry
from tests.web.graph_helpers import Gates, make_tools
from web.demo import Demo, demo_tools
from web.server import Settings, serve
from web.transport import HttpServer
from web.transport import serve as serve_http

FAST_STEP_DELAY = 0.02


@attrs.define
class Running:
    """A server serving in a test's nursery until `stop()`."""

    base_url: str
    stop_event: trio.Event
    stopped: trio.Event

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        """Shut down as on SIGTERM and wait until everything is closed."""
        self.stop_event.set()
        await self.stopped.wait()


ServeUntil = Callable[[Callable[[], Awaitable[None]], trio.TaskStatus[list[str]]], Awaitable[None]]


async def start_in(nursery: trio.Nursery, serve_until: ServeUntil) -> Running:
    """Start `serve_until(shutdown_trigger, task_status)` in `nursery`; its first bound address."""
    stop_event, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await serve_until(stop_event.wait, task_status)
        finally:
            stopped.set()

    binds = await nursery.start(run)
    return Running(binds[0], stop_event, stopped)


@attrs.define
class RunningServer(Running):
    settings: Settings = attrs.field(kw_only=True)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/workflows/ws"


StartServer = Callable[..., Awaitable[RunningServer]]


@attrs.frozen
class RedisServer:
    """A redis-server of this test session on a loopback port (`redis_server`)."""

    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        """FLUSHALL, in RESP over a plain socket: every key gone (the loaded functions stay)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as connection:
            connection.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            assert connection.recv(64).startswith(b"+OK")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server (7.0 or later, installed by `make test`) for the session: a free
    loopback port, its own directory, every write appended and fsynced (AOF always)."""
    directory = tmp_path_factory.mktemp("redis")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server did not listen within 20 s"
                time.sleep(0.05)
        yield RedisServer(port)
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runcast.db"


async def serve_on_stock_hypercorn(
    app: Framework,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    sockets: list[socket.socket],
    task_status: trio.TaskStatus[list[str]],
) -> None:
    """`web.transport.serve`'s part on stock Hypercorn's trio worker: `hypercorn.trio.serve`
    listens on duplicates of `sockets` (`fd://`), which it closes when it stops accepting."""
    config.bind = [f"fd://{os.dup(sock.fileno())}" for sock in sockets]
    await serve_stock(app, config, shutdown_trigger=shutdown_trigger, task_status=task_status)


@pytest.fixture
def http_server() -> HttpServer:
    """What `start_server` runs the app on: runcast's transport, unless a test is marked
    `ON_BOTH_TRANSPORTS`."""
    return serve_http


ON_BOTH_TRANSPORTS = pytest.mark.parametrize(
    "http_server", [serve_http, serve_on_stock_hypercorn], ids=["runcast", "stock-hypercorn"]
)


@pytest.fixture
async def start_server(db_path: Path, http_server: HttpServer) -> AsyncIterator[StartServer]:
    """`await start_server(**Settings fields, catalog=None, tools=None, demo_step_delay=0.02)`: a
    running server on 127.0.0.1:<free port>, SQLite store in the test's tmp dir, serving `catalog`
    and `tools`, by default the demo's (`web.demo`) with steps of `demo_step_delay` seconds.
    Servers still running at the end of the test are shut down gracefully."""
    async with trio.open_nursery() as nursery:
        servers: list[RunningServer] = []

        async def start(
            catalog: WorkflowCatalog | None = None,
            tools: ToolRegistry | None = None,
            demo_step_delay: float = FAST_STEP_DELAY,
            **overrides: Any,
        ) -> RunningServer:
            fields: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "store": f"sqlite:{db_path}"}
            fields.update(overrides)
            settings = Settings(**fields)
            workflows = Demo(step_delay=demo_step_delay).catalog() if catalog is None else catalog
            graph_tools = demo_tools() if tools is None else tools
            running = await start_in(
                nursery,
                lambda until, task_status: serve(
                    settings,
                    until,
                    catalog=workflows,
                    tools=graph_tools,
                    http_server=http_server,
                    task_status=task_status,
                ),
            )
            server = RunningServer(
                running.base_url, running.stop_event, running.stopped, settings=settings
            )
            servers.append(server)
            return server

        yield start
        with trio.fail_after(30):
            for server in servers:
                await server.stop()


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    """A server with the defaults of `start_server`."""
    return await start_server()


ServeAsgi = Callable[..., Awaitable[Running]]


@pytest.fixture
async def serve_asgi() -> AsyncIterator[ServeAsgi]:
    """`await serve_asgi(app, graceful_timeout=5.0)`: any ASGI app served by `web.transport.serve`
    (runcast's Hypercorn worker) on 127.0.0.1:<free port> in the test's nursery; stopped at the
    end of the test."""
    async with trio.open_nursery() as nursery:
        running: list[Running] = []

        async def start(app: Any, graceful_timeout: float = 5.0) -> Running:
            config = Config()
            config.bind = ["127.0.0.1:0"]
            config.accesslog = None
            config.graceful_timeout = graceful_timeout
            running.append(
                await start_in(
                    nursery,
                    lambda until, task_status: serve_http(
                        app, config, shutdown_trigger=until, task_status=task_status
                    ),
                )
            )
            return running[-1]

        yield start
        with trio.fail_after(30):
            for transport in running:
                await transport.stop()


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
async def gserver(start_server: StartServer, gates: Gates) -> RunningServer:
    """A server whose graph tools are `make_tools(gates)` (tests/web/graph_helpers.py)."""
    return await start_server(tools=make_tools(gates))

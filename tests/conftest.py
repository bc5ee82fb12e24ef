"""Fixtures that start a real runcast server (Hypercorn on a loopback port, real store) in the
test's own nursery, and stop it through the same shutdown path as SIGTERM.

`start_server` runs the app on runcast's transport (`web.transport`); a test marked
`ON_BOTH_TRANSPORTS` runs once more with the app on stock Hypercorn (`hypercorn.trio.serve`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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
from playwright.sync_api import Browser, sync_playwright

from actors import WorkflowCatalog
from actors.workflows.tools import ToolRegistry
from tests.processes import wait_for_health
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, f"{what} exited at start"
            assert time.monotonic() < deadline, f"{what} did not listen within 20 s"
            time.sleep(0.05)


@attrs.define
class RedisServer:
    """A real redis-server (7.0 or later, installed by `make test`) on a free loopback port with
    its own directory, every write appended and fsynced (AOF always); `kill` and `start` again
    keep the port and the data."""

    directory: Path
    port: int = attrs.field(factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always"],
            stdout=subprocess.DEVNULL,
        )
        wait_until_listening(self.port, self.process, "redis-server")

    def kill(self) -> None:
        """kill -9."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def flush(self) -> None:
        """FLUSHALL, in RESP over a plain socket: every key gone (the loaded functions stay)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as connection:
            connection.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            assert connection.recv(64).startswith(b"+OK")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the test session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone, for tests that kill it."""
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@attrs.define
class Node:
    """A `runcast serve` process of a cluster, on its own loopback port."""

    node_id: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/workflows/ws"


CLUSTER_LEASE_TTL = 2.0  # seconds: a killed node's runs are closed within about this long
CLUSTER_LEASE_RENEW = 0.5


@attrs.define
class Cluster:
    """`runcast serve` processes sharing one Redis store (`start_cluster`)."""

    store: str
    options: list[str]
    directory: Path
    nodes: list[Node] = attrs.Factory(list)

    def start(self, node_id: str, port: int | None = None) -> Node:
        """Start (or restart, on the same port) the node `node_id`, and wait until it serves."""
        port = port or free_port()
        log = open(self.directory / f"{node_id}.log", "ab")  # noqa: SIM115 - the process's stderr
        process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "runcast"), "serve",
             "--port", str(port), "--store", self.store, "--node-id", node_id,
             "--lease-ttl", str(CLUSTER_LEASE_TTL), "--lease-renew", str(CLUSTER_LEASE_RENEW),
             *self.options],
            stderr=log,
        )
        log.close()
        node = Node(node_id, port, process)
        wait_for_health(f"{node.url}/health", process)
        self.nodes = [n for n in self.nodes if n.node_id != node_id] + [node]
        return node

    def log_of(self, node: Node) -> str:
        return (self.directory / f"{node.node_id}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)
                node.process.kill()
                node.process.wait(timeout=20)


StartCluster = Callable[..., Cluster]


@pytest.fixture
def start_cluster(tmp_path: Path) -> Iterator[StartCluster]:
    """`start_cluster(store_url, nodes=3, *extra serve options)`: `nodes` runcast serve
    processes named node-0, node-1... on the store, with a short lease (`CLUSTER_LEASE_TTL`);
    each process's stderr goes to `<tmp>/<node id>.log`. All are killed at the end."""
    clusters: list[Cluster] = []

    def start(store: str, nodes: int = 3, *options: str) -> Cluster:
        cluster = Cluster(store, list(options), tmp_path)
        clusters.append(cluster)
        for index in range(nodes):
            cluster.start(f"node-{index}")
        return cluster

    try:
        yield start
    finally:
        for cluster in clusters:
            cluster.stop_all()


CHROMIUM = "/usr/bin/chromium"  # Debian's, which `make test` installs when missing
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless chromium driven by Playwright's sync API, for a module's sync tests (Playwright
    runs an asyncio loop of its own, so a trio test cannot drive it): the system's chromium, no
    browser download. Each test opens a context of its own (`browser.new_context()`)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


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

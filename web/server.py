"""`serve(settings, shutdown_trigger, catalog=..., tools=...)`: store, runtime and Hypercorn in
one nursery, the start-up and the shutdown order. The caller gives the workflows and the graph
tools (`runcast serve` gives the demo's, `web.demo`).

On start: the store (and its lock), the listening socket, then the runtime (which closes the runs
a previous process left running), then the app.

On the shutdown trigger (SIGTERM/SIGINT from the CLI, an event in tests): stop accepting
connections, give running runs `shutdown_grace` seconds then cancel them (their final events are
durable), let each socket send what its runs emitted and close it (1001), then close the store.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import cast

import attrs
import trio
from hypercorn.config import Config
from hypercorn.typing import Framework

from actors import WorkflowCatalog, open_runtime, open_store
from actors.graphs import Graphs
from actors.store import NodeSettings
from actors.store.redis_lease import DEFAULT_LEASE_RENEW, DEFAULT_LEASE_TTL
from actors.workflows.tools import ToolRegistry
from web.app import create_app
from web.shutdown import graceful_timeout
from web.sse import KEEP_ALIVE_INTERVAL
from web.transport import HttpServer, bind
from web.transport import serve as serve_http

log = logging.getLogger(__name__)


# When 1,000 subscribers each catch up on 2,000 events at once (`runcast-bench fanout`), every
# scheduler pass runs all their pumps and takes seconds. With Hypercorn's defaults a connection
# arriving then was either closed before its handshake was read (keep-alive timeout 5 s: 2 of 11
# runs failed so) or reset by the kernel (a listen backlog of 100 overflowed: 1 of 5 more runs).
KEEP_ALIVE_TIMEOUT = 30.0  # seconds an accepted connection may wait for its request
LISTEN_BACKLOG = 1024  # connections the kernel holds until they are accepted


@attrs.frozen
class Settings:
    host: str = "127.0.0.1"
    port: int = 7777
    store: str = "sqlite:./runcast.db"
    token: str | None = None
    shutdown_grace: float = 0.0
    max_message_size: int = 1024 * 1024
    feed_capacity: int = 1024
    graph_max_iterations: int = 1000
    max_run_events: int = 1_000_000
    # origins of browser pages that may use the server (web.origins); None: the loopback origins
    # of the server's own port
    allowed_origins: tuple[str, ...] | None = None
    # a store several nodes share (Redis): this node's name (None: host name and port), its
    # lease, and how long finished runs stay replayable (None: for ever)
    node_id: str | None = None
    lease_ttl: float = DEFAULT_LEASE_TTL
    lease_renew: float = DEFAULT_LEASE_RENEW
    retention: float | None = None
    # seconds a run's event stream (GET /runs/{run_id}/events) stays silent before it sends a
    # keep-alive comment
    sse_keep_alive: float = KEEP_ALIVE_INTERVAL

    def node(self) -> NodeSettings:
        return NodeSettings(
            self.node_id or f"{socket.gethostname()}:{self.port}", self.lease_ttl, self.lease_renew
        )


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.websocket_max_message_size = settings.max_message_size
    config.graceful_timeout = graceful_timeout(settings.shutdown_grace)
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    config.backlog = LISTEN_BACKLOG
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def serve(
    settings: Settings,
    shutdown_trigger: Callable[[], Awaitable[None]],
    *,
    catalog: WorkflowCatalog,
    tools: ToolRegistry,
    http_server: HttpServer = serve_http,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the workflows of `catalog`, and graphs over `tools`, until `shutdown_trigger`
    returns; `task_status.started` gets the bound addresses. The app is served on the bound
    sockets by `http_server`: runcast's transport unless another server of its signature is given.

    The store is opened first, so that its lock is taken before anything of it is read
    (`StoreInUse` if another process has it); then the port is bound (`BindFailed`), before
    the runtime closes the runs a previous process left running."""
    config = hypercorn_config(settings)
    async with open_store(settings.store, node=settings.node(), retention=settings.retention) as store:
        sockets = bind(config)
        try:
            async with open_runtime(
                store,
                catalog,
                feed_capacity=settings.feed_capacity,
                shutdown_grace=settings.shutdown_grace,
                max_run_events=settings.max_run_events,
            ) as runtime:
                closing = trio.Event()
                graphs = Graphs(runtime, tools, max_passes=settings.graph_max_iterations)
                app = create_app(
                    runtime,
                    graphs,
                    token=settings.token,
                    server_closing=closing,
                    allowed_origins=settings.allowed_origins,
                    sse_keep_alive=settings.sse_keep_alive,
                )
                # Hypercorn types ASGI messages as TypedDicts; the app takes them as the plain
                # dicts they are: the one place the two meet.
                framework = cast(Framework, app)
                stop_accepting = trio.Event()
                async with trio.open_nursery() as nursery:
                    binds = await nursery.start(
                        lambda task_status: http_server(
                            framework,
                            config,
                            shutdown_trigger=stop_accepting.wait,
                            sockets=sockets,
                            task_status=task_status,
                        )
                    )
                    log.info("runcast serving on %s with store %s", ", ".join(binds), settings.store)
                    task_status.started(binds)
                    await shutdown_trigger()
                    log.info("shutting down")
                    stop_accepting.set()
                    await runtime.shutdown(settings.shutdown_grace)
                    closing.set()
        finally:
            for sock in sockets:
                sock.close()
    log.info("stopped")

"""`create_app(runtime, graphs, ...)`: the Quart-Trio application, routes only; no run logic here.

`GET /metrics` is the Prometheus text of `web.metrics`; every WebSocket is wrapped so that its
frames count there. When the server has a token, every HTTP route but `/health` wants
`Authorization: Bearer <token>` (401 otherwise); `/workflows/ws` takes it as that header or its
`authenticate` action, and `/ws/graph/run/{graph_id}` as that header.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio

from actors import Runtime
from actors.graphs import Graphs
from web import graph_protocol
from web.closing import close_handshake
from web.graph_api import GraphSocket, graph_blueprint
from web.metrics import CountedWebSocket, WebStats, metrics_blueprint
from web.runs_api import problem, runs_blueprint
from web.workflows_ws import WorkflowSocket

UNAUTHORIZED = "Authorization: Bearer <token> is required"


def create_app(
    runtime: Runtime, graphs: Graphs, *, token: str | None, server_closing: trio.Event
) -> QuartTrio:
    app = QuartTrio("runcast")
    web_stats = WebStats()
    app.register_blueprint(runs_blueprint(runtime))
    app.register_blueprint(graph_blueprint(graphs))
    app.register_blueprint(metrics_blueprint(runtime, web_stats))

    def authorized(header: str) -> bool:
        return token is None or header == f"Bearer {token}"

    @app.before_request
    async def require_token() -> tuple[Response, int] | None:
        if request.path == "/health" or authorized(request.headers.get("Authorization", "")):
            return None
        return problem(401, UNAUTHORIZED)

    @app.websocket("/workflows/ws")
    async def workflows_ws() -> None:
        with counted_websocket() as counted:
            connection = WorkflowSocket(
                runtime,
                counted,
                token=token,
                server_closing=server_closing,
                authenticated=token is not None
                and authorized(websocket.headers.get("Authorization", "")),
            )
            await connection.serve()

    @app.websocket("/ws/graph/run/<graph_id>")
    async def graph_ws(graph_id: str) -> None:
        with counted_websocket() as counted:
            if not authorized(websocket.headers.get("Authorization", "")):
                await counted.send(graph_protocol.error(UNAUTHORIZED, "Unauthorized"))
                await close_handshake(counted, 1008, "unauthorized")
                return
            await GraphSocket(graphs, counted, graph_id, server_closing).serve()

    @contextmanager
    def counted_websocket() -> Iterator[CountedWebSocket]:
        web_stats.websockets_opened += 1
        web_stats.websockets_open += 1
        try:
            yield CountedWebSocket(websocket._get_current_object(), web_stats)  # type: ignore[attr-defined]
        finally:
            web_stats.websockets_open -= 1

    return app

"""`create_app(runtime, graphs, ...)`: the ASGI application, routes only; no run logic here.

The HTTP routes are Quart-Trio's. The two WebSocket routes, `/workflows/ws` (`WorkflowSocket`)
and `/ws/graph/run/{graph_id}` (`GraphSocket`), are served in plain ASGI in front of Quart, on
`web.asgi_websocket`; a handshake to any other path goes to Quart, which answers it 404.

`GET /metrics` is the Prometheus text of `web.metrics` (`/metrics.json` the same as JSON);
every WebSocket is wrapped so that its frames count there; `/static/` serves the browser files
(`web.static_files`), `/` and `/ui/` the dashboard's page (`web.dashboard_route`); `/openapi.json`
describes the HTTP routes and `/docs` renders that (`web.api_docs`). When the server has a token,
every HTTP request but those to `/health`, `/static/`, `/`, `/ui/`, `/openapi.json` and `/docs`,
and `OPTIONS` ones (CORS preflights), wants `Authorization: Bearer <token>` (401 otherwise);
`/workflows/ws` takes it as that header or its `authenticate` action, and
`/ws/graph/run/{graph_id}` as that header. The scheme is case-insensitive (`bearer`, `BEARER`),
and the token is compared in constant time.

Browser pages are held to the server's `OriginPolicy` (`web.origins`): `web.cross_site` applies
it to the routes Quart serves, and both WebSocket routes refuse a handshake from an origin
outside it with 403 before accepting it. Every HTTP error is JSON (`web.errors`), and every HTTP
exchange ends as `web.keep_alive` says (the connection closed after an answer given before the
request's body was read).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import cast

import orjson
import trio
from quart import Response, request
from quart_trio import QuartTrio

from actors import Runtime
from actors.graphs import Graphs
from web import graph_protocol
from web.api_docs import describes, docs_blueprint
from web.asgi_websocket import Asgi, AsgiWebSocket, Receive, Scope, Send, WebSocketDisconnected
from web.closing import close_handshake
from web.cross_site import guard
from web.dashboard_route import UNGUARDED, dashboard_blueprint
from web.errors import json_errors, problem
from web.graph_api import GraphSocket, graph_blueprint
from web.keep_alive import end_cleanly
from web.metrics import CountedWebSocket, WebStats, metrics_blueprint
from web.origins import OriginPolicy, origin_header, refusal
from web.runs_api import runs_blueprint
from web.sse import KEEP_ALIVE_INTERVAL, sse_blueprint
from web.static_files import STATIC_PREFIX, static_blueprint
from web.workflows_ws import WorkflowSocket

UNAUTHORIZED = "Authorization: Bearer <token> is required"
WORKFLOWS_WS = "/workflows/ws"
GRAPH_WS = "/ws/graph/run/"  # then the graph id

# A WebSocket route: the accepted socket, and whether its handshake carried the server's token
Converse = Callable[[CountedWebSocket, bool], Awaitable[None]]


def bearer_matches(header: str, token: str) -> bool:
    """Whether an `Authorization` header is `Bearer <token>` (the scheme in any case)."""
    scheme, _, credentials = header.strip(" \t").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip(" \t").encode("latin-1"), token.encode()
    )


def graph_id_of(path: str) -> str | None:
    """The graph id of a `/ws/graph/run/{graph_id}` path (one non-empty segment), else None."""
    graph_id = path.removeprefix(GRAPH_WS)
    if graph_id == path or not graph_id or "/" in graph_id:
        return None
    return graph_id


def create_app(
    runtime: Runtime,
    graphs: Graphs,
    *,
    token: str | None,
    server_closing: trio.Event,
    allowed_origins: tuple[str, ...] | None = None,
    sse_keep_alive: float = KEEP_ALIVE_INTERVAL,
) -> Asgi:
    """`allowed_origins`: as `web.origins.OriginPolicy` takes them (None: the default);
    `sse_keep_alive`: seconds a run's event stream (`web.sse`) stays silent before it sends a
    keep-alive comment."""
    app = QuartTrio("runcast", static_folder=None)  # web.static_files serves web/static/
    web_stats = WebStats()
    origins = OriginPolicy(allowed_origins)
    json_errors(app)
    guard(app, origins)
    app.register_blueprint(runs_blueprint(runtime))
    app.register_blueprint(sse_blueprint(runtime, server_closing, keep_alive=sse_keep_alive))
    app.register_blueprint(graph_blueprint(graphs))
    app.register_blueprint(metrics_blueprint(runtime, web_stats))
    app.register_blueprint(static_blueprint())
    app.register_blueprint(dashboard_blueprint())
    app.register_blueprint(docs_blueprint(token_required=token is not None))

    def authorized(header: str) -> bool:
        return token is None or bearer_matches(header, token)

    @app.before_request
    async def require_token() -> tuple[Response, int] | None:
        if request.method == "OPTIONS" or request.path == "/health":
            return None  # a browser sends a preflight without credentials
        if request.path.startswith(STATIC_PREFIX) or request.path in UNGUARDED:
            return None  # pages and scripts hold no data; what they then ask for needs the token
        if describes(request.path):
            return None  # the routes' description and its page act on nothing, as /health
        if authorized(request.headers.get("Authorization", "")):
            return None
        return problem(401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})

    async def serve_websocket(socket: AsgiWebSocket, converse: Converse) -> None:
        """Refuse a handshake from an origin the policy does not allow (403); else accept it and
        hold the conversation, counted, until it ends or the client leaves."""
        origin = origin_header(socket.scope["headers"])
        try:
            if origin is not None and not origins.allows(origin, socket.scope.get("server")):
                await socket.refuse(403, orjson.dumps({"detail": refusal(origin)}))
                return
            await socket.accept()
            with counted(socket) as counted_socket:
                await converse(counted_socket, authorized(socket.header("Authorization")))
        except* WebSocketDisconnected:
            pass  # the client left: the connection's tasks are cancelled with its nursery

    async def workflows_ws(socket: CountedWebSocket, has_token: bool) -> None:
        await WorkflowSocket(
            runtime, socket, token=token, server_closing=server_closing, authenticated=has_token
        ).serve()

    async def graph_ws(graph_id: str, socket: CountedWebSocket, has_token: bool) -> None:
        if not has_token:
            await socket.send(graph_protocol.error(UNAUTHORIZED, "Unauthorized"))
            await close_handshake(socket, 1008, "unauthorized")
            return
        await GraphSocket(graphs, socket, graph_id, server_closing).serve()

    def websocket_route(path: str) -> Converse | None:
        """What serves a WebSocket to `path`; None for a path Quart answers (404)."""
        if path == WORKFLOWS_WS:
            return workflows_ws
        graph_id = graph_id_of(path)
        return None if graph_id is None else partial(graph_ws, graph_id)

    @contextmanager
    def counted(socket: AsgiWebSocket) -> Iterator[CountedWebSocket]:
        web_stats.websockets_opened += 1
        web_stats.websockets_open += 1
        try:
            yield CountedWebSocket(socket, web_stats)
        finally:
            web_stats.websockets_open -= 1

    # Quart types ASGI messages as TypedDicts; this module speaks them as plain dicts, which is
    # what they are on the wire: the one place the two meet.
    quart = cast(Asgi, app)

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        route = websocket_route(scope["path"]) if scope["type"] == "websocket" else None
        if route is not None:
            await serve_websocket(AsgiWebSocket(scope, receive, send), route)
        elif scope["type"] == "http":
            await end_cleanly(quart, scope, receive, send)
        else:
            await quart(scope, receive, send)

    return asgi

"""The graph engine API: its HTTP routes and `GraphSocket` (`/ws/graph/run/{graph_id}`); the
graph logic itself is `actors.graphs`.

HTTP errors are `{"detail": "<what was wrong>"}`: 404 for an unknown graph or run, 422 for a
body that is not JSON, an invalid graph, or an invalid run request, 503 while shutting down or
while the store cannot write (a run that is lost then, see `actors.run`, included; on the
WebSocket it gets an `error` frame and a close with 1011).
The WebSocket sends `connected`, waits for `{"initial_state": {...}}` (a bad one gets an `error`
frame and the socket waits for a good one), starts the run and sends its frames (see
`web.graph_protocol`), then closes normally after `complete`; what the client sends meanwhile is
read and dropped. The run does not depend on the socket: a client that leaves (the socket ends
then, the run goes on) can follow it again over `/workflows/ws` with its `run_id`.

A graph that does not exist, or can no longer run (a tool it uses is not registered any more),
gets its `error` frame and then a close with 1008 and the reason `graph not found` or `graph
cannot run`, never 1000, which would tell the client its request was served. 1008 (policy
violation) is the code RFC 6455 gives for refusing a request when no more specific one fits, the
one this route already closes an unauthorized client with, and a code every WebSocket library
knows; a private code such as 4404 would mean something only to clients taught our convention.
The reason and the `error` frame say which refusal it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import orjson
import trio
from quart import Blueprint, Response, jsonify, request

from actors import RunLost, RuntimeClosing, StoreUnavailable, UnknownRun
from actors.store import StorageFailed
from actors.graphs import Graphs, NotAGraphRun, UnknownGraph
from actors.converter import InvalidDocument, structure_strictly
from actors.workflows.graph import InvalidGraph
from actors.workflows.graph_run import InvalidInitialState
from actors.workflows.graph_view import GraphRunView, GraphStatus
from web import graph_protocol
from web.asgi_websocket import WebSocketLike
from web.closing import close_handshake
from web.errors import problem
from web.shutdown import PUMP_FLUSH_TIMEOUT

REFUSED_RUN = (
    UnknownGraph,
    InvalidGraph,
    InvalidInitialState,
    RuntimeClosing,
    StoreUnavailable,
    InvalidDocument,
)

Close = tuple[int, str]  # the code and reason a graph socket is closed with
RUN_FINISHED: Close = (1000, "run finished")
GRAPH_NOT_FOUND: Close = (1008, "graph not found")
GRAPH_CANNOT_RUN: Close = (1008, "graph cannot run")
SHUTTING_DOWN: Close = (1001, "server shutting down")
RUN_LOST: Close = (1011, "run lost: the store cannot write")


@attrs.frozen
class GraphRunRequest:
    graph_id: str
    initial_state: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class GraphStreamStart:
    initial_state: dict[str, Any] = attrs.Factory(dict)


def parse_json(text: str | bytes, what: str) -> Any:
    """Decoded JSON, or InvalidDocument naming `what` was not JSON."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise InvalidDocument(f"{what} must be UTF-8 JSON text") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise InvalidDocument(f"{what} is not valid JSON: {error}") from None


def refusal_status(refused: Exception) -> int:
    if isinstance(refused, UnknownGraph):
        return 404
    return 503 if isinstance(refused, RuntimeClosing | StoreUnavailable) else 422


def view_json(view: GraphRunView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": view.run_id,
        "status": view.status.value,
        "current_node": view.current_node,
        "state": view.state,
        "execution_log": view.execution_log,
    }
    if view.error is not None:
        body["error"] = view.error
    return body


def graph_blueprint(graphs: Graphs) -> Blueprint:
    api = Blueprint("graph", __name__)

    async def run_request() -> tuple[str, dict[str, Any]]:
        body = parse_json(await request.get_data(), "the request body")
        run = structure_strictly(body, GraphRunRequest, "the run request")
        return run.graph_id, run.initial_state

    @api.post("/graph/create")
    async def create() -> Response | tuple[Response, int]:
        try:
            graph = await graphs.create(parse_json(await request.get_data(), "the request body"))
        except (InvalidDocument, InvalidGraph) as invalid:
            return problem(422, str(invalid))
        except StorageFailed as failure:
            return problem(503, f"the graph could not be saved: {failure}")
        return jsonify(
            {"graph_id": graph.graph_id, "name": graph.name, "start_node": graph.start,
             "message": "Graph created successfully"}
        )

    @api.get("/graph/tools")
    async def tools() -> Response:
        return jsonify({"tools": [tool.describe() for tool in graphs.tools]})

    @api.get("/graph/<graph_id>")
    async def definition(graph_id: str) -> Response | tuple[Response, int]:
        try:
            return jsonify({"graph_id": graph_id, **await graphs.definition(graph_id)})
        except UnknownGraph as unknown:
            return problem(404, str(unknown))

    @api.post("/graph/run")
    async def run() -> Response | tuple[Response, int]:
        try:
            info = await graphs.start(*await run_request())
        except REFUSED_RUN as refused:
            return problem(refusal_status(refused), str(refused))
        try:
            view = await graphs.wait(info.run_id)
        except RunLost as lost:
            return problem(503, str(lost))
        body = view_json(view)
        body["final_state"] = body.pop("state")
        return jsonify(body)

    @api.post("/graph/run/background")
    async def run_in_background() -> Response | tuple[Response, int]:
        try:
            info = await graphs.start(*await run_request())
        except REFUSED_RUN as refused:
            return problem(refusal_status(refused), str(refused))
        return jsonify(
            {"run_id": info.run_id, "message": "Workflow started in background",
             "status_endpoint": f"/graph/state/{info.run_id}"}
        )

    @api.get("/graph/background/<run_id>/status")
    async def background_status(run_id: str) -> Response | tuple[Response, int]:
        try:
            view = await graphs.view(run_id)
        except (UnknownRun, NotAGraphRun) as unknown:
            return jsonify({"run_id": run_id, "task_status": "not_found", "detail": str(unknown)}), 404
        body: dict[str, Any] = {
            "run_id": run_id,
            "task_status": view.status.value,
            "workflow_status": view.status.value,
            "current_node": view.current_node,
        }
        if view.status is GraphStatus.FAILED:
            body["error"] = view.error
        return jsonify(body)

    @api.get("/graph/state/<run_id>")
    async def state(run_id: str) -> Response | tuple[Response, int]:
        try:
            return jsonify(view_json(await graphs.view(run_id)))
        except (UnknownRun, NotAGraphRun) as unknown:
            return problem(404, str(unknown))

    return api


class GraphSocket:
    """One client of `/ws/graph/run/{graph_id}`: one run, streamed. The socket is the run's only
    graph-protocol subscriber (others follow the run's own event frames over `/workflows/ws`),
    so it folds the run's view itself: each event decoded once, its frames encoded once, and a
    batch of events sent at once."""

    def __init__(
        self, graphs: Graphs, ws: WebSocketLike, graph_id: str, server_closing: trio.Event
    ) -> None:
        self.graphs = graphs
        self.websocket = ws
        self.graph_id = graph_id
        self.server_closing = server_closing

    async def serve(self) -> None:
        """Until the run's last frame is sent (close 1000; also when a shutdown cancelled the
        run), until the graph turns out unknown or unable to run (1008), until the server
        shuts down before a run was started (1001), or until the client leaves: `receive`
        raises WebSocketDisconnected, before the run starts or while it streams."""
        done = trio.Event()
        close = SHUTTING_DOWN
        async with trio.open_nursery() as nursery:

            async def converse() -> None:
                nonlocal close
                close = await self._converse(nursery)
                done.set()
                nursery.cancel_scope.cancel()

            nursery.start_soon(converse)
            await self.server_closing.wait()
            with trio.move_on_after(PUMP_FLUSH_TIMEOUT):
                await done.wait()
            nursery.cancel_scope.cancel()
        await close_handshake(self.websocket, *close)

    async def _converse(self, nursery: trio.Nursery) -> Close:
        """The conversation up to the run's last frame; how the socket is to be closed. Once the
        run is started, `_drop_messages` reads in `nursery` while the run streams."""
        try:
            await self.graphs.get(self.graph_id)
        except UnknownGraph as unknown:
            await self.websocket.send(graph_protocol.error(str(unknown), "Graph not found"))
            return GRAPH_NOT_FOUND
        except InvalidGraph as unusable:
            await self.websocket.send(graph_protocol.error(str(unusable), "Graph cannot run"))
            return GRAPH_CANNOT_RUN
        await self.websocket.send(graph_protocol.connected(self.graph_id))
        while True:
            text = await self.websocket.receive()
            try:
                data = parse_json(text, "the message")
                start = structure_strictly(data, GraphStreamStart, "the message")
                info = await self.graphs.start(self.graph_id, start.initial_state)
            except REFUSED_RUN as refused:
                await self.websocket.send(graph_protocol.error(str(refused), "Invalid request"))
                continue
            break
        nursery.start_soon(self._drop_messages)
        view = GraphRunView(info.run_id, dict(start.initial_state))
        follow = await self.graphs.runtime.follow(info.run_id, 0)

        async def send(frames: Sequence[str]) -> None:
            texts: list[str] = []
            for frame in frames:
                event = orjson.loads(frame)
                view.apply(event)
                texts += graph_protocol.frames_for(event, view)
            if texts:
                await self.websocket.send_many(texts)

        try:
            await follow.stream_batches(send)
        except RunLost as lost:
            await self.websocket.send(graph_protocol.error(str(lost), "Run lost"))
            return RUN_LOST
        return RUN_FINISHED

    async def _drop_messages(self) -> None:
        """Read and drop what the client sends while its run streams, so that the client's
        leaving ends the socket (`receive` raises) instead of going unnoticed until the run
        ends."""
        while True:
            await self.websocket.receive()

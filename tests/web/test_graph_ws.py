"""`/ws/graph/run/{graph_id}` (`GraphSocket` of web/graph_api.py, routed in web/app.py) over a real
server with real trio-websocket clients: the frame order of the guide and the normal close, the
code-review loop seen frame by frame, failing nodes, refused messages on a socket that stays
usable, unknown graphs and graphs that can no longer run (close 1008), invalid UTF-8 (close 1007,
sent by a raw client), clients that leave mid-run, the token, and a server shut down mid-run;
then the route's own layer: plain ASGI in front of Quart (its Origin check, its 404s, its
metrics, its frames handed over a batch at a time) and each event framed once however many
clients follow its run.

Runs that must still be running while the test acts pass through a gated `wait` node (see
tests/web/graph_helpers.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from actors import WorkflowCatalog, open_runtime, open_store
from actors.events import EventEncoder
from actors.graphs import Graphs
from actors.workflows.examples.code_review import SAMPLE_CODE, code_review_graph
from actors.workflows.graph_view import GraphRunView
from tests.clients import events_only, ws_client
from tests.conftest import RunningServer, ServeAsgi, StartServer
from tests.raw_websocket import client_text_frame, raw_websocket
from tests.web.graph_helpers import (
    CODE_REVIEW_NODES,
    FAILING_GRAPH,
    FIXABLE_CODE,
    GATED_GRAPH,
    GUARD,
    TWO_NODES,
    UNFIXABLE_CODE,
    Gates,
    create_graph,
    graph_state,
    make_tools,
    poll_until_finished,
)
from tests.web.test_metrics import scrape
from web import graph_protocol
from web.app import create_app
from web.asgi_websocket import SEND_TEXTS

TOKEN = "s3cret"


# --- helpers -------------------------------------------------------------------------------------


def graph_url(server: RunningServer, graph_id: str) -> str:
    return f"{server.base_url.replace('http://', 'ws://')}/ws/graph/run/{graph_id}"


@asynccontextmanager
async def graph_socket(
    server: RunningServer, graph_id: str, token: str | None = None, origin: str | None = None
) -> AsyncIterator[WebSocketConnection]:
    headers = [] if token is None else [(b"Authorization", f"Bearer {token}".encode())]
    if origin is not None:
        headers.append((b"Origin", origin.encode()))
    async with open_websocket_url(graph_url(server, graph_id), extra_headers=headers) as ws:
        yield ws


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(GUARD):
        frame: dict[str, Any] = json.loads(await ws.get_message())
    return frame


async def recv_until(ws: WebSocketConnection, *types: str) -> list[dict[str, Any]]:
    """Frames up to and including the first whose `type` is one of `types`."""
    frames = [await recv(ws)]
    while frames[-1]["type"] not in types:
        frames.append(await recv(ws))
    return frames


async def close_code(ws: WebSocketConnection) -> int:
    """The code the server closed with, once every frame before the close has been read."""
    code, _ = await close_of(ws)
    return code


async def close_of(ws: WebSocketConnection) -> tuple[int, str | None]:
    """The code and reason the server closed with, once every frame before has been read."""
    with trio.fail_after(GUARD), pytest.raises(ConnectionClosed) as closed:
        await ws.get_message()
    return closed.value.reason.code, closed.value.reason.reason


async def start(ws: WebSocketConnection, initial_state: dict[str, Any]) -> str:
    """Read `connected`, send the initial state; the run id of the `status started` frame."""
    assert (await recv(ws))["type"] == "connected"
    await ws.send_message(json.dumps({"initial_state": initial_state}))
    started = await recv(ws)
    assert (started["type"], started["status"]) == ("status", "started")
    return str(started["run_id"])


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    return [f["type"] if f["type"] != "status" else f"status:{f['status']}" for f in frames]


def assert_utc_iso(text: str) -> None:
    assert datetime.fromisoformat(text).utcoffset() == timedelta(0)


# --- the guide's flow ----------------------------------------------------------------------------


async def test_a_two_node_run_streams_the_guides_frames_then_closes_normally(
    gserver: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
        async with graph_socket(gserver, graph_id) as ws:
            connected = await recv(ws)
            assert connected == {
                "type": "connected",
                "message": "WebSocket connection established",
                "graph_id": graph_id,
            }
            await ws.send_message(json.dumps({"initial_state": {"count": 40}}))
            frames = await recv_until(ws, "complete")
            code = await close_code(ws)
        run_id = frames[0]["run_id"]
        state = await graph_state(http, run_id)
    assert kinds(frames) == [
        "status:started",
        "node_start", "node_complete", "transition",
        "node_start", "node_complete", "transition",
        "status:completed", "complete",
    ]
    assert code == 1000
    _, a_start, a_done, a_move, b_start, b_done, b_move, completed, complete = frames
    assert (a_start["node"], a_start["iteration"]) == ("a", 1)
    assert (a_done["node"], a_done["state_update"]) == ("a", {"count": 41})
    assert (a_move["from"], a_move["to"]) == ("a", "b")
    assert (b_start["node"], b_start["iteration"]) == ("b", 1)
    assert (b_done["node"], b_done["state_update"]) == ("b", {"count": 42})
    assert (b_move["from"], b_move["to"]) == ("b", "END")
    assert completed["run_id"] == complete["run_id"] == run_id
    for frame in frames[:-1]:
        assert_utc_iso(frame["timestamp"])
    assert complete["final_state"] == {"count": 42} == state["state"]
    assert complete["execution_log"] == state["execution_log"]
    assert [(e["node"], e["status"]) for e in complete["execution_log"]] == [
        ("a", "completed"), ("b", "completed"),
    ]
    assert state["status"] == "completed" and state["current_node"] == "END"


async def test_the_code_review_example_streams_its_five_nodes(gserver: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())
    async with graph_socket(gserver, graph_id) as ws:
        await start(ws, {"code": SAMPLE_CODE, "threshold": 7, "max_iterations": 3})
        frames = await recv_until(ws, "complete")
        assert await close_code(ws) == 1000
    assert [f["node"] for f in frames if f["type"] == "node_start"] == CODE_REVIEW_NODES
    updates = {f["node"]: f["state_update"] for f in frames if f["type"] == "node_complete"}
    assert updates["extract"]["function_count"] == 3
    assert updates["check_quality"]["quality_score"] == 8.5
    assert frames[-1]["final_state"]["quality_score"] == 8.5
    assert len(frames[-1]["execution_log"]) == 5


async def test_a_loop_that_cannot_improve_ends_with_the_system_frame(
    gserver: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())
    async with graph_socket(gserver, graph_id) as ws:
        await start(ws, {"code": UNFIXABLE_CODE, "threshold": 7, "max_iterations": 3})
        frames = await recv_until(ws, "complete")
    assert kinds(frames)[-3:] == ["system", "status:completed", "complete"]
    system = frames[-3]
    assert system["message"] == "Max iterations reached"
    assert_utc_iso(system["timestamp"])
    iterations: dict[str, list[int]] = {}
    for frame in frames:
        if frame["type"] == "node_start":
            iterations.setdefault(frame["node"], []).append(frame["iteration"])
    assert iterations == {
        "extract": [1],
        "analyze": [1, 2, 3],
        "detect": [1, 2, 3],
        "suggest": [1, 2, 3],
        "check_quality": [1, 2, 3],
    }
    scores = [f["state_update"]["quality_score"] for f in frames
              if f["type"] == "node_complete" and f["node"] == "check_quality"]
    assert scores == [6.0, 6.0, 6.0]
    assert frames[-1]["execution_log"][-1]["node"] == "SYSTEM"


async def test_a_loop_whose_fixes_raise_the_score_goes_back_once_then_ends(
    gserver: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())
    async with graph_socket(gserver, graph_id) as ws:
        await start(ws, {"code": FIXABLE_CODE, "threshold": 7})
        frames = await recv_until(ws, "complete")
    scores = [f["state_update"]["quality_score"] for f in frames
              if f["type"] == "node_complete" and f["node"] == "check_quality"]
    assert scores == [6.0, 10.0]
    moves = [(f["from"], f["to"]) for f in frames if f["type"] == "transition"]
    assert [move for move in moves if move[0] == "check_quality"] == [
        ("check_quality", "analyze"), ("check_quality", "END"),
    ]
    assert moves[-1] == ("check_quality", "END")
    assert "system" not in kinds(frames)
    assert [f["iteration"] for f in frames if f["type"] == "node_start" and f["node"] == "analyze"] == [1, 2]
    assert frames[-1]["final_state"]["quality_score"] == 10.0


# --- failures ------------------------------------------------------------------------------------


async def test_a_failing_node_gives_node_error_then_error_and_other_runs_go_on(
    gserver: RunningServer, gates: Gates
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        gated = await create_graph(http, GATED_GRAPH)
        failing = await create_graph(http, FAILING_GRAPH)
        async with graph_socket(gserver, gated) as other, graph_socket(gserver, failing) as ws:
            other_run = await start(other, {"count": 0})
            await gates.wait_reached("hold")
            run_id = await start(ws, {})
            frames = await recv_until(ws, "error")
            assert await close_code(ws) == 1000
            assert kinds(frames) == [
                "node_start", "node_complete", "transition", "node_start", "node_error", "error",
            ]
            node_error, error = frames[-2:]
            assert node_error["node"] == "explode"
            assert node_error["error"] == "RuntimeError: tool exploded"
            assert "tool exploded" in error["error"] and "explode" in error["error"]
            assert error["message"] == "Workflow execution failed"
            state = await graph_state(http, run_id)
            assert state["status"] == "failed" and state["error"] == error["error"]
            assert state["execution_log"][-1]["status"] == "failed"
            status = await poll_until_finished(http, run_id)
            assert status["task_status"] == "failed" and status["error"] == error["error"]
            gates.open("hold")
            rest = await recv_until(other, "complete")
            assert await close_code(other) == 1000
    assert rest[-1]["run_id"] == other_run
    assert rest[-1]["final_state"] == {"count": 2, "waited": ["hold"]}


@pytest.mark.parametrize(
    ("graph_id", "named"),
    [("no-such-graph", "no-such-graph"), ("g" * 10_000, f"{'g' * 200}… (10000 characters)")],
    ids=["short id", "10,000-character id"],
)
async def test_an_unknown_graph_gets_an_error_frame_then_a_close_with_1008(
    gserver: RunningServer, graph_id: str, named: str
) -> None:
    """The error quotes at most 200 characters of the id; the close says the request was
    refused (1008), not served (1000)."""
    async with graph_socket(gserver, graph_id) as ws:
        frame = await recv(ws)
        assert frame == {
            "type": "error", "error": f"Graph {named} not found", "message": "Graph not found"
        }
        assert await close_of(ws) == (1008, "graph not found")


async def test_a_graph_that_can_no_longer_run_gets_an_error_frame_then_a_close_with_1008(
    start_server: StartServer, gates: Gates
) -> None:
    """A graph created with a tool the restarted server no longer has (`inc`); its node's
    10,000-character name is quoted in part."""
    node = "n" * 10_000
    first = await start_server(tools=make_tools(gates))
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        orphan = {"name": "orphan", "nodes": {node: {"function": "inc"}}}
        graph_id = await create_graph(http, orphan)
    await first.stop()
    second = await start_server()
    async with graph_socket(second, graph_id) as ws:
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["message"] == "Graph cannot run"
        assert frame["error"].startswith(
            f"graph {graph_id} can no longer run: nodes.{'n' * 200}… (10000 characters).function:"
            " unknown tool 'inc'"
        )
        assert len(frame["error"]) < 500
        assert await close_of(ws) == (1008, "graph cannot run")


LONG = 900_000  # characters of one value: the message stays under --max-message-size (1 MiB)


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        (json.dumps({"initial_state": {"max_iterations": "x" * LONG}}),
         f"initial_state.max_iterations must be a positive integer, got '{'x' * 199}… ({LONG + 2}"
         " characters)"),
        (json.dumps({"initial_state": {}, "f" * LONG: 1}),
         f"unknown field for the message: {'f' * 200}… ({LONG} characters)"),
        ('{"initial_state": {"max_iterations": %d}}' % 10**30,
         "initial_state.max_iterations must be at most 1000 (the server's --graph-max-iterations),"
         " got 1e+30"),
    ],
    ids=["long max_iterations", "long field name", "max_iterations 10**30"],
)
async def test_a_refused_message_quotes_at_most_200_characters_and_names_the_range(
    gserver: RunningServer, message: str, refusal: str
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
    async with graph_socket(gserver, graph_id) as ws:
        assert (await recv(ws))["type"] == "connected"
        await ws.send_message(message)
        assert await recv(ws) == {"type": "error", "error": refusal, "message": "Invalid request"}
        await ws.send_message(json.dumps({"initial_state": {"count": 1}}))
        frames = await recv_until(ws, "complete")
        assert await close_code(ws) == 1000
    assert frames[-1]["final_state"] == {"count": 3}


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(gserver: RunningServer) -> None:
    """RFC 6455 §8.1: a Close frame with 1007 the client can read, not a dropped connection;
    the graph's other clients are served on."""
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
    async with raw_websocket(graph_url(gserver, graph_id)) as raw:
        assert json.loads(await raw.receive_text())["type"] == "connected"
        await raw.send_raw(client_text_frame(b'{"initial_state": {"note": "\xc3\x28"}}'))
        with trio.fail_after(GUARD):
            assert await raw.close_code() == 1007
    async with graph_socket(gserver, graph_id) as ws:
        await start(ws, {"count": 0})
        assert (await recv_until(ws, "complete"))[-1]["final_state"] == {"count": 2}


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ("{not json", "the message is not valid JSON"),
        (b"\xff\xfe", "the message must be UTF-8 JSON text"),
        ("[1, 2]", "the message must be a JSON object, got array"),
        (json.dumps({"initial_state": {}, "graph": "x"}), "unknown field for the message: graph"),
        (json.dumps({"initial_state": {"max_iterations": 0}}),
         "initial_state.max_iterations must be a positive integer, got 0"),
        (json.dumps({"initial_state": {"max_iterations": True}}),
         "initial_state.max_iterations must be a positive integer, got True"),
        (json.dumps({"initial_state": {"max_iterations": 2**64 - 1}}),
         "initial_state.max_iterations must be at most 1000 (the server's"
         " --graph-max-iterations), got 18446744073709551615"),
        (json.dumps({"initial_state": [1, 2]}),
                     "initial_state must be an object, got array"),
        (json.dumps({"initial_state": None}),
                     "initial_state must be an object, got null"),
    ],
)
async def test_a_bad_message_gets_an_error_frame_and_the_socket_stays_usable(
    gserver: RunningServer, message: str | bytes, named: str
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
        async with graph_socket(gserver, graph_id) as ws:
            assert (await recv(ws))["type"] == "connected"
            await ws.send_message(message)
            refused = await recv(ws)
            assert refused["type"] == "error"
            assert named in refused["error"]
            assert isinstance(refused["message"], str) and refused["message"]
            await ws.send_message(message)  # refused again: nothing was started
            assert (await recv(ws))["type"] == "error"
            await ws.send_message(json.dumps({"initial_state": {"count": 1}}))
            frames = await recv_until(ws, "complete")
            assert await close_code(ws) == 1000
        runs = (await http.get("/runs")).json()["runs"]
    assert kinds(frames)[0] == "status:started"
    assert frames[-1]["final_state"] == {"count": 3}
    assert [r["run_id"] for r in runs] == [frames[0]["run_id"]]


async def test_the_run_goes_on_when_the_client_leaves(gserver: RunningServer, gates: Gates) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, GATED_GRAPH)
        async with graph_socket(gserver, graph_id) as ws:
            run_id = await start(ws, {"count": 0})
            await gates.wait_reached("hold")
        gates.open("hold")
        status = await poll_until_finished(http, run_id)
        state = await graph_state(http, run_id)
    assert status["task_status"] == "completed"
    assert state["status"] == "completed" and state["current_node"] == "END"
    assert state["state"] == {"count": 2, "waited": ["hold"]}
    assert [e["node"] for e in state["execution_log"]] == ["first", "hold", "last"]


async def test_two_clients_of_one_graph_get_one_run_each(gserver: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
    async with graph_socket(gserver, graph_id) as one, graph_socket(gserver, graph_id) as two:
        first = await start(one, {"count": 0})
        second = await start(two, {"count": 100})
        one_frames = await recv_until(one, "complete")
        two_frames = await recv_until(two, "complete")
    assert first != second
    assert {f.get("run_id", first) for f in one_frames} == {first}
    assert {f.get("run_id", second) for f in two_frames} == {second}
    assert one_frames[-1]["final_state"] == {"count": 2}
    assert two_frames[-1]["final_state"] == {"count": 102}


# --- token ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_with_a_token_a_client_without_it_gets_an_error_and_close_1008(
    start_server: StartServer, token: str | None
) -> None:
    srv = await start_server(token=TOKEN)
    async with httpx.AsyncClient(
        base_url=srv.base_url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        graph_id = await create_graph(http, code_review_graph())
    async with graph_socket(srv, graph_id, token) as ws:
        frame = await recv(ws)
        assert frame["type"] == "error" and "Authorization" in frame["error"]
        assert await close_code(ws) == 1008
    async with graph_socket(srv, graph_id, TOKEN) as ws:
        await start(ws, {"code": SAMPLE_CODE, "threshold": 7})
        frames = await recv_until(ws, "complete")
    assert frames[-1]["final_state"]["quality_score"] == 8.5


# --- server shutdown -----------------------------------------------------------------------------


async def test_a_shutdown_mid_run_cancels_the_run_durably_and_closes_the_socket(
    start_server: StartServer, gates: Gates
) -> None:
    """The client sees `status cancelled`, then the socket closes (normally, or 1001 if the
    shutdown reaches the socket first); after a restart the run's state says cancelled at `hold`."""
    first = await start_server(tools=make_tools(gates))
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        graph_id = await create_graph(http, GATED_GRAPH)
    async with graph_socket(first, graph_id) as ws:
        run_id = await start(ws, {"count": 0})
        await gates.wait_reached("hold")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first.stop)
            frames = await recv_until(ws, "status")
            code = await close_code(ws)
    assert kinds(frames) == [
        "node_start", "node_complete", "transition", "node_start", "status:cancelled",
    ]
    assert frames[-1]["run_id"] == run_id and frames[-1]["reason"]
    assert code in (1000, 1001)
    second = await start_server(tools=make_tools(gates))
    async with httpx.AsyncClient(base_url=second.base_url) as http:
        state = await graph_state(http, run_id)
    assert state["status"] == "cancelled" and state["current_node"] == "hold"
    assert state["state"] == {"count": 1}


# --- the route's layer: plain ASGI in front of Quart ------------------------------------------


async def test_a_client_that_leaves_mid_run_is_let_go_at_once_while_the_run_goes_on(
    gserver: RunningServer, gates: Gates
) -> None:
    """Nothing is sent to the client while its run waits in `hold`; its leaving still ends the
    socket then, not when the run ends."""
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, GATED_GRAPH)
        async with graph_socket(gserver, graph_id) as ws:
            run_id = await start(ws, {"count": 0})
            await gates.wait_reached("hold")
            held = await scrape(gserver.base_url)
        with trio.fail_after(GUARD):
            while (left := await scrape(gserver.base_url))["runcast_websockets_open"]:
                await trio.sleep(0.01)
        running = await http.get(f"/graph/background/{run_id}/status")
        gates.open("hold")
        status = await poll_until_finished(http, run_id)
    assert (held["runcast_websockets_open"], held["runcast_live_runs"]) == (1, 1)
    assert left["runcast_live_runs"] == 1
    assert running.json()["task_status"] == "running"
    assert status["task_status"] == "completed"


async def test_graph_sockets_count_in_the_metrics(gserver: RunningServer) -> None:
    """`connected` and the nine frames of a two-node run; an unknown graph's `error`."""
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
    async with graph_socket(gserver, graph_id) as ws:
        await start(ws, {"count": 0})
        during = await scrape(gserver.base_url)
        assert len(await recv_until(ws, "complete")) == 8
        assert await close_code(ws) == 1000
    async with graph_socket(gserver, "no-such-graph") as ws:
        assert (await recv(ws))["type"] == "error"
        assert await close_code(ws) == 1008
    after = await scrape(gserver.base_url)
    assert during["runcast_websockets_open"] == 1
    assert after["runcast_websockets_open"] == 0
    assert after["runcast_websockets_opened_total"] == 2
    assert after["runcast_frames_sent_total"] == 1 + 9 + 1


async def test_the_origin_is_checked_before_the_token(start_server: StartServer) -> None:
    """With a token: another site's page is refused 403 even with the token, and the socket is
    never accepted; the server's own page without it gets the `error` frame and 1008."""
    srv = await start_server(token=TOKEN)
    async with httpx.AsyncClient(
        base_url=srv.base_url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        graph_id = await create_graph(http, code_review_graph())
    evil = "http://evil.example"
    with pytest.raises(ConnectionRejected) as rejected:
        async with graph_socket(srv, graph_id, TOKEN, origin=evil):
            pass
    assert rejected.value.status_code == 403
    assert json.loads(rejected.value.body or b"") == {
        "detail": f"Origin {evil!r} is not allowed (the server's --allowed-origins)"
    }
    async with graph_socket(srv, graph_id, origin=f"http://127.0.0.1:{srv.port}") as ws:
        assert (await recv(ws))["message"] == "Unauthorized"
        assert await close_of(ws) == (1008, "unauthorized")


@pytest.mark.parametrize("path", ["/ws/graph/run/", "/ws/graph/run/g/more", "/ws/graph/runs/g"])
async def test_a_handshake_to_a_path_that_names_no_graph_is_a_json_404(
    server: RunningServer, path: str
) -> None:
    url = server.base_url.replace("http://", "ws://") + path
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(url):
            pass
    assert rejected.value.status_code == 404
    assert json.loads(rejected.value.body or b"") == {"detail": f"No route for WebSocket {path}"}


async def test_the_route_is_plain_asgi_and_hands_over_each_batch_of_frames_at_once(
    serve_asgi: ServeAsgi, gates: Gates
) -> None:
    """The app as runcast's transport serves it, its WebSocket messages recorded: the run's
    frames go out as `runcast.websocket.send_texts` batches (Quart never sends those), between
    the accept and the close."""
    sent: list[dict[str, Any]] = []
    async with open_store("memory") as store, open_runtime(store, WorkflowCatalog()) as runtime:
        app = create_app(
            runtime, Graphs(runtime, make_tools(gates)), token=None, server_closing=trio.Event()
        )

        async def recorded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            async def record(message: dict[str, Any]) -> None:
                if scope["type"] == "websocket":
                    sent.append(message)
                await send(message)

            await app(scope, receive, record)

        server = await serve_asgi(recorded)
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            graph_id = await create_graph(http, TWO_NODES)
        url = f"{server.base_url.replace('http://', 'ws://')}/ws/graph/run/{graph_id}"
        async with open_websocket_url(url) as ws:
            await start(ws, {"count": 0})
            frames = await recv_until(ws, "complete")
            assert await close_code(ws) == 1000
        await server.stop()
    accept, connected, *batches, close = sent
    assert (accept["type"], connected["type"]) == ("websocket.accept", "websocket.send")
    assert {batch["type"] for batch in batches} == {SEND_TEXTS}
    texts = [json.loads(text) for batch in batches for text in batch["texts"]]
    assert (texts[0]["type"], texts[0]["status"]) == ("status", "started")
    assert texts[1:] == frames
    assert (close["type"], close["code"]) == ("websocket.close", 1000)


async def test_each_event_is_encoded_once_and_framed_once_whoever_follows_its_run(
    gserver: RunningServer, gates: Gates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph run with its graph socket and three `/workflows/ws` followers: one event frame
    per event (`EventEncoder.encode`), shared by all four, and one decode and fold
    (`GraphRunView.apply`) and one `frames_for` per event for the graph socket, its one
    graph-protocol subscriber."""
    calls: dict[str, Counter[int]] = {"encode": Counter(), "apply": Counter(), "frames": Counter()}
    encode, apply, frames_for = EventEncoder.encode, GraphRunView.apply, graph_protocol.frames_for

    def counted_encode(self: EventEncoder, index: int, kind: str, fields: dict[str, Any]) -> str:
        calls["encode"][index] += 1
        return encode(self, index, kind, fields)

    def counted_apply(self: GraphRunView, event: dict[str, Any]) -> None:
        calls["apply"][event["event_index"]] += 1
        apply(self, event)

    def counted_frames_for(event: dict[str, Any], view: GraphRunView) -> list[str]:
        calls["frames"][event["event_index"]] += 1
        return frames_for(event, view)

    monkeypatch.setattr(EventEncoder, "encode", counted_encode)
    monkeypatch.setattr(GraphRunView, "apply", counted_apply)
    monkeypatch.setattr(graph_protocol, "frames_for", counted_frames_for)
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, GATED_GRAPH)
    async with graph_socket(gserver, graph_id) as ws:
        run_id = await start(ws, {"count": 0})
        await gates.wait_reached("hold")
        async with (
            ws_client(gserver.ws_url) as one,
            ws_client(gserver.ws_url) as two,
            ws_client(gserver.ws_url) as three,
        ):
            followers = (one, two, three)
            for follower in followers:
                await follower.send({"action": "reconnect", "run_id": run_id})
            gates.open("hold")
            followed = [events_only(await f.recv_until_terminal()) for f in followers]
        frames = await recv_until(ws, "complete")
    events = len(followed[0])
    assert followed[1] == followed[0] == followed[2]
    assert frames[-1]["event_index"] == events - 1
    every_event_once = Counter(range(events))
    assert calls == {"encode": every_event_once, "apply": every_event_once,
                     "frames": every_event_once}

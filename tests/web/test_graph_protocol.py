"""web/graph_protocol.py: the frames of `/ws/graph/run/{graph_id}`, built from graph-run events.

The events fed to `frames_for` are real histories: graph runs executed by a real runtime (memory
store), through the helpers of tests/actors/workflows/test_graph_run.py, folded with the real
`GraphRunView` as the graph WebSocket does. A property test runs random graphs and checks the
frame grammar of the guide against each run's own outcome.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import WorkflowCatalog, open_runtime
from actors.events import RunInfo, encode_event
from actors.store.memory import open_memory_store
from actors.workflows.graph import END, GraphDefinition, compile_graph
from actors.workflows.graph_run import LIMIT_MESSAGE, GraphRun
from actors.workflows.graph_view import GraphRunView
from tests.actors.helpers import follow_all
from tests.actors.workflows.test_graph import random_graphs
from tests.actors.workflows.test_graph_run import (
    GUARD,
    Gate,
    build,
    chain,
    loop,
    make_tools,
    run_graph,
)
from web import graph_protocol

INFO = RunInfo("run-1", "graph-1", "test-graph", "session-1", message="{}")


def frames_of(initial_state: dict[str, Any], history: list[str]) -> list[dict[str, Any]]:
    """Every frame the graph WebSocket sends for `history`, as it does: apply, then translate."""
    view = GraphRunView("run-1", dict(initial_state))
    frames: list[dict[str, Any]] = []
    for text in history:
        event = orjson.loads(text)
        view.apply(event)
        frames += [orjson.loads(frame) for frame in graph_protocol.frames_for(event, view)]
    return frames


def types(frames: list[dict[str, Any]]) -> list[str]:
    return [f["type"] if f["type"] != "status" else f"status:{f['status']}" for f in frames]


def assert_utc_iso(text: str) -> None:
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() == timedelta(0)


# --- frames not derived from events --------------------------------------------------------------


def test_connected_frame_is_the_guides() -> None:
    assert orjson.loads(graph_protocol.connected("g-42")) == {
        "type": "connected",
        "message": "WebSocket connection established",
        "graph_id": "g-42",
    }


def test_error_frame_carries_the_problem_and_the_message() -> None:
    assert orjson.loads(graph_protocol.error("Graph g not found", "Graph not found")) == {
        "type": "error",
        "error": "Graph g not found",
        "message": "Graph not found",
    }


# --- frames of real runs -------------------------------------------------------------------------


async def test_a_two_node_run_gives_the_guides_frames_in_order() -> None:
    initial = {"count": 0}
    _, history = await run_graph(build(chain("inc", "inc")), initial)
    frames = frames_of(initial, history)
    assert types(frames) == [
        "status:started",
        "node_start", "node_complete", "transition",
        "node_start", "node_complete", "transition",
        "status:completed", "complete",
    ]
    events = [orjson.loads(text) for text in history]
    started, first_start, first_done, first_move = frames[:4]
    assert started == {
        "type": "status", "run_id": events[0]["run_id"], "status": "started",
        "timestamp": started["timestamp"], "event_index": 0,
    }
    assert datetime.fromisoformat(started["timestamp"]) == datetime.fromtimestamp(
        events[0]["created_at"], UTC
    )
    assert first_start == {
        "type": "node_start", "node": "n0", "iteration": 1,
        "timestamp": first_start["timestamp"], "event_index": 1,
    }
    assert first_done == {
        "type": "node_complete", "node": "n0", "state_update": {"count": 1},
        "timestamp": first_done["timestamp"], "event_index": 2,
    }
    assert first_move == {
        "type": "transition", "from": "n0", "to": "n1",
        "timestamp": first_move["timestamp"], "event_index": 3,
    }
    assert (frames[6]["from"], frames[6]["to"]) == ("n1", END)
    status, complete = frames[-2:]
    assert status["status"] == "completed" and status["run_id"] == events[0]["run_id"]
    assert status["event_index"] == complete["event_index"] == len(history) - 1
    assert complete["final_state"] == {"count": 2} == events[-1]["final_state"]
    assert [(e["node"], e["status"]) for e in complete["execution_log"]] == [
        ("n0", "completed"), ("n1", "completed"),
    ]
    for frame in frames:
        if "timestamp" in frame:
            assert_utc_iso(frame["timestamp"])


async def test_the_iteration_limit_gives_a_system_frame_before_completion() -> None:
    initial = {"count": 0, "max_iterations": 2}
    _, history = await run_graph(build(loop("count >= 100")), initial)
    frames = frames_of(initial, history)
    assert types(frames)[-3:] == ["system", "status:completed", "complete"]
    system = frames[-3]
    assert system["message"] == LIMIT_MESSAGE == "Max iterations reached"
    assert_utc_iso(system["timestamp"])
    assert [(f["node"], f["iteration"]) for f in frames if f["type"] == "node_start"] == [
        ("a", 1), ("b", 1), ("a", 2), ("b", 2),
    ]
    assert frames[-1]["execution_log"][-1]["node"] == "SYSTEM"
    assert frames[-1]["execution_log"][-1]["details"]["reason"] == LIMIT_MESSAGE
    assert frames[-1]["final_state"]["count"] == 2


async def test_a_failing_node_gives_node_error_then_error_and_no_complete() -> None:
    initial = {"count": 0}
    _, history = await run_graph(build(chain("inc", "boom", "inc")), initial)
    frames = frames_of(initial, history)
    assert types(frames) == [
        "status:started", "node_start", "node_complete", "transition",
        "node_start", "node_error", "error",
    ]
    node_error, error = frames[-2:]
    assert node_error["node"] == "n1"
    assert node_error["error"] == "RuntimeError: tool exploded"
    assert error["type"] == "error" and error["message"] == graph_protocol.FAILED_MESSAGE
    assert "n1" in error["error"] and "tool exploded" in error["error"]
    assert error["event_index"] == len(history) - 1


async def test_a_cancelled_run_gives_status_cancelled_with_the_reason_and_no_complete() -> None:
    gate = Gate()
    graph = compile_graph(
        "gid",
        GraphDefinition.from_json({"name": "g", **chain("inc", "gated", "inc")}),
        make_tools(gate),
    )
    async with open_memory_store() as store, open_runtime(store, WorkflowCatalog()) as runtime:
        info = await runtime.start_workflow(GraphRun.of(graph, {}), "{}")
        with trio.fail_after(GUARD):
            await gate.reached.wait()
            await runtime.cancel(info.run_id, "user said stop")
            history = await follow_all(runtime, info.run_id)
    frames = frames_of({}, history)
    assert types(frames)[-1] == "status:cancelled"
    assert "complete" not in types(frames)
    assert frames[-1]["reason"] == "user said stop"
    assert frames[-1]["event_index"] == len(history) - 2  # the last event, WorkflowCompleted, adds none
    assert_utc_iso(frames[-1]["timestamp"])


@pytest.mark.parametrize("kind", ["StepProgress", "StepOutput", "SomethingNew"])
def test_events_the_graph_protocol_does_not_speak_give_no_frames(kind: str) -> None:
    event = orjson.loads(encode_event(INFO, 3, kind, {"content": "x"}))
    assert graph_protocol.frames_for(event, GraphRunView("run-1", {})) == []


# --- property: random graphs ---------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(data=random_graphs(), max_iterations=st.integers(min_value=1, max_value=3))
async def test_random_graph_runs_follow_the_frame_grammar(
    data: dict[str, Any], max_iterations: int
) -> None:
    """`status started`, then per pass `node_start node_complete transition` chained node to node
    with `iteration` = that node's pass, a `system` frame if the limit stopped it, `status
    completed` and `complete` whose state and log agree with the run's own end; every frame
    carries the index of an event, in order."""
    initial = {"count": 0, "max_iterations": max_iterations}
    _, history = await run_graph(build(data), initial)
    events = [orjson.loads(text) for text in history]
    frames = frames_of(initial, history)
    kinds = types(frames)
    limited = "system" in kinds
    passes = (len(frames) - 3 - limited) // 3
    assert kinds == [
        "status:started",
        *["node_start", "node_complete", "transition"] * passes,
        *(["system"] if limited else []),
        "status:completed",
        "complete",
    ]
    seen: Counter[str] = Counter()
    starts = [f for f in frames if f["type"] == "node_start"]
    moves = [f for f in frames if f["type"] == "transition"]
    for start, move in zip(starts, moves, strict=True):
        seen[start["node"]] += 1
        assert start["iteration"] == seen[start["node"]] <= max_iterations
        assert move["from"] == start["node"]
    assert [m["to"] for m in moves[:-1]] == [s["node"] for s in starts[1:]]
    assert (moves[-1]["to"] == END) is not limited
    complete = frames[-1]
    assert complete["final_state"] == events[-1]["final_state"]
    assert complete["final_state"]["count"] == passes
    log = complete["execution_log"]
    assert [e["node"] for e in log] == [s["node"] for s in starts] + (["SYSTEM"] if limited else [])
    indices = [f["event_index"] for f in frames]
    assert indices == sorted(indices) and indices[-1] == len(events) - 1
    assert all(events[f["event_index"]]["run_id"] == f.get("run_id", events[0]["run_id"]) for f in frames)

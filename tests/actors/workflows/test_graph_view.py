"""actors/workflows/graph_view.py: folding the frames of real graph runs (completed, stopped by
the limit, failed in a tool or a condition, cancelled) into their view: status, current node,
state, execution log in the spec's shape, error; and folding every prefix of a history, as a
run still going looks."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from actors.workflows.graph import END
from actors.workflows.graph_view import SYSTEM_NODE, GraphRunView, GraphStatus
from tests.actors.workflows.test_graph_run import (
    Gate,
    build,
    cancel_at_gate,
    chain,
    decode,
    loop,
    run_graph,
)

LOG_KEYS = {"node", "status", "timestamp", "details"}


def fold(initial_state: dict[str, Any], frames: list[str]) -> GraphRunView:
    return GraphRunView.of("run-1", initial_state, frames)


def updates_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["state_update"] for e in events if e["event"] == "StepCompleted"]


def merged(initial_state: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    state = copy.deepcopy(initial_state)
    for update in updates_of(events):
        state.update(update)
    return state


def completed_entry(event: dict[str, Any]) -> dict[str, Any]:
    """The execution log entry the spec gives a StepCompleted event."""
    return {
        "node": event["node"],
        "status": "completed",
        "timestamp": event["timestamp"],
        "details": {"function": event["function"], "duration_ms": event["duration_ms"]},
    }


# --- finished runs -----------------------------------------------------------------------------


async def test_a_completed_run_ends_at_end_with_the_final_state_and_its_log() -> None:
    initial = {"count": 0, "total": 1}
    graph = build(
        {
            "nodes": {"a": {"function": "inc"}, "b": {"function": "add", "params": {"amount": 5}}},
            "edges": {"a": "b"},
        }
    )
    _, frames = await run_graph(graph, initial)
    events = decode(frames)
    view = fold(initial, frames)

    assert view.status is GraphStatus.COMPLETED and view.finished
    assert view.current_node == END
    assert view.state == {"count": 1, "total": 6} == events[-1]["final_state"]
    assert view.error is None
    assert view.run_id == "run-1"
    completed = [e for e in events if e["event"] == "StepCompleted"]
    assert view.execution_log == [completed_entry(e) for e in completed]
    assert [entry["node"] for entry in view.execution_log] == ["a", "b"]
    for entry in view.execution_log:
        assert set(entry) == LOG_KEYS
        assert set(entry["details"]) == {"function", "duration_ms"}
        assert isinstance(entry["details"]["duration_ms"], float)
    assert initial == {"count": 0, "total": 1}  # folding copies the initial state


async def test_a_run_stopped_by_the_limit_logs_a_system_termination() -> None:
    initial = {"count": 0, "max_iterations": 2}
    _, frames = await run_graph(build(loop("count >= 100")), initial)
    events = decode(frames)
    view = fold(initial, frames)

    assert view.status is GraphStatus.COMPLETED
    assert view.current_node == END
    assert view.state == {"count": 2, "max_iterations": 2} == events[-1]["final_state"]
    assert [(e["node"], e["status"]) for e in view.execution_log] == [
        ("a", "completed"),
        ("b", "completed"),
        ("a", "completed"),
        ("b", "completed"),
        (SYSTEM_NODE, "terminated"),
    ]
    system = view.execution_log[-1]
    assert system["node"] == "SYSTEM"
    assert system["details"]["reason"] == "Max iterations reached"
    assert system["details"]["node"] == "a"
    assert system["timestamp"] == events[-2]["timestamp"]


async def test_a_failed_tool_leaves_the_view_at_the_failing_node() -> None:
    initial = {"count": 0}
    _, frames = await run_graph(build(chain("inc", "boom", "inc")), initial)
    events = decode(frames)
    view = fold(initial, frames)

    assert view.status is GraphStatus.FAILED and view.finished
    assert view.current_node == "n1"
    assert view.error == "node n1 (boom) failed: RuntimeError: tool exploded"
    assert view.state == {"count": 1}
    assert view.execution_log[0] == completed_entry(events[2])
    failed = view.execution_log[1]
    step_error = events[-2]
    assert failed == {
        "node": "n1",
        "status": "failed",
        "timestamp": step_error["timestamp"],
        "details": {
            "function": "boom",
            "duration_ms": step_error["duration_ms"],
            "error": "RuntimeError: tool exploded",
        },
    }
    assert len(view.execution_log) == 2


async def test_a_failed_condition_leaves_the_view_at_its_node() -> None:
    graph = build(
        {
            "nodes": {"a": {"function": "inc"}, "b": {"function": "inc"}},
            "conditional_edges": {"a": {"condition": "score > 3", "true": END, "false": "b"}},
        }
    )
    _, frames = await run_graph(graph, {})
    view = fold({}, frames)
    assert view.status is GraphStatus.FAILED
    assert view.current_node == "a"
    assert view.error is not None and "'score'" in view.error
    assert view.state == {"count": 1}
    assert [(e["node"], e["status"]) for e in view.execution_log] == [("a", "completed")]


@pytest.mark.parametrize("tool", ["gated", "gated_sync"])
async def test_a_cancelled_run_keeps_its_node_state_and_reason(tool: str) -> None:
    gate = Gate()
    try:
        _, frames = await cancel_at_gate(tool, gate)
    finally:
        gate.thread_release.set()
    view = fold({"count": 0}, frames)
    assert view.status is GraphStatus.CANCELLED and view.finished
    assert view.current_node == "n1"
    assert view.error == "user said stop"
    assert view.state == {"count": 1}
    assert [(e["node"], e["status"]) for e in view.execution_log] == [("n0", "completed")]


# --- runs still going --------------------------------------------------------------------------


async def test_every_prefix_of_a_history_is_a_running_view() -> None:
    """A prefix is what a live run has so far: running, at the node last started or transitioned
    to (None before the first), with the updates so far merged in and logged."""
    initial = {"count": 0, "max_iterations": 2, "keep": "me"}
    _, frames = await run_graph(build(loop("count >= 100")), initial)
    events = decode(frames)
    assert events[-1]["event"] == "WorkflowCompleted"

    for length in range(len(frames)):
        prefix = events[:length]
        view = fold(initial, frames[:length])
        where = [
            e["node"] if e["event"] == "StepStarted" else e["to"]
            for e in prefix
            if e["event"] in ("StepStarted", "GraphTransition")
        ]
        assert view.status is GraphStatus.RUNNING and not view.finished, length
        assert view.current_node == (where[-1] if where else None), length
        assert view.state == merged(initial, prefix), length
        log_nodes = [e["node"] for e in view.execution_log]
        expected = [e["node"] for e in prefix if e["event"] == "StepCompleted"]
        if any(e["event"] == "GraphLimitReached" for e in prefix):
            expected.append(SYSTEM_NODE)
        assert log_nodes == expected, length
        assert view.error is None


async def test_applying_events_one_by_one_gives_the_folded_view() -> None:
    initial = {"count": 0}
    _, frames = await run_graph(build(loop("count >= 2")), initial)
    streamed = GraphRunView("run-1", dict(initial))
    for frame in frames:
        streamed.apply(orjson.loads(frame))
    assert streamed == fold(initial, frames)
    assert streamed.status is GraphStatus.COMPLETED

"""The graph WebSocket protocol without I/O: the frames a graph run's events become.

A graph run's history is stored once, in the run events every follower gets (Agno's shape, with
the graph's fields). `/ws/graph/run/{graph_id}` speaks the graph engine's own protocol, so each
event is turned into the frames of that protocol here (field `type`):
`status started` · `node_start` · `node_complete` · `transition` · `system` (iteration limit) ·
`node_error` · `error` · `status completed` + `complete` (or `status cancelled`).
Frames derived from an event carry its `event_index`, so a client can reconnect to the run over
`/workflows/ws` from where it was. Frame texts are built here and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from actors.events import (
    GRAPH_LIMIT_REACHED,
    GRAPH_TRANSITION,
    STEP_COMPLETED,
    STEP_ERROR,
    STEP_STARTED,
    WORKFLOW_CANCELLED,
    WORKFLOW_COMPLETED,
    WORKFLOW_ERROR,
    WORKFLOW_STARTED,
)
from actors.workflows.graph_view import GraphRunView

FAILED_MESSAGE = "Workflow execution failed"


def _frame(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def connected(graph_id: str) -> str:
    return _frame(
        {"type": "connected", "message": "WebSocket connection established", "graph_id": graph_id}
    )


def error(problem: str, message: str) -> str:
    return _frame({"type": "error", "error": problem, "message": message})


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()


def frames_for(event: dict[str, Any], view: GraphRunView) -> list[str]:
    """The frames for one run event; `view` is the run's view with this event applied."""
    kind = event.get("event")
    index = event["event_index"]
    run_id = event["run_id"]
    if kind == WORKFLOW_STARTED:
        timestamp = _iso(event["created_at"])
        return [_frame({"type": "status", "run_id": run_id, "status": "started",
                        "timestamp": timestamp, "event_index": index})]
    if kind == STEP_STARTED:
        return [_frame({"type": "node_start", "node": event["node"],
                        "iteration": event["iteration"], "timestamp": event["timestamp"],
                        "event_index": index})]
    if kind == STEP_COMPLETED:
        return [_frame({"type": "node_complete", "node": event["node"],
                        "state_update": event["state_update"], "timestamp": event["timestamp"],
                        "event_index": index})]
    if kind == GRAPH_TRANSITION:
        return [_frame({"type": "transition", "from": event["from"], "to": event["to"],
                        "timestamp": event["timestamp"], "event_index": index})]
    if kind == GRAPH_LIMIT_REACHED:
        return [_frame({"type": "system", "message": event["message"],
                        "timestamp": event["timestamp"], "event_index": index})]
    if kind == STEP_ERROR:
        return [_frame({"type": "node_error", "node": event["node"], "error": event["error"],
                        "timestamp": event["timestamp"], "event_index": index})]
    if kind == WORKFLOW_ERROR:
        return [_frame({"type": "error", "run_id": run_id, "error": event.get("error", ""),
                        "message": FAILED_MESSAGE, "event_index": index})]
    if kind == WORKFLOW_CANCELLED:
        return [_frame({"type": "status", "run_id": run_id, "status": "cancelled",
                        "reason": event.get("reason"), "timestamp": _iso(event["created_at"]),
                        "event_index": index})]
    if kind == WORKFLOW_COMPLETED and event.get("status") != "cancelled":
        timestamp = event.get("timestamp") or _iso(event["created_at"])
        return [
            _frame({"type": "status", "run_id": run_id, "status": "completed",
                    "timestamp": timestamp, "event_index": index}),
            _frame({"type": "complete", "run_id": run_id, "final_state": view.state,
                    "execution_log": view.execution_log, "event_index": index}),
        ]
    return []

"""What a graph run looks like so far, folded from its event history alone.

`GraphRunView` starts from the run's initial state and applies its events one by one: the
status, the current node, the state (each node's `state_update` merged in), the execution log
and the error. The history is the only truth, so the view is the same for a live run, a finished
one, and one read back from the store after a restart; and it can be applied as events stream
(the graph WebSocket does) or all at once (`GraphRunView.of`).
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable
from typing import Any

import attrs
import orjson

from actors.events import (
    GRAPH_LIMIT_REACHED,
    GRAPH_TRANSITION,
    STEP_COMPLETED,
    STEP_ERROR,
    STEP_STARTED,
    WORKFLOW_COMPLETED,
    WORKFLOW_ERROR,
)
from actors.workflows.graph import END

SYSTEM_NODE = "SYSTEM"


class GraphStatus(enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@attrs.define
class GraphRunView:
    run_id: str
    state: dict[str, Any]
    status: GraphStatus = GraphStatus.RUNNING
    current_node: str | None = None
    execution_log: list[dict[str, Any]] = attrs.Factory(list)
    error: str | None = None

    @classmethod
    def of(cls, run_id: str, initial_state: dict[str, Any], frames: Iterable[str]) -> GraphRunView:
        view = cls(run_id, copy.deepcopy(initial_state))
        for frame in frames:
            view.apply(orjson.loads(frame))
        return view

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == STEP_STARTED:
            self.current_node = event["node"]
        elif kind == STEP_COMPLETED:
            self.state.update(event["state_update"])
            self.execution_log.append(_log_entry(event, "completed"))
        elif kind == STEP_ERROR:
            entry = _log_entry(event, "failed")
            entry["details"]["error"] = event["error"]
            self.execution_log.append(entry)
        elif kind == GRAPH_TRANSITION:
            self.current_node = event["to"]
        elif kind == GRAPH_LIMIT_REACHED:
            self.execution_log.append(
                {
                    "node": SYSTEM_NODE,
                    "status": "terminated",
                    "timestamp": event["timestamp"],
                    "details": {"reason": event["message"], "node": event["node"]},
                }
            )
        elif kind == WORKFLOW_ERROR:
            self.status = GraphStatus.FAILED
            self.error = event.get("error", "")
        elif kind == WORKFLOW_COMPLETED:
            if event.get("status") == "cancelled":
                self.status = GraphStatus.CANCELLED
                self.error = event.get("reason")
            else:
                self.status = GraphStatus.COMPLETED
                self.current_node = END

    @property
    def finished(self) -> bool:
        return self.status is not GraphStatus.RUNNING


def _log_entry(event: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "node": event["node"],
        "status": status,
        "timestamp": event["timestamp"],
        "details": {"function": event["function"], "duration_ms": event["duration_ms"]},
    }

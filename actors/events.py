"""Run events and run status: how an event is encoded once and shared by every subscriber.

An event is a flat JSON object in the shape Agno AgentOS sends (`created_at`, `event`,
`workflow_id`, `workflow_name`, `session_id`, `run_id`, `nested_depth`, the event's own fields,
then `event_index`), with None-valued fields left out. It is encoded exactly once, when it is
appended, into the text frame that the store keeps and every subscriber is sent.
"""

from __future__ import annotations

import enum
import time
from typing import Any

import attrs
import orjson


class RunStatus(enum.Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING


WORKFLOW_STARTED = "WorkflowStarted"
WORKFLOW_COMPLETED = "WorkflowCompleted"
WORKFLOW_ERROR = "WorkflowError"
WORKFLOW_CANCELLED = "WorkflowCancelled"
STEP_STARTED = "StepStarted"
STEP_PROGRESS = "StepProgress"
STEP_OUTPUT = "StepOutput"
STEP_COMPLETED = "StepCompleted"
STEP_ERROR = "StepError"
GRAPH_TRANSITION = "GraphTransition"
GRAPH_LIMIT_REACHED = "GraphLimitReached"

TERMINAL_EVENTS = frozenset({WORKFLOW_COMPLETED, WORKFLOW_ERROR})


@attrs.frozen
class RunInfo:
    """What every event of a run repeats, and what the store keeps about the run."""

    run_id: str
    workflow_id: str
    workflow_name: str
    session_id: str
    user_id: str | None = None
    message: str = ""


def encode_event(run: RunInfo, index: int, kind: str, fields: dict[str, Any]) -> str:
    """Build the flat event object and encode it once, into its frame."""
    body: dict[str, Any] = {
        "created_at": int(time.time()),
        "event": kind,
        "workflow_id": run.workflow_id,
        "workflow_name": run.workflow_name,
        "session_id": run.session_id,
        "run_id": run.run_id,
        "nested_depth": 0,
    }
    for key, value in fields.items():
        if value is not None:
            body[key] = value
    body["event_index"] = index
    return orjson.dumps(body).decode()


RESERVED_KEYS = frozenset(
    {"created_at", "event", "workflow_id", "workflow_name", "session_id", "run_id", "nested_depth",
     "event_index"}
)


class EventEncoder:
    """`encode_event` for the events of one run, with everything before an event's own fields
    (its time, kind, and the run's ids and names) encoded once per kind and second instead of
    per event. Gives the same frame as `encode_event`; fields that reuse an envelope key take
    `encode_event` itself."""

    def __init__(self, run: RunInfo) -> None:
        self.run = run
        self._run_part = orjson.dumps(
            {
                "workflow_id": run.workflow_id,
                "workflow_name": run.workflow_name,
                "session_id": run.session_id,
                "run_id": run.run_id,
                "nested_depth": 0,
            }
        ).decode()[1:-1]
        # per kind: the end of the second the head was made in, and the head
        self._heads: dict[str, tuple[float, str]] = {}

    def encode(self, index: int, kind: str, fields: dict[str, Any]) -> str:
        if not RESERVED_KEYS.isdisjoint(fields):
            return encode_event(self.run, index, kind, fields)
        now = time.time()
        until, head = self._heads.get(kind, (0.0, ""))
        if now >= until:
            second = int(now)
            head = f'{{"created_at":{second},"event":{orjson.dumps(kind).decode()},{self._run_part}'
            self._heads[kind] = (second + 1.0, head)
        own = orjson.dumps(fields)
        if b":null" in own:  # maybe a None-valued field (or a nested null, or a string)
            own = orjson.dumps({key: value for key, value in fields.items() if value is not None})
        if own == b"{}":
            return f'{head},"event_index":{index}}}'
        return f'{head},{own.decode()[1:-1]},"event_index":{index}}}'


def final_status(kind: str, cancelled: bool) -> RunStatus | None:
    """The status a terminal event gives its run, or None for a non-terminal event."""
    if kind == WORKFLOW_ERROR:
        return RunStatus.ERROR
    if kind == WORKFLOW_COMPLETED:
        return RunStatus.CANCELLED if cancelled else RunStatus.COMPLETED
    return None

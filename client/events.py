"""What the client hands out: a run's events (`RunEvent`), runs (`RunInfo`), workflows
(`WorkflowInfo`), each with the server's JSON beside the fields a program reads most."""

from __future__ import annotations

from typing import Any

import attrs

TERMINAL_EVENTS = frozenset({"WorkflowCompleted", "WorkflowError"})


@attrs.frozen
class RunEvent:
    """One event of a run, as the server sent it: `data` is the frame's JSON object and `raw`
    its text; `index` is its `event_index` (0, 1, 2... per run, with no gap) and `name` its
    `event` (`WorkflowStarted`, `StepProgress`, ..., `WorkflowCompleted`)."""

    index: int
    name: str
    run_id: str
    data: dict[str, Any] = attrs.field(hash=False)
    raw: str

    @property
    def terminal(self) -> bool:
        """Whether this is the run's last event (`WorkflowCompleted` or `WorkflowError`)."""
        return self.name in TERMINAL_EVENTS


@attrs.frozen
class RunInfo:
    """A run as `GET /runs` and `GET /runs/{run_id}` list it; `data` is the server's JSON,
    with any field not named here."""

    run_id: str
    workflow_id: str
    status: str  # RUNNING, COMPLETED, ERROR, CANCELLED
    event_count: int
    created_at: float | None  # seconds since the epoch
    finished_at: float | None
    data: dict[str, Any] = attrs.field(hash=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunInfo:
        return cls(
            run_id=str(data["run_id"]),
            workflow_id=str(data["workflow_id"]),
            status=str(data["status"]),
            event_count=int(data["event_count"]),
            created_at=data.get("created_at"),
            finished_at=data.get("finished_at"),
            data=data,
        )


@attrs.frozen
class WorkflowInfo:
    id: str
    name: str
    description: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkflowInfo:
        return cls(str(data["id"]), str(data["name"]), str(data.get("description") or ""))


@attrs.frozen
class StartedRun:
    """A run `RuncastClient.start` started: its ids and its first event (`WorkflowStarted`,
    index 0)."""

    run_id: str
    workflow_id: str
    session_id: str | None
    started: RunEvent

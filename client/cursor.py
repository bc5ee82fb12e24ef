"""A watch's cursor, without I/O: what to do with each frame the server sends on
`/workflows/ws` while the client follows one run, and what to send on each (re)connection.

The cursor is the index of the last event handed to the caller (`from_index - 1` at first).
Every connection sends `reconnect` with `last_event_index` = the cursor (`null` before any
event); the server answers `catch_up` + the missed events + `subscribed` + the live ones for a
running run, or `replay` + every event from index 0 for a finished one. For each frame:
- an event at the cursor or below it: dropped (a replay from 0, a duplicate);
- the event right after the cursor: delivered, and the cursor moves to it;
- an event further on: a gap, so the connection is dropped and the watch reconnects from the
  cursor (the server then sends what lies between);
- an error frame: a refusal that ends the watch (`RunNotFound`, `HistoryGone`, ...), or a
  passing trouble that the server asks to reconnect for (the store cannot be read right now,
  the run is being closed after a storage fault, the server is shutting down);
- a running run's refusal of a `last_event_index` beyond its last event, before the watch
  delivered anything (a `from_index` the run has not reached yet): the watch reconnects from
  the run's last event instead, and drops what comes before `from_index`. Once it delivered an
  event, that refusal ends the watch: the server lost events the caller saw;
- frames of other runs, and control frames (`subscribed`, `pong`...), are ignored.
The watch is finished after a terminal event (`WorkflowCompleted`, `WorkflowError`; one below
`from_index` too: the run ended before it), after the last event of a finished run (`replay`'s
`total_events`), or in a snapshot (`RuncastClient.replay`: the run's events so far) after the
last event the run had when the server first answered.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from client.errors import (
    AuthenticationFailed,
    HistoryGone,
    Refused,
    RunNotFound,
    RuncastError,
    ServerError,
    WorkflowNotFound,
)
from client.events import TERMINAL_EVENTS, RunEvent


@attrs.frozen
class Deliver:
    event: RunEvent


@attrs.frozen
class Ignore:
    pass


@attrs.frozen
class Reconnect:
    reason: str


@attrs.frozen
class Fail:
    error: RuncastError


Step = Deliver | Ignore | Reconnect | Fail

OPENINGS = frozenset({"catch_up", "subscribed", "replay"})  # the server's answers to reconnect

IGNORE = Ignore()

# Error frames that mean "not now": the watch reconnects later from its cursor.
PASSING_TROUBLES = (
    "the store cannot be read",  # a read failed (Redis unreachable...)
    "is interrupted",  # the live stream of a run owned by another node
    "the store cannot record its end",  # the run is lost until the store can close it
    "the server is shutting down",
)
RUN_NOT_FOUND = re.compile(r"Run (?P<id>.*) not found", re.DOTALL)
WORKFLOW_NOT_FOUND = re.compile(r"Workflow (?P<id>.*) not found", re.DOTALL)
HISTORY_GONE = re.compile(r"the history of run (?P<id>\S+) is gone", re.DOTALL)
BEYOND_THE_RUN = re.compile(r"last_event_index -?\d+ is beyond .* \(it has (?P<count>\d+) events")


def refusal(message: str, run_id: str | None = None) -> RuncastError | None:
    """What an error frame's message means: the exception that ends the request, or None for
    a passing trouble (reconnect later). `run_id`: the run the request was about (the message
    may quote only the start of a long id)."""
    if any(trouble in message for trouble in PASSING_TROUBLES):
        return None
    if match := HISTORY_GONE.match(message):
        return HistoryGone(run_id or match["id"], message)
    if match := RUN_NOT_FOUND.fullmatch(message):
        return RunNotFound(run_id or match["id"], message)
    if match := WORKFLOW_NOT_FOUND.fullmatch(message):
        return WorkflowNotFound(match["id"], message)
    if message.startswith(("internal error", "following run")):
        return ServerError(message)
    return Refused(message)


def event_index(frame: dict[str, Any]) -> int | None:
    index = frame.get("event_index")
    return index if isinstance(index, int) and not isinstance(index, bool) else None


@attrs.define
class WatchCursor:
    """Follows run `run_id` from `from_index`; `snapshot`: stop at the events the run had when
    the first connection was answered, instead of at its terminal event."""

    run_id: str
    last_index: int = -1  # the last event delivered
    snapshot: bool = False
    end_index: int | None = None  # the last index to deliver, once known
    finished: bool = False
    resume_index: int | None = None  # sent instead of last_index until an event is delivered
    delivered: bool = False

    @classmethod
    def starting_at(cls, run_id: str, from_index: int = 0, snapshot: bool = False) -> WatchCursor:
        if from_index < 0:
            raise ValueError(f"from_index must be 0 or more, got {from_index}")
        return cls(run_id, last_index=from_index - 1, snapshot=snapshot)

    def reconnect(self) -> dict[str, Any]:
        """The command each connection sends first."""
        last = self.last_index if self.resume_index is None else self.resume_index
        return {
            "action": "reconnect",
            "run_id": self.run_id,
            "last_event_index": last if last >= 0 else None,
        }

    def receive(self, frame: dict[str, Any], raw: str) -> Step:
        """What to do with one frame of the connection."""
        if self.finished:
            return IGNORE
        kind = frame.get("event")
        if frame.get("run_id", self.run_id) != self.run_id:
            return IGNORE
        index = event_index(frame)
        if index is not None and isinstance(kind, str):
            return self._event(index, kind, frame, raw)
        if kind == "replay":
            return self._ends_at(frame.get("total_events"))
        if kind in ("catch_up", "subscribed") and self.snapshot:
            return self._ends_at(frame.get("current_event_count"))
        if kind == "auth_error":
            return Fail(AuthenticationFailed(str(frame.get("error", "authentication failed"))))
        if kind == "error":
            return self._error(str(frame.get("error", "")))
        return IGNORE

    def _error(self, message: str) -> Step:
        beyond = BEYOND_THE_RUN.match(message)
        if beyond is not None and not self.delivered:
            self.resume_index = int(beyond["count"]) - 1
            return Reconnect(f"the run has not reached event {self.last_index + 1} yet")
        error = refusal(message, self.run_id)
        return Reconnect(message) if error is None else Fail(error)

    def _event(self, index: int, kind: str, frame: dict[str, Any], raw: str) -> Step:
        if index <= self.last_index:
            self.finished = kind in TERMINAL_EVENTS  # the run ended before from_index
            return IGNORE
        if index > self.last_index + 1:
            return Reconnect(f"event {index} came after event {self.last_index}: a gap")
        self.last_index = index
        self.delivered = True
        self.resume_index = None
        if kind in TERMINAL_EVENTS or index == self.end_index:
            self.finished = True
        return Deliver(RunEvent(index, kind, self.run_id, frame, raw))

    def _ends_at(self, count: Any) -> Step:
        """The run has `count` events that are all the watch delivers (a finished run, or a
        snapshot's first answer)."""
        if not isinstance(count, int) or isinstance(count, bool):
            return Fail(ServerError(f"the server sent an event count that is not one: {count!r}"))
        if self.end_index is None:
            self.end_index = count - 1
            if self.last_index >= self.end_index:
                self.finished = True
        return IGNORE

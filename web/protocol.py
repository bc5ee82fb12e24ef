"""The workflow WebSocket protocol without I/O: which control frames surround a run's events.

`SubscriptionFraming` is a small state machine fed the count of events delivered so far; it says
which frames go before the first event and which go after each one:
- a finished run: `replay`, then every event from index 0;
- a running run with missed events: `catch_up`, the missed events, `subscribed`, the live ones;
- a running run with nothing missed: `subscribed`, then the live ones;
- the run a socket started itself: its events only, as Agno sends them.
Frame texts are built here and nowhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import attrs
import orjson

from actors.events import RunStatus


def _frame(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def connected(requires_auth: bool) -> str:
    return _frame(
        {"event": "connected", "message": "Connected to runcast.", "requires_auth": requires_auth}
    )


PONG = _frame({"event": "pong"})
AUTHENTICATED = _frame(
    {"event": "authenticated", "message": "Authentication successful. You can now send commands."}
)


def error(message: str) -> str:
    return _frame({"event": "error", "error": message})


def run_error(run_id: str, message: str) -> str:
    """An error of one run the socket follows (it is lost): no more of its events come."""
    return _frame({"event": "error", "run_id": run_id, "error": message})


def auth_error(message: str) -> str:
    return _frame({"event": "auth_error", "error": message})


def cancel_requested(run_id: str) -> str:
    return _frame(
        {"event": "cancel_requested", "run_id": run_id, "message": f"Cancelling run {run_id}."}
    )


def catch_up(run_id: str, missed: int, event_count: int) -> str:
    return _frame(
        {
            "event": "catch_up",
            "run_id": run_id,
            "status": "running",
            "missed_events": missed,
            "current_event_count": event_count,
            "message": f"Catching up on {missed} missed events.",
        }
    )


def subscribed(run_id: str, event_count: int) -> str:
    return _frame(
        {
            "event": "subscribed",
            "run_id": run_id,
            "status": "running",
            "current_event_count": event_count,
            "message": "Subscribed to workflow run. You will receive new events as they occur.",
        }
    )


def replay(run_id: str, status: RunStatus, total_events: int, first: int = 0) -> str:
    """A finished run's replay, of all its events or (Server-Sent Events resuming after an
    event) of those from index `first`, which the frame then names as `first_event_index`."""
    if first == 0:
        return _frame(
            {
                "event": "replay",
                "run_id": run_id,
                "status": status.value,
                "total_events": total_events,
                "message": f"Run {status.value}. Replaying all events.",
            }
        )
    return _frame(
        {
            "event": "replay",
            "run_id": run_id,
            "status": status.value,
            "total_events": total_events,
            "first_event_index": first,
            "message": f"Run {status.value}. Replaying the events from index {first}.",
        }
    )


class Mode(enum.Enum):
    STARTED = "started"  # the socket started the run: events only
    RECONNECT = "reconnect"


@attrs.define
class SubscriptionFraming:
    run_id: str
    status: RunStatus  # at subscription
    event_count: int  # events in the run at subscription
    missed: int  # events owed before the live ones
    mode: Mode = Mode.RECONNECT

    def opening(self) -> list[str]:
        if self.mode is Mode.STARTED:
            return []
        if self.status.finished:
            return [replay(self.run_id, self.status, self.event_count)]
        if self.missed:
            return [catch_up(self.run_id, self.missed, self.event_count)]
        return [subscribed(self.run_id, self.event_count)]

    def with_events(self, delivered: int, frames: Sequence[str]) -> Sequence[str]:
        """What the socket sends for `frames`, the events after the first `delivered`: the
        events, with the frames that fall due between them (`subscribed` once the missed
        events are out)."""
        due = self.missed - delivered  # how many of these frames come before `subscribed`
        if (
            self.mode is Mode.RECONNECT
            and not self.status.finished
            and self.missed
            and 0 < due <= len(frames)
        ):
            return [*frames[:due], subscribed(self.run_id, self.event_count), *frames[due:]]
        return frames

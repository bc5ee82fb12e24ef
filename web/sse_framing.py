"""Server-Sent Events without I/O: where a stream of a run starts, and the text it sends.

A run's stream (`GET /runs/{run_id}/events`, `web.sse`) is `text/event-stream` (the HTML
standard's "Server-sent events"): blocks of `field: value` lines, each block ended by an empty
line. Each of the run's events is a default (`message`) event whose `id` is its `event_index`
and whose `data` is the event's JSON frame exactly as the WebSocket sends it, so that
`EventSource.onmessage` gets the run's events and nothing else, and `lastEventId` is the index
of the last one. The WebSocket's control frames (`catch_up`, `subscribed`, `replay`) come at the
same places as on the WebSocket (`web.protocol`), as named events of their own name, and without
an `id`, so that they never move the client's last event id. After the terminal event comes the
named event `end`, on which a page closes its EventSource; a stream that cannot go on (the run is
lost, the store cannot be read, the history is gone) ends with the named event `run_error` (not
`error`: an EventSource gives that name to its own connection failures).

`resume_point` reads where a stream starts: after the index in `Last-Event-ID` (what an
EventSource sends when it reconnects), else from the index in `?from=`, else from 0. When both
are given, `Last-Event-ID` wins: an EventSource opened on `...?from=N` keeps that URL and sends
the last id it saw when it reconnects, and must go on from there rather than from N again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs
import orjson

from actors.events import RunStatus
from web import protocol
from web.runs_api import shown

RETRY_MILLISECONDS = 1000  # how soon an EventSource reconnects after its stream ends
KEEP_ALIVE = ": keep-alive\n\n"  # a comment line, sent while nothing else is
MAX_INDEX = 2**63 - 1  # the largest event index a client may name, as on the WebSocket
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the line ends of text/event-stream


class BadResume(ValueError):
    """A `from` or `Last-Event-ID` that is not an event index; the message names which."""


@attrs.frozen
class ResumePoint:
    """The index of the first event the stream sends, and what said so (for messages)."""

    start: int
    source: str  # "Last-Event-ID 7", "from=8" or "the start"


def _index(text: str, name: str) -> int:
    digits = text.lstrip("0")
    if text.isascii() and text.isdigit() and len(digits) <= len(str(MAX_INDEX)):
        value = int(digits or "0")
        if value <= MAX_INDEX:
            return value
    raise BadResume(
        f"{name} must be an event index, an integer from 0 to {MAX_INDEX} in digits 0-9,"
        f" got {shown(text)}"
    )


def resume_point(from_text: str | None, last_event_id: str | None) -> ResumePoint:
    """Where a stream starts: after `Last-Event-ID` when given (an empty one counts as absent,
    as an EventSource sends none then), else at `from`, else at 0. Both are checked when both
    are given; BadResume names the bad one."""
    start = None if from_text is None else _index(from_text, "from")
    if last_event_id:
        last = _index(last_event_id, "Last-Event-ID")
        return ResumePoint(last + 1, f"Last-Event-ID {last}")
    if start is not None:
        return ResumePoint(start, f"from={start}")
    return ResumePoint(0, "the start")


def block(fields: Sequence[tuple[str, str]]) -> str:
    """One event block; a value holding line breaks becomes one line per line, as `data` is
    joined again by the client (the run's frames are single-line JSON)."""
    lines = [
        f"{name}: {line}" for name, value in fields for line in LINE_BREAK.split(value)
    ]
    return "\n".join(lines) + "\n\n"


def run_event(index: int, frame: str) -> str:
    """One of the run's events: a default event with the index as its id."""
    return block([("id", str(index)), ("data", frame)])


def named(event: str, data: str) -> str:
    return block([("event", event), ("data", data)])


def retry(milliseconds: int) -> str:
    """A block that sets the client's reconnection delay and dispatches nothing."""
    return f"retry: {milliseconds}\n\n"


def end(run_id: str, last_event_index: int) -> str:
    """The named event after the terminal one: the run is over, close the EventSource."""
    body = {
        "event": "end",
        "run_id": run_id,
        "last_event_index": last_event_index,
        "message": "The run has ended: nothing more comes on this stream.",
    }
    return named("end", orjson.dumps(body).decode())


def run_error(run_id: str, message: str) -> str:
    """The named event that ends a stream which cannot go on: the WebSocket's error frame."""
    return named("run_error", protocol.run_error(run_id, message))


@attrs.define
class EventStreamFraming:
    """The text of one run's stream, fed the run's events as they come.

    `status` and `event_count` are the run's at subscription; `start` is the index of the first
    event owed. A finished run: `replay` (naming `first_event_index` when it starts after 0),
    then its events from `start`. A running run with events before the live ones: `catch_up`,
    those events, `subscribed`, the live ones. A running run with nothing missed: `subscribed`,
    the live ones. `sent` counts the events framed so far."""

    run_id: str
    status: RunStatus
    event_count: int
    start: int
    sent: int = 0

    @property
    def missed(self) -> int:
        return max(self.event_count - self.start, 0)

    @property
    def next_index(self) -> int:
        return self.start + self.sent

    def opening(self) -> str:
        """The `retry` block and the control event before the first event."""
        if self.status.finished:
            control = named(
                "replay", protocol.replay(self.run_id, self.status, self.event_count, self.start)
            )
        elif self.missed:
            control = named(
                "catch_up", protocol.catch_up(self.run_id, self.missed, self.event_count)
            )
        else:
            control = named("subscribed", protocol.subscribed(self.run_id, self.event_count))
        return retry(RETRY_MILLISECONDS) + control

    def events(self, frames: Sequence[str]) -> str:
        """`frames`, the run's next events, with `subscribed` once the missed ones are out."""
        parts = []
        for frame in frames:
            parts.append(run_event(self.next_index, frame))
            self.sent += 1
            if not self.status.finished and self.missed and self.sent == self.missed:
                subscribed = protocol.subscribed(self.run_id, self.event_count)
                parts.append(named("subscribed", subscribed))
        return "".join(parts)

    def ending(self) -> str:
        """`end`, after the run's terminal event (or a finished run's last)."""
        return end(self.run_id, self.next_index - 1)

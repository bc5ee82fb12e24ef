"""The workflow WebSocket protocol from the client's side, for any server that speaks it.

`decode` reads a frame as flat JSON or as the SSE-style text Agno sends on the socket that
started a run (`event: X\\ndata: {...}`). `Cursor` checks that a run's events arrive gap-free and
duplicate-free, counting both rather than stopping at the first. `run_once` starts a run on a
fresh socket and reads it to its terminal event, timing the first event and every event that
carries `data.emitted_at` (runcast's demo workflow does).
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import orjson

from benchmarks.lean_ws import open_websocket_url

TERMINAL = frozenset({"WorkflowCompleted", "WorkflowError"})


def decode(frame: str | bytes) -> dict[str, Any]:
    text = frame.decode() if isinstance(frame, bytes) else frame
    if text.startswith("event:"):
        for line in text.splitlines():
            if line.startswith("data:"):
                text = line.removeprefix("data:").strip()
                break
    decoded: dict[str, Any] = orjson.loads(text)
    return decoded


@attrs.define
class Cursor:
    """The next event index a follower is owed, and what went wrong on the way."""

    next_index: int = 0
    gaps: int = 0
    duplicates: int = 0

    def accept(self, index: int) -> None:
        if index < self.next_index:
            self.duplicates += 1
            return
        if index > self.next_index:
            self.gaps += 1
        self.next_index = index + 1


@attrs.define
class RunTrace:
    events: int = 0
    first_event_s: float | None = None  # from sending start-workflow to the first event
    delays_s: list[float] = attrs.Factory(list)  # now - emitted_at, per event that carries it
    cursor: Cursor = attrs.Factory(Cursor)
    terminal: str = ""


def event_delay(event: dict[str, Any], now: float) -> float | None:
    data = event.get("data")
    if isinstance(data, dict) and isinstance(data.get("emitted_at"), int | float):
        return now - float(data["emitted_at"])
    return None


async def run_once(url: str, workflow_id: str, message: str = "bench") -> RunTrace:
    trace = RunTrace()
    async with open_websocket_url(url) as ws:
        await ws.get_message()  # connected
        sent = time.perf_counter()
        await ws.send_message(
            orjson.dumps({"action": "start-workflow", "workflow_id": workflow_id, "message": message}).decode()
        )
        while not trace.terminal:
            event = decode(await ws.get_message())
            if "event_index" not in event:
                continue  # a control frame
            if trace.first_event_s is None:
                trace.first_event_s = time.perf_counter() - sent
            delay = event_delay(event, time.time())
            if delay is not None:
                trace.delays_s.append(delay)
            trace.cursor.accept(event["event_index"])
            trace.events += 1
            if event.get("event") in TERMINAL:
                trace.terminal = event["event"]
    return trace

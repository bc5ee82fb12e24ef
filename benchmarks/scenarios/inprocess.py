"""`inprocess`: the actor runtime alone, no sockets: the ceiling of the design.

Runs of a workflow that emits its events as fast as it can (no sleep between them), C at a time,
each followed by one subscriber from index 0 to its terminal event (taking the events in batches,
as the WebSocket pump does), all in this process on the memory store or a temporary SQLite file.
Every subscriber checks its indices are 0, 1, 2, ...
Figures: events appended and delivered per second, CPU per event, and the store's commit rounds.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio

from actors import Runtime, WorkflowCatalog, open_runtime
from actors.events import STEP_PROGRESS, RunInfo
from actors.store import Store, open_store
from actors.workflows.catalog import Emit
from benchmarks.progress import ProgressBar

WORKFLOW_ID = "burst"


class Burst:
    """A workflow body emitting `events` progress events back to back."""

    id = WORKFLOW_ID
    name = "Burst"
    description = "emits its events as fast as the runtime takes them"

    def __init__(self, events: int) -> None:
        self.events = events

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
        for tick in range(self.events):
            await emit(STEP_PROGRESS, {"step_name": "burst", "step_index": 0, "content": tick})
        return {"content": "done"}


@asynccontextmanager
async def store_of(kind: str) -> AsyncIterator[Store]:
    if kind == "memory":
        async with open_store("memory") as store:
            yield store
    else:
        with tempfile.TemporaryDirectory(prefix="runcast-inprocess-") as tmp:
            async with open_store(f"sqlite:{tmp}/bench.db") as store:
                yield store


def frame_endings(count: int) -> list[str]:
    """How the frames of the events 0 .. count-1 end, as the encoder writes them."""
    return [f'"event_index":{index}}}' for index in range(count)]


@attrs.define
class InOrder:
    """A subscriber's check that a run's frames carry the indices 0, 1, 2, ... The encoder ends
    every frame with its index, so a frame is parsed only when it does not end as
    `endings[index]` (made once, shared by all runs) says."""

    run_id: str
    endings: Sequence[str]
    delivered: int = 0

    def take(self, frames: Sequence[str]) -> None:
        endings = self.endings
        for frame in frames:
            if self.delivered >= len(endings) or not frame.endswith(endings[self.delivered]):
                index = orjson.loads(frame)["event_index"]
                if index != self.delivered:
                    raise AssertionError(
                        f"run {self.run_id}: event {index} where {self.delivered} was due"
                    )
            self.delivered += 1


async def follow_one(runtime: Runtime, endings: Sequence[str]) -> int:
    """Start a run, follow it to its end, check the indices against `endings` (one per event
    expected); return the events delivered."""
    expected = len(endings)
    follow = await runtime.start_and_follow(WORKFLOW_ID)
    in_order = InOrder(follow.run_id, endings)

    async def check(frames: list[str]) -> None:
        in_order.take(frames)

    await follow.stream_batches(check)
    if in_order.delivered != expected:
        raise AssertionError(
            f"run {follow.run_id}: {in_order.delivered} events, expected {expected}"
        )
    return in_order.delivered


async def measure(store_kind: str, runs: int, events_per_run: int, concurrency: int) -> dict[str, Any]:
    catalog = WorkflowCatalog()
    catalog.add(Burst(events_per_run))
    expected = events_per_run + 2  # WorkflowStarted ... WorkflowCompleted
    endings = frame_endings(expected)
    bar = ProgressBar(f"inprocess {store_kind}", runs, "runs")
    done = 0
    limiter = trio.CapacityLimiter(concurrency)
    async with store_of(store_kind) as store, open_runtime(store, catalog) as runtime:

        async def one() -> None:
            nonlocal done
            async with limiter:
                await follow_one(runtime, endings)
            done += 1

        async def show() -> None:
            while True:
                bar.show(done)
                await trio.sleep(0.2)

        cpu_before, started = time.process_time(), time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(show)
            async with trio.open_nursery() as runners:
                for _ in range(runs):
                    runners.start_soon(one)
            nursery.cancel_scope.cancel()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
        bar.finish(done)
    events = runs * expected
    return {
        "runs": runs,
        "events": events,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall, 1),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_event": round(cpu / events * 1e6, 2),
    }

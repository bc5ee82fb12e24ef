"""Shared helpers for the actor-runtime tests: small workflows (gated, chatty, failing), a
fault-injecting store wrapper around a real store, and ways to follow a run to its end."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from actors import RunStatus, Runtime, Workflow, WorkflowCatalog
from actors.actor import Reply
from actors.store import AppendEvents, RunRecord, Store, StoreError, Write
from actors.workflows.steps import StepContext

TERMINAL = ("WorkflowCompleted", "WorkflowError")


# -- workflows ------------------------------------------------------------------------------------


def chatty_workflow(workflow_id: str = "chatty", events: int = 50, yield_every: int = 1) -> Workflow:
    """One step that emits `events` StepProgress events: a run has `events + 5` events."""

    async def chatter(ctx: StepContext) -> str:
        for i in range(events):
            await ctx.progress(f"tick {i}", {"i": i})
            if yield_every and i % yield_every == 0:
                await trio.lowlevel.checkpoint()
        return f"{events} ticks"

    return Workflow(workflow_id, workflow_id.title(), [chatter])


def gated_workflow(
    workflow_id: str,
    gate: trio.Event,
    before: int = 1,
    after: int = 0,
    reached: trio.Event | None = None,
) -> Workflow:
    """One step: `before` progress events, then `reached` is set and it waits on `gate`, then
    `after` more progress events. A run has `before + after + 5` events."""

    async def wait_for_gate(ctx: StepContext) -> str:
        for i in range(before):
            await ctx.progress(f"before gate {i}")
        if reached is not None:
            reached.set()
        await gate.wait()
        for i in range(after):
            await ctx.progress(f"after gate {i}")
        return "gate opened"

    return Workflow(workflow_id, workflow_id.title(), [wait_for_gate])


def blocking_workflow(
    workflow_id: str = "blocking", before: int = 1, reached: trio.Event | None = None
) -> Workflow:
    """Never finishes on its own: only cancellation ends it."""
    return gated_workflow(workflow_id, trio.Event(), before=before, reached=reached)


def failing_workflow(workflow_id: str = "failing", error: str = "the step broke") -> Workflow:
    """The first step succeeds, the second raises ValueError(error)."""

    async def fine(ctx: StepContext) -> str:
        await ctx.progress("fine so far")
        return "ok"

    async def broken(ctx: StepContext) -> str:
        await trio.lowlevel.checkpoint()
        raise ValueError(error)

    return Workflow(workflow_id, workflow_id.title(), [fine, broken])


def catalog_of(*workflows: Workflow) -> WorkflowCatalog:
    catalog = WorkflowCatalog()
    for workflow in workflows:
        catalog.add(workflow)
    return catalog


@attrs.frozen
class Junk:
    """A message no actor understands (it carries a reply, so the asker hears the error)."""

    reply: Reply[Any]


# -- fault injection --------------------------------------------------------------------------------


WritePredicate = Callable[[Write], bool]


@attrs.define
class FaultyStore:
    """Delegates everything to a real store, but refuses some writes: the first `times` distinct
    writes that `poisons` accepts are poisoned, and every commit carrying a poisoned write raises
    StoreError, before delegating (the writes are lost) or, with `after=True`, after they are
    durable (the acknowledgement is lost). A poisoned write stays poisoned, like a write the
    store rejects: committing it again (the same object, as the publisher retries it) fails
    again; a recovery makes writes of its own. `failed` holds every failed commit."""

    inner: Store
    poisons: WritePredicate = lambda write: False
    after: bool = False
    times: int = 1
    poisoned: list[Write] = attrs.field(factory=list)
    failed: list[Sequence[Write]] = attrs.field(factory=list)

    async def commit(self, writes: Sequence[Write]) -> None:
        for write in writes:
            if len(self.poisoned) < self.times and not self._is_poisoned(write) and self.poisons(write):
                self.poisoned.append(write)
        if any(self._is_poisoned(write) for write in writes):
            self.failed.append(writes)
            if self.after:
                await self.inner.commit(writes)
            raise StoreError("injected store failure")
        await self.inner.commit(writes)

    def _is_poisoned(self, write: Write) -> bool:
        return any(write is poisoned for poisoned in self.poisoned)

    def failed_appends_of(self, run_id: str) -> list[AppendEvents]:
        """The append of `run_id` in each failed commit that carried one."""
        return [
            write
            for writes in self.failed
            for write in writes
            if isinstance(write, AppendEvents) and write.run_id == run_id
        ]

    async def get_run(self, run_id: str) -> RunRecord | None:
        return await self.inner.get_run(run_id)

    async def list_runs(self, limit: int, status: Any = None, **filters: Any) -> list[RunRecord]:
        return await self.inner.list_runs(limit, status, **filters)

    async def count_runs(self) -> dict[RunStatus, int]:
        return await self.inner.count_runs()

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        return await self.inner.read_events(run_id, start, limit)

    async def count_events(self, run_id: str) -> int:
        return await self.inner.count_events(run_id)

    async def unfinished_runs(self) -> list[RunRecord]:
        return await self.inner.unfinished_runs()


def appends_event(run_id: Callable[[], str | None], kind: str, nth: int = 0) -> WritePredicate:
    """A predicate accepting an append that carries the `nth` event of kind `kind` of the run
    whose id `run_id()` returns (a callable because the id is known only once the run started),
    however many commits carry it."""
    indices: list[int] = []

    def matches(write: Write) -> bool:
        if not isinstance(write, AppendEvents) or write.run_id != run_id():
            return False
        for index, frame in enumerate(write.frames, write.first):
            if json.loads(frame)["event"] == kind:
                if index not in indices:
                    indices.append(index)
                if indices.index(index) == nth:
                    return True
        return False

    return matches


# -- following ----------------------------------------------------------------------------------


async def follow_into(
    runtime: Runtime,
    results: dict[str, list[str]],
    run_id: str,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Follow `run_id` from index 0 into `results[run_id]`; `started()` once subscribed."""
    follow = await runtime.follow(run_id)
    task_status.started()
    frames: list[str] = []

    async def send(frame: str) -> None:
        frames.append(frame)

    await follow.stream(send)
    results[run_id] = frames


async def follow_all(runtime: Runtime, run_id: str, start: int = 0) -> list[str]:
    """Every frame `Follow.stream` delivers, as the raw strings."""
    frames: list[str] = []

    async def send(frame: str) -> None:
        frames.append(frame)

    follow = await runtime.follow(run_id, start)
    await follow.stream(send)
    return frames


def decode(frames: Sequence[str]) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in frames]


def kinds(frames: Sequence[str]) -> list[str]:
    return [event["event"] for event in decode(frames)]


def indices(frames: Sequence[str]) -> list[int]:
    return [event["event_index"] for event in decode(frames)]


def assert_complete_run(frames: Sequence[str], start: int = 0) -> list[dict[str, Any]]:
    """Indices start..N-1, no gap, no duplicate; WorkflowStarted first (from 0); exactly one
    terminal event, and it is last."""
    events = decode(frames)
    assert [e["event_index"] for e in events] == list(range(start, start + len(events)))
    if start == 0:
        assert events[0]["event"] == "WorkflowStarted"
    terminal = [i for i, e in enumerate(events) if e["event"] in TERMINAL]
    assert terminal == [len(events) - 1], [e["event"] for e in events]
    return events


async def stored_frames(store: Store, run_id: str) -> list[str]:
    count = await store.count_events(run_id)
    return await store.read_events(run_id, 0, count + 10)


def task_count() -> int:
    """How many trio tasks exist right now, walking the whole task tree from the root."""
    count = 0
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


async def wait_published(runtime: Runtime, run_id: str, count: int) -> None:
    """Until the run has published `count` events. A body's `emit` returns once the event is
    queued; the run's writer publishes it once durable, as soon as the body lets it run."""
    while (await runtime.get_run(run_id)).event_count < count:
        await trio.sleep(0.001)

"""Shared helpers for the actor-runtime tests: small workflows (gated, chatty, failing), a
fault-injecting store wrapper around a real store, and ways to follow a run to its end."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from actors import Runtime, Workflow, WorkflowCatalog
from actors.actor import Reply
from actors.store import AppendEvent, RunRecord, Store, StoreError, Write
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


FaultPredicate = Callable[[Sequence[Write]], bool]


@attrs.define
class FaultyStore:
    """Delegates everything to a real store, but the first commit matching `fails` raises
    StoreError: before delegating (the writes are lost) or, with `after=True`, after the writes
    are durable (the acknowledgement is lost). Only one commit fails unless `times` says more."""

    inner: Store
    fails: FaultPredicate = lambda writes: False
    after: bool = False
    times: int = 1
    failed: list[Sequence[Write]] = attrs.field(factory=list)

    async def commit(self, writes: Sequence[Write]) -> None:
        if len(self.failed) < self.times and self.fails(writes):
            self.failed.append(writes)
            if self.after:
                await self.inner.commit(writes)
            raise StoreError("injected store failure")
        await self.inner.commit(writes)

    async def get_run(self, run_id: str) -> RunRecord | None:
        return await self.inner.get_run(run_id)

    async def list_runs(self, limit: int, status: Any = None) -> list[RunRecord]:
        return await self.inner.list_runs(limit, status)

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        return await self.inner.read_events(run_id, start, limit)

    async def count_events(self, run_id: str) -> int:
        return await self.inner.count_events(run_id)

    async def unfinished_runs(self) -> list[RunRecord]:
        return await self.inner.unfinished_runs()


def appends_event(run_id: Callable[[], str | None], kind: str, nth: int = 0) -> FaultPredicate:
    """A predicate matching the commit that appends the `nth` event of kind `kind` of the run whose
    id `run_id()` returns (a callable because the id is known only once the run started). A
    commit may append several events of a run (the run actor batches what its body queued)."""
    seen = [0]

    def matches(writes: Sequence[Write]) -> bool:
        wanted = run_id()
        hit = False
        for write in writes:
            if isinstance(write, AppendEvent) and write.run_id == wanted:
                if json.loads(write.frame)["event"] == kind:
                    seen[0] += 1
                    hit = hit or seen[0] == nth + 1
        return hit

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

"""The bound on the events of a run (`open_runtime(..., max_run_events=...)`, checked by the run
actor of actors/run.py): a body that would take its run past the bound is refused and the run
ends with a `WorkflowError` naming it; room is left for the run's own closing events, so no run,
not even one cancelled at the bound, holds more than `max_run_events` events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from actors import RunInfo, RunStatus, open_runtime, open_store
from actors.events import STEP_PROGRESS
from actors.run import RunEventLimitReached
from actors.workflows.catalog import Emit, WorkflowCatalog
from tests.actors.helpers import (
    assert_complete_run,
    catalog_of,
    chatty_workflow,
    follow_all,
    kinds,
    stored_frames,
)

LIMIT = 20
LIMIT_ERROR = "the run would exceed 20 events, the server's limit per run (--max-run-events)"


class EndlessBody:
    """A body that emits progress events until something stops it."""

    id = "endless"
    name = "Endless"
    description = ""

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
        tick = 0
        while True:
            await emit(STEP_PROGRESS, {"content": f"tick {tick}"})
            tick += 1


class FillingBody:
    """A body that emits progress events until one is refused, then waits to be cancelled."""

    id = "filling"
    name = "Filling"
    description = ""

    def __init__(self) -> None:
        self.full = trio.Event()

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
        try:
            while True:
                await emit(STEP_PROGRESS, {"content": "more"})
        except RunEventLimitReached:
            self.full.set()
        await trio.sleep_forever()


async def run_to_its_end(
    tmp_path: Path, catalog: WorkflowCatalog, workflow_id: str
) -> tuple[RunStatus, list[str], list[str]]:
    """Start `workflow_id` on a runtime bounded to LIMIT events per run and follow it to its end:
    its status, the frames followed and the frames stored."""
    async with open_store(f"sqlite:{tmp_path / 'r.db'}") as store:
        async with open_runtime(store, catalog, max_run_events=LIMIT) as runtime:
            info = await runtime.start(workflow_id)
            with trio.fail_after(10):
                frames = await follow_all(runtime, info.run_id)
            status = (await runtime.get_run(info.run_id)).status
        return status, frames, await stored_frames(store, info.run_id)


async def test_an_endless_body_ends_with_workflow_error_within_the_limit(tmp_path: Path) -> None:
    catalog = catalog_of(EndlessBody())  # type: ignore[arg-type]  # a WorkflowDefinition by shape, not a Workflow
    status, frames, stored = await run_to_its_end(tmp_path, catalog, "endless")
    events = assert_complete_run(frames)
    assert kinds(frames) == ["WorkflowStarted", *["StepProgress"] * (LIMIT - 3), "WorkflowError"]
    assert events[-1]["error"] == LIMIT_ERROR
    assert status is RunStatus.ERROR
    assert stored == frames


async def test_a_body_may_emit_three_events_fewer_than_the_limit(tmp_path: Path) -> None:
    """A step with 14 progress events makes 17 body events (`StepStarted`, progress, `StepOutput`,
    `StepCompleted`): it completes in 19 events. With 15, its `StepCompleted` would leave no room
    for a cancellation's two closing events within 20: refused, and the run ends with an error."""
    catalog = catalog_of(chatty_workflow("fits", 14), chatty_workflow("one-too-many", 15))
    status, frames, _ = await run_to_its_end(tmp_path, catalog, "fits")
    assert status is RunStatus.COMPLETED
    assert len(assert_complete_run(frames)) == LIMIT - 1
    status, frames, _ = await run_to_its_end(tmp_path, catalog, "one-too-many")
    events = assert_complete_run(frames)
    assert kinds(frames)[-2:] == ["StepOutput", "WorkflowError"]
    assert events[-1]["error"] == LIMIT_ERROR
    assert (status, len(events)) == (RunStatus.ERROR, LIMIT - 1)


async def test_a_run_cancelled_at_the_limit_holds_exactly_the_limit(tmp_path: Path) -> None:
    """A body that emits until refused, then waits: cancelling it adds `WorkflowCancelled` and
    `WorkflowCompleted`, and they were left room for: the run holds exactly 20 events."""
    body = FillingBody()
    catalog = catalog_of(body)  # type: ignore[arg-type]  # a WorkflowDefinition by shape, not a Workflow
    async with open_store(f"sqlite:{tmp_path / 'r.db'}") as store:
        async with open_runtime(store, catalog, max_run_events=LIMIT) as runtime:
            info = await runtime.start("filling")
            with trio.fail_after(10):
                await body.full.wait()
                assert (await runtime.cancel(info.run_id)).cancelling
                frames = await follow_all(runtime, info.run_id)
            record = await runtime.get_run(info.run_id)
    events = assert_complete_run(frames)
    assert kinds(frames) == [
        "WorkflowStarted", *["StepProgress"] * (LIMIT - 3), "WorkflowCancelled", "WorkflowCompleted"
    ]
    assert (record.status, record.event_count, len(events)) == (RunStatus.CANCELLED, LIMIT, LIMIT)

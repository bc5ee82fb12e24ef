"""The run actor (actors/run.py), driven through the in-process runtime: gap-free indices for
every kind of ending (guarantee 1), publish only once durable (guarantee 3), and crash isolation
with a terminal error for the crashed run (guarantee 4)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import json
import random
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from actors import RunInfo, RunStatus, StepContext, Workflow, WorkflowCatalog, open_runtime, open_store
from actors.events import STEP_STARTED, WORKFLOW_COMPLETED
from actors.registry import Lookup
from actors.store import AppendEvents, CreateRun, RunRecord, Write
from actors.workflows.catalog import Emit
from tests.sqlite_files import stored_events
from tests.actors.helpers import (
    follow_into,
    blocking_workflow,
    FaultyStore,
    Junk,
    appends_event,
    assert_complete_run,
    catalog_of,
    chatty_workflow,
    decode,
    failing_workflow,
    follow_all,
    gated_workflow,
    kinds,
    stored_frames,
    wait_published,
)


class RaisingBody:
    """A workflow definition (not a step list) whose body raises after one step event."""

    id = "raising-body"
    name = "Raising Body"
    description = ""

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
        await emit(STEP_STARTED, {"step_name": "only", "step_index": 0})
        raise RuntimeError("kaput")


class ImpostorBody:
    """A body that tries to emit the run's own terminal event."""

    id = "impostor"
    name = "Impostor"
    description = ""

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
        await emit(WORKFLOW_COMPLETED, {"content": "not mine to send"})
        return {}


# -- guarantee 1: indices 0, 1, 2, ... with no gap ------------------------------------------------


async def test_a_completed_run_has_gap_free_indices_and_matches_the_store(tmp_path: Path) -> None:
    catalog = catalog_of(chatty_workflow("chatty", events=30))
    async with open_store(f"sqlite:{tmp_path / 'r.db'}") as store:
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("chatty", message="hi")
            with trio.fail_after(20):
                frames = await follow_all(runtime, info.run_id)
            events = assert_complete_run(frames)
            assert len(events) == 35
            assert events[-1]["event"] == "WorkflowCompleted"
            assert {e["run_id"] for e in events} == {info.run_id}
            assert await stored_frames(store, info.run_id) == frames
            record = await store.get_run(info.run_id)
            assert record is not None
            assert record.status is RunStatus.COMPLETED and record.event_count == 35


async def test_concurrent_runs_of_every_ending_all_have_gap_free_indices(tmp_path: Path) -> None:
    """Completed, failed, cancelled, body-crashed and actor-crashed runs side by side: each
    history is 0..N-1 with exactly one terminal event, last."""
    catalog = catalog_of(
        chatty_workflow("chatty", events=20),
        chatty_workflow("crashing", events=20),
        failing_workflow("failing"),
        gated_workflow("gated", trio.Event(), before=3),
        RaisingBody(),  # type: ignore[arg-type]  # a WorkflowDefinition by shape, not a Workflow
    )

    def fourth_event_of_a_crashing_run(write: Write) -> bool:
        if not isinstance(write, AppendEvents):
            return False
        if not write.first <= 3 < write.first + len(write.frames):
            return False
        event = json.loads(write.frames[3 - write.first])
        return event["workflow_id"] == "crashing" and event["event"] == "StepProgress"

    async with open_store(f"sqlite:{tmp_path / 'r.db'}") as inner:
        store = FaultyStore(inner, fourth_event_of_a_crashing_run, times=2)
        async with open_runtime(store, catalog) as runtime:
            runs = []
            for _ in range(2):
                runs.append(await runtime.start("chatty"))
                runs.append(await runtime.start("failing"))
                runs.append(await runtime.start("raising-body"))
                runs.append(await runtime.start("gated"))
                runs.append(await runtime.start("crashing"))
            with trio.fail_after(20):
                for info in runs:
                    if info.workflow_id == "gated":
                        outcome = await runtime.cancel(info.run_id)
                        assert outcome.cancelling
                results = {info.run_id: await follow_all(runtime, info.run_id) for info in runs}
            for info in runs:
                frames = results[info.run_id]
                assert_complete_run(frames)
                assert await stored_frames(inner, info.run_id) == frames
            endings = sorted(
                [(info.workflow_id, (await runtime.get_run(info.run_id)).status.value) for info in runs]
            )
            assert endings == sorted(
                [("chatty", "COMPLETED"), ("crashing", "ERROR"), ("failing", "ERROR")] * 2
                + [("gated", "CANCELLED"), ("raising-body", "ERROR")] * 2
            )
            assert len(store.poisoned) == 2


def workflow_of(write: Write) -> str | None:
    """The workflow of the run a create or an append is for."""
    if isinstance(write, AppendEvents):
        return str(json.loads(write.frames[0])["workflow_id"])
    return write.record.info.workflow_id if isinstance(write, CreateRun) else None


@attrs.define
class RecoveryDuringTheRound(FaultyStore):
    """Forces the interleaving of a crash under load: a commit of two runs fails for a write of
    the `crashing` one (which goes on queueing events while that commit is under way), and the
    publisher commits each run alone, the `crashing` one first
    (which fails again: its actor crashes). The `other` one's commit then waits here until the
    crashed run's recovery starts reloading its history, and that first read waits until the
    commit is done and every other task is blocked: the publisher has finished the round and
    begun the next one, which took the crashed run's queue if it still had one."""

    reloading: trio.Event = attrs.field(factory=trio.Event)
    round_over: trio.Event = attrs.field(factory=trio.Event)

    async def commit(self, writes: Sequence[Write]) -> None:
        if any(self.poisons(write) for write in writes):
            await trio.testing.wait_all_tasks_blocked()  # the bodies queue more meanwhile
        crashed = any({workflow_of(w) for w in failed} == {"crashing"} for failed in self.failed)
        if crashed and not self.round_over.is_set() and {workflow_of(w) for w in writes} == {"other"}:
            await self.reloading.wait()
            try:
                await super().commit(writes)
            finally:
                self.round_over.set()
            return
        await super().commit(writes)

    async def _reload_begins(self) -> None:
        if self.failed and not self.reloading.is_set():
            self.reloading.set()
            await self.round_over.wait()
            await trio.testing.wait_all_tasks_blocked()

    async def get_run(self, run_id: str) -> RunRecord | None:
        await self._reload_begins()
        return await self.inner.get_run(run_id)

    async def count_events(self, run_id: str) -> int:
        await self._reload_begins()
        return await self.inner.count_events(run_id)


def busy_pair(gate: trio.Event) -> WorkflowCatalog:
    """`crashing` and `other`: once `gate` is set each emits events as fast as it may,
    `other` only once `crashing` has begun, so `crashing` comes first in the publisher's
    rounds (they take runs in the order their queues filled)."""
    crashing_began = trio.Event()

    async def crash_soon(ctx: StepContext) -> str:
        await gate.wait()
        for i in range(2000):  # more than a run queues ahead of the store: it is cut short
            await ctx.progress(f"tick {i}")
            crashing_began.set()
        return "done"

    async def keep_going(ctx: StepContext) -> str:
        await crashing_began.wait()
        for i in range(300):
            await ctx.progress(f"tick {i}")
        return "done"

    return catalog_of(
        Workflow("crashing", "Crashing", [crash_soon]), Workflow("other", "Other", [keep_going])
    )


@pytest.mark.parametrize("poisoned_index", [3, 40])
async def test_a_crashed_runs_queued_events_never_land_after_its_recovery(
    tmp_path: Path, poisoned_index: int
) -> None:
    """A commit of a busy run fails while the run has more events queued; the recovery's reload
    waits until the publisher has run its next round. The stored history is still 0..N-1 and
    ends with the recovery's WorkflowError: nothing the crashed incarnation queued lands after
    it (the recovery drops the queue before it awaits, and the store refuses the older epoch)."""
    path = tmp_path / "r.db"
    gate = trio.Event()
    catalog = busy_pair(gate)

    def carries_the_poisoned_event(write: Write) -> bool:
        return (
            isinstance(write, AppendEvents)
            and workflow_of(write) == "crashing"
            and write.first <= poisoned_index < write.first + len(write.frames)
        )

    async with open_store(f"sqlite:{path}") as inner:
        store = RecoveryDuringTheRound(inner, carries_the_poisoned_event)
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("crashing")
            other = await runtime.start("other")
            with trio.fail_after(20):
                for run in (info, other):  # both wait at the gate, so they emit together
                    await wait_published(runtime, run.run_id, 2)
                gate.set()
                frames = await follow_all(runtime, info.run_id)
                assert_complete_run(await follow_all(runtime, other.run_id))
        assert store.reloading.is_set()
    events = assert_complete_run(frames)
    assert events[-1]["event"] == "WorkflowError" and events[-1]["reason"] == "crashed"
    assert stored_events(path, info.run_id) == ("ERROR", frames)  # indices 0..n-1, checked


# -- guarantee 3: published only once durable ---------------------------------------------------


async def test_every_delivered_frame_is_already_in_the_sqlite_store(tmp_path: Path) -> None:
    """In the follower's send callback, the frame being delivered is already readable from the
    store at its index, and the terminal one already carries the run's final status."""
    rng = random.Random(7)
    catalog = catalog_of(chatty_workflow("chatty", events=25))
    checks: list[tuple[str, int, bool]] = []
    async with open_store(f"sqlite:{tmp_path / 'r.db'}") as store:
        async with open_runtime(store, catalog, feed_capacity=4) as runtime:

            async def follower(run_id: str, pause: int) -> None:
                for _ in range(pause):
                    await trio.sleep(0)
                count = (await runtime.get_run(run_id)).event_count
                follow = await runtime.follow(run_id, rng.randint(0, count))

                async def send(frame: str) -> None:
                    event = json.loads(frame)
                    index = event["event_index"]
                    stored = await store.read_events(run_id, index, 1)
                    durable = stored == [frame] and await store.count_events(run_id) > index
                    if event["event"] in ("WorkflowCompleted", "WorkflowError"):
                        record = await store.get_run(run_id)
                        durable = durable and record is not None and record.status.finished
                    checks.append((run_id, index, durable))

                await follow.stream(send)

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for _ in range(4):
                        info = await runtime.start("chatty")
                        for pause in (0, 3, 15, 40):
                            nursery.start_soon(follower, info.run_id, pause)
    assert len(checks) > 4 * 4 * 5
    assert all(durable for _, _, durable in checks), [c for c in checks if not c[2]]


# -- guarantee 4: crash isolation ---------------------------------------------------------------


async def test_a_failing_step_ends_with_step_error_then_workflow_error(tmp_path: Path) -> None:
    catalog = catalog_of(failing_workflow("failing", error="disk on fire"), chatty_workflow("chatty", 20))
    async with open_store(f"sqlite:{tmp_path / 'r.db'}") as store:
        async with open_runtime(store, catalog) as runtime:
            bad = await runtime.start("failing")
            good = [await runtime.start("chatty") for _ in range(3)]
            with trio.fail_after(20):
                frames = await follow_all(runtime, bad.run_id)
                others = [await follow_all(runtime, info.run_id) for info in good]
            events = assert_complete_run(frames)
            assert [e["event"] for e in events[-2:]] == ["StepError", "WorkflowError"]
            assert events[-2]["error"] == "disk on fire" and events[-2]["step_index"] == 1
            assert events[-1]["error"] == "disk on fire"
            assert (await runtime.get_run(bad.run_id)).status is RunStatus.ERROR
            for info, other in zip(good, others, strict=True):
                assert kinds(other)[-1] == "WorkflowCompleted"
                assert (await runtime.get_run(info.run_id)).status is RunStatus.COMPLETED


async def test_a_body_raising_outside_any_step_ends_with_workflow_error() -> None:
    async with open_store("memory") as store:
        async with open_runtime(store, catalog_of(RaisingBody())) as runtime:  # type: ignore[arg-type]  # a WorkflowDefinition by shape, not a Workflow
            info = await runtime.start("raising-body")
            with trio.fail_after(10):
                events = assert_complete_run(await follow_all(runtime, info.run_id))
    assert [e["event"] for e in events] == ["WorkflowStarted", "StepStarted", "WorkflowError"]
    assert events[-1]["error"] == "RuntimeError: kaput"


async def test_a_body_cannot_emit_the_runs_own_terminal_event() -> None:
    async with open_store("memory") as store:
        async with open_runtime(store, catalog_of(ImpostorBody())) as runtime:  # type: ignore[arg-type]  # a WorkflowDefinition by shape, not a Workflow
            info = await runtime.start("impostor")
            with trio.fail_after(10):
                events = assert_complete_run(await follow_all(runtime, info.run_id))
            assert (await runtime.get_run(info.run_id)).status is RunStatus.ERROR
    assert [e["event"] for e in events] == ["WorkflowStarted", "WorkflowError"]
    assert "cannot emit WorkflowCompleted" in events[-1]["error"]


@pytest.mark.parametrize("lost", ["lost-write", "lost-ack"])
@pytest.mark.parametrize(
    "kind", ["WorkflowStarted", "StepStarted", "StepProgress", "StepOutput", "WorkflowCompleted"]
)
async def test_a_store_failure_crashes_only_its_run_which_ends_with_a_crashed_error(
    tmp_path: Path, kind: str, lost: str
) -> None:
    """A commit of one run fails (its writes are lost, or they are durable but the store raised):
    the run actor crashes and its followers get a terminal WorkflowError, reason "crashed", at the
    next index; the history in the store is what they saw; other runs and the registry are fine."""
    target: list[str] = []
    catalog = catalog_of(chatty_workflow("chatty", events=4))
    async with open_store(f"sqlite:{tmp_path / 'r.db'}") as inner:
        store = FaultyStore(
            inner, appends_event(lambda: target[0] if target else None, kind), after=lost == "lost-ack"
        )
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("chatty")
            target.append(info.run_id)
            other = await runtime.start("chatty")
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    results: dict[str, list[str]] = {}

                    async def watch(run_id: str) -> None:
                        results[run_id] = await follow_all(runtime, run_id)

                    nursery.start_soon(watch, info.run_id)
                    nursery.start_soon(watch, other.run_id)
                later = await runtime.start("chatty")
                after = await follow_all(runtime, later.run_id)
            status = (await runtime.get_run(info.run_id)).status

        assert len(store.poisoned) == 1
        # the first failed commit holds every event the run had queued, as the poisoned append
        append = store.failed_appends_of(info.run_id)[0]
        assert store.poisoned[0] is append
        after_failed = append.first + len(append.frames)
        frames = results[info.run_id]
        events = assert_complete_run(frames)
        if lost == "lost-ack" and json.loads(append.frames[-1])["event"] == "WorkflowCompleted":
            # the terminal event is durable (it was in the failed commit): recovery adopts it
            # instead of adding a second one
            assert frames[-1] == append.frames[-1]
            assert await stored_frames(inner, info.run_id) == frames
            assert status is RunStatus.COMPLETED
            return
        assert events[-1]["event"] == "WorkflowError"
        assert events[-1].get("reason") == "crashed", events[-1]
        assert "StoreError" in events[-1]["error"]
        if lost == "lost-write":
            # the lost event is not in the history: the error takes its index (after a
            # WorkflowStarted written by the recovery if that was the lost one)
            assert events[-1]["event_index"] == max(append.first, 1)
        else:
            assert frames[append.first : after_failed] == list(append.frames)
            assert events[-1]["event_index"] == after_failed
        assert await stored_frames(inner, info.run_id) == frames
        assert status is RunStatus.ERROR
        assert (await inner.get_run(info.run_id)).status is RunStatus.ERROR  # type: ignore[union-attr]  # the run is stored
        assert_other_run_unharmed(store, other.run_id, results[other.run_id], lost)
        assert await stored_frames(inner, other.run_id) == results[other.run_id]
        assert kinds(after)[-1] == "WorkflowCompleted"


def assert_other_run_unharmed(store: FaultyStore, run_id: str, frames: list[str], lost: str) -> None:
    """A run whose writes shared the failed commit of another run: a lost write is retried alone
    and the run completes; after a lost acknowledgement its writes are durable, so retrying them
    fails and the run recovers from the store like the faulty one (adopting its events, even a
    durable terminal one); a run outside the failed commit simply completes."""
    events = assert_complete_run(frames)
    if lost == "lost-ack" and store.failed_appends_of(run_id):
        assert events[-1]["event"] == "WorkflowCompleted" or events[-1]["reason"] == "crashed"
    else:
        assert events[-1]["event"] == "WorkflowCompleted"


async def test_an_unknown_message_crashes_the_run_actor_and_its_followers_get_a_terminal_error(
    tmp_path: Path,
) -> None:
    reached, gate = trio.Event(), trio.Event()
    other_reached, other_gate = trio.Event(), trio.Event()
    catalog = catalog_of(
        gated_workflow("victim", gate, before=2, reached=reached),
        gated_workflow("bystander", other_gate, before=1, after=3, reached=other_reached),
    )
    async with open_store(f"sqlite:{tmp_path / 'r.db'}") as store:
        async with open_runtime(store, catalog) as runtime:
            victim = await runtime.start("victim")
            bystander = await runtime.start("bystander")
            with trio.fail_after(20):
                await reached.wait()
                await other_reached.wait()
                results: dict[str, list[str]] = {}
                async with trio.open_nursery() as nursery:

                    watch = partial(follow_into, runtime, results)
                    await nursery.start(watch, victim.run_id)
                    await nursery.start(watch, bystander.run_id)
                    address = await runtime._registry.address.ask(lambda r: Lookup(victim.run_id, r))
                    assert address is not None
                    with pytest.raises(TypeError, match="does not understand"):
                        await address.ask(lambda r: Junk(r))
                    # the bystander is still running, undisturbed, until its gate opens
                    assert (await runtime.get_run(bystander.run_id)).status is RunStatus.RUNNING
                    other_gate.set()
            events = assert_complete_run(results[victim.run_id])
            assert [e["event"] for e in events] == [
                "WorkflowStarted", "StepStarted", "StepProgress", "StepProgress", "WorkflowError"
            ]
            assert events[-1]["reason"] == "crashed" and "TypeError" in events[-1]["error"]
            assert await stored_frames(store, victim.run_id) == results[victim.run_id]
            assert (await runtime.get_run(victim.run_id)).status is RunStatus.ERROR
            bystander_events = assert_complete_run(results[bystander.run_id])
            assert bystander_events[-1]["event"] == "WorkflowCompleted"
            assert len(bystander_events) == 9
            # the victim's gate opening now changes nothing: the run is over
            gate.set()
            with trio.fail_after(10):
                assert await follow_all(runtime, victim.run_id) == results[victim.run_id]


async def test_a_crashed_run_with_no_durable_event_still_starts_and_ends() -> None:
    """If even the first commit fails, recovery writes WorkflowStarted then the error."""
    target: list[str] = []
    async with open_store("memory") as inner:
        store = FaultyStore(inner, appends_event(lambda: target[0] if target else None, "WorkflowStarted"))
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 3))) as runtime:
            info = await runtime.start("chatty")
            target.append(info.run_id)
            with trio.fail_after(10):
                events = decode(await follow_all(runtime, info.run_id))
    assert [(e["event_index"], e["event"]) for e in events] == [(0, "WorkflowStarted"), (1, "WorkflowError")]
    assert events[1]["reason"] == "crashed"


async def test_a_store_failure_ends_a_run_whose_body_is_waiting_and_emits_nothing_more(
    tmp_path: Path,
) -> None:
    """The writer, not the body, meets the failure: the body waits forever and never emits again,
    yet the run crashes at once and its followers get the terminal crash error."""
    target: list[str] = []
    catalog = catalog_of(blocking_workflow("blocking", before=1))
    async with open_store(f"sqlite:{tmp_path / 'w.db'}") as inner:
        store = FaultyStore(inner, appends_event(lambda: target[0] if target else None, "StepProgress"))
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("blocking")
            target.append(info.run_id)
            with trio.fail_after(10):
                events = assert_complete_run(await follow_all(runtime, info.run_id))
    assert len(store.failed) == 1
    assert events[-1]["event"] == "WorkflowError" and events[-1]["reason"] == "crashed"
    assert "StepProgress" not in [e["event"] for e in events]  # its commit was the one lost

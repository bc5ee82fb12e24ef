"""The registry actor (actors/registry.py): which runs are live, lookup and cancel routing, and
that crashes of runs (or of the registry itself) never stop it starting and routing runs
(guarantee 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from actors import RunStatus, open_runtime, open_store
from actors.actor import Reply
from actors.registry import CancelAll, Lookup
from actors.store import AppendEvents, Write
from tests.actors.helpers import (
    FaultyStore,
    Junk,
    assert_complete_run,
    blocking_workflow,
    catalog_of,
    chatty_workflow,
    decode,
    follow_all,
    gated_workflow,
    kinds,
    stored_frames,
)


async def test_lookup_finds_a_live_run_and_answers_none_once_it_ended() -> None:
    reached, gate = trio.Event(), trio.Event()
    catalog = catalog_of(gated_workflow("gated", gate, reached=reached))
    async with open_store("memory") as store:
        async with open_runtime(store, catalog) as runtime:
            registry = runtime._registry
            info = await runtime.start("gated")
            with trio.fail_after(10):
                await reached.wait()
                address = await registry.address.ask(lambda r: Lookup(info.run_id, r))
                assert address is not None and info.run_id in address.name
                assert runtime.live_runs == 1
                assert await registry.address.ask(lambda r: Lookup("no-such-run", r)) is None
                gate.set()
                await follow_all(runtime, info.run_id)
                await registry.wait_until_idle()
                assert runtime.live_runs == 0
                assert await registry.address.ask(lambda r: Lookup(info.run_id, r)) is None
            # still followable: from the store
            frames = await follow_all(runtime, info.run_id)
    assert kinds(frames)[-1] == "WorkflowCompleted"


async def test_cancel_all_cancels_every_live_run_and_counts_them() -> None:
    catalog = catalog_of(blocking_workflow("blocking"), chatty_workflow("chatty", 3))
    async with open_store("memory") as store:
        async with open_runtime(store, catalog) as runtime:
            blocked = [await runtime.start("blocking") for _ in range(4)]
            with trio.fail_after(10):
                count = await runtime._registry.address.ask(lambda r: CancelAll("tidy up", r))
                results = [decode(await follow_all(runtime, info.run_id)) for info in blocked]
                await runtime._registry.wait_until_idle()
                statuses = [(await runtime.get_run(info.run_id)).status for info in blocked]
                # the registry still starts runs afterwards
                later = await runtime.start("chatty")
                later_frames = await follow_all(runtime, later.run_id)
    assert count == 4
    for events in results:
        assert [e["event"] for e in events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
        assert events[-2]["reason"] == "tidy up"
    assert statuses == [RunStatus.CANCELLED] * 4
    assert kinds(later_frames)[-1] == "WorkflowCompleted"


async def test_a_crashed_registry_is_restarted_and_keeps_routing() -> None:
    """The registry is a permanent child of the root supervisor: a message it does not
    understand crashes it (the asker hears why), it restarts with its live runs, and keeps
    starting, looking up and cancelling runs."""
    reached = trio.Event()
    catalog = catalog_of(blocking_workflow("blocking", reached=reached), chatty_workflow("chatty", 3))
    async with open_store("memory") as store:
        async with open_runtime(store, catalog) as runtime:
            registry = runtime._registry
            running = await runtime.start("blocking")
            with trio.fail_after(10):
                await reached.wait()
                with pytest.raises(TypeError, match="does not understand"):
                    await registry.address.ask(lambda r: Junk(r))
                registry.address.tell(Junk(Reply()))  # and once more, without anyone waiting
                assert await registry.address.ask(lambda r: Lookup(running.run_id, r)) is not None
                fresh = await runtime.start("chatty")
                fresh_frames = await follow_all(runtime, fresh.run_id)
                outcome = await runtime.cancel(running.run_id)
                running_frames = await follow_all(runtime, running.run_id)
    assert kinds(fresh_frames)[-1] == "WorkflowCompleted"
    assert outcome.cancelling
    assert kinds(running_frames)[-2:] == ["WorkflowCancelled", "WorkflowCompleted"]


async def test_many_crashing_runs_leave_the_registry_and_other_runs_alone(tmp_path: Path) -> None:
    """Eight runs crash on a store failure at the same moment; a run beside them completes, and
    the registry starts and finishes new runs afterwards."""
    catalog = catalog_of(chatty_workflow("crashing", 5), chatty_workflow("chatty", 30))

    def crashing_step_start(write: Write) -> bool:
        return (
            isinstance(write, AppendEvents)
            and write.first <= 1 < write.first + len(write.frames)
            and '"workflow_id":"crashing"' in write.frames[1 - write.first]
            and '"event":"StepStarted"' in write.frames[1 - write.first]
        )

    async with open_store(f"sqlite:{tmp_path / 'g.db'}") as inner:
        store = FaultyStore(inner, crashing_step_start, times=8)
        async with open_runtime(store, catalog) as runtime:
            steady = await runtime.start("chatty")
            crashing = [await runtime.start("crashing") for _ in range(8)]
            with trio.fail_after(20):
                crashed = [decode(await follow_all(runtime, info.run_id)) for info in crashing]
                steady_frames = await follow_all(runtime, steady.run_id)
                later = await runtime.start("chatty")
                later_frames = await follow_all(runtime, later.run_id)
                await runtime._registry.wait_until_idle()
            crashes = runtime._registry.runs_supervisor.crashes
    assert len(store.poisoned) == 8 and crashes == 8
    for events in crashed:
        assert [(e["event_index"], e["event"]) for e in events] == [(0, "WorkflowStarted"), (1, "WorkflowError")]
        assert events[1]["reason"] == "crashed"
    assert_complete_run(steady_frames)
    assert kinds(steady_frames)[-1] == "WorkflowCompleted" and len(steady_frames) == 35
    assert kinds(later_frames)[-1] == "WorkflowCompleted"


async def test_a_run_given_up_after_repeated_crashes_does_not_disturb_others(tmp_path: Path) -> None:
    """Crash one run actor more often than the supervisor's intensity (3 restarts in 5 s): it is
    given up and forgotten by the registry, while a neighbour keeps running and completes, and
    new runs start and complete."""
    reached, neighbour_reached, neighbour_gate = trio.Event(), trio.Event(), trio.Event()
    catalog = catalog_of(
        blocking_workflow("victim", reached=reached),
        gated_workflow("neighbour", neighbour_gate, before=1, after=3, reached=neighbour_reached),
        chatty_workflow("chatty", 3),
    )
    async with open_store(f"sqlite:{tmp_path / 'g.db'}") as store:
        async with open_runtime(store, catalog) as runtime:
            victim = await runtime.start("victim")
            neighbour = await runtime.start("neighbour")
            with trio.fail_after(20):
                await reached.wait()
                await neighbour_reached.wait()
                neighbour_follow = await runtime.follow(neighbour.run_id)
                address = runtime._registry.live[victim.run_id].mailbox.address
                for _ in range(6):
                    address.tell(Junk(Reply()))
                while victim.run_id in runtime._registry.live:
                    await runtime._registry._changed.wait()
                assert runtime._registry.runs_supervisor.crashes >= 4
                neighbour_gate.set()
                neighbour_frames: list[str] = []

                async def send(frame: str) -> None:
                    neighbour_frames.append(frame)

                await neighbour_follow.stream(send)
                later = await runtime.start("chatty")
                later_frames = await follow_all(runtime, later.run_id)
    assert kinds(neighbour_frames)[-1] == "WorkflowCompleted"
    assert_complete_run(neighbour_frames)
    assert kinds(later_frames)[-1] == "WorkflowCompleted"


async def test_a_run_given_up_after_repeated_crashes_still_ends_with_a_terminal_error(
    tmp_path: Path,
) -> None:
    """Guarantee 4: a crashed run ends with a terminal error event its subscribers receive, even
    when the supervisor gives the run actor up (the store is healthy here, so that event can be
    recorded). Its live follower, a later follower and the store must all end with it."""
    reached = trio.Event()
    catalog = catalog_of(blocking_workflow("victim", reached=reached))
    async with open_store(f"sqlite:{tmp_path / 'g.db'}") as store:
        async with open_runtime(store, catalog) as runtime:
            victim = await runtime.start("victim")
            with trio.fail_after(20):
                await reached.wait()
                follow = await runtime.follow(victim.run_id)
                live_frames: list[str] = []

                async def send(frame: str) -> None:
                    live_frames.append(frame)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(follow.stream, send)
                    await trio.testing.wait_all_tasks_blocked()
                    address = runtime._registry.live[victim.run_id].mailbox.address
                    for _ in range(6):
                        address.tell(Junk(Reply()))
                while victim.run_id in runtime._registry.live:
                    await runtime._registry._changed.wait()
                later_frames = await follow_all(runtime, victim.run_id)
                status = (await runtime.get_run(victim.run_id)).status
        history = await stored_frames(store, victim.run_id)
    assert kinds(live_frames)[-1:] == ["WorkflowError"], kinds(live_frames)
    assert later_frames == live_frames == history
    assert_complete_run(history)
    assert status is RunStatus.ERROR

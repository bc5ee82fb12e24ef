"""The runtime's public API (actors/runtime.py): start / follow / cancel / get_run / list_runs and
their errors, structured shutdown (guarantee 5), and what a restart finds in the SQLite file:
finished runs replay byte-for-byte, runs a dead process left running are closed as interrupted."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import time
from pathlib import Path

import pytest
import trio
import trio.testing

from actors import (
    IndexBeyondRun,
    RunInfo,
    RunStatus,
    Runtime,
    RuntimeClosing,
    UnknownRun,
    UnknownWorkflow,
    WorkflowCatalog,
    open_runtime,
    open_store,
)
from actors.events import encode_event
from actors.store import AppendEvents, CreateRun, NodeSettings, RunRecord
from tests.actors.store.test_redis_channels import kill_pubsub_connections
from tests.actors.helpers import (
    follow_into,
    assert_complete_run,
    blocking_workflow,
    catalog_of,
    chatty_workflow,
    decode,
    failing_workflow,
    follow_all,
    gated_workflow,
    kinds,
    stored_frames,
    task_count,
    wait_published,
)

# -- start / follow / cancel / get_run / list_runs ------------------------------------------------


async def test_starting_an_unknown_workflow_raises_and_records_nothing() -> None:
    async with open_store("memory") as store:
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 1))) as runtime:
            with pytest.raises(UnknownWorkflow, match="Workflow nope not found"):
                await runtime.start("nope")
            assert await runtime.list_runs() == []
            assert runtime.live_runs == 0


async def test_unknown_run_ids_raise_unknown_run_everywhere() -> None:
    async with open_store("memory") as store:
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 1))) as runtime:
            with pytest.raises(UnknownRun, match="^Run X not found$"):
                await runtime.follow("X")
            with pytest.raises(UnknownRun, match="^Run X not found$"):
                await runtime.follow("X", 5)
            with pytest.raises(UnknownRun, match="^Run Y not found$") as raised:
                await runtime.cancel("Y")
            assert raised.value.run_id == "Y"
            with pytest.raises(UnknownRun, match="^Run Z not found$"):
                await runtime.get_run("Z")


async def test_start_returns_the_run_info_and_the_run_carries_it() -> None:
    async with open_store("memory") as store:
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 2))) as runtime:
            info = await runtime.start("chatty", message="write about otters", session_id="s-1", user_id="u-1")
            with trio.fail_after(10):
                events = decode(await follow_all(runtime, info.run_id))
            record = await runtime.get_run(info.run_id)
    assert (info.workflow_id, info.workflow_name, info.session_id, info.user_id) == ("chatty", "Chatty", "s-1", "u-1")
    assert record.info == info
    assert {(e["run_id"], e["session_id"], e["workflow_id"]) for e in events} == {(info.run_id, "s-1", "chatty")}


async def test_start_and_follow_follows_live_even_a_run_that_ends_before_it_is_read(
    tmp_path: Path,
) -> None:
    """The subscription is taken with the run's creation: read only after the run has ended, it
    still delivers every event from its feed, not from the store (a `start` then `follow` at
    that moment gets the stored history instead)."""
    async with open_store(f"sqlite:{tmp_path / 's.db'}") as store:
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 5))) as runtime:
            follow = await runtime.start_and_follow("chatty", "m", "s-1", "u-1")
            other = await runtime.start("chatty")
            with trio.fail_after(10):
                while runtime.live_runs:
                    await trio.sleep(0.01)
                frames: list[str] = []

                async def take(batch: Sequence[str]) -> None:
                    frames.extend(batch)

                await follow.stream_batches(take)
                late = await runtime.follow(other.run_id)
            record = await runtime.get_run(follow.run_id)
        stored = await stored_frames(store, follow.run_id)
    assert follow.snapshot.feed is not None and follow.snapshot.first == 0
    assert late.snapshot.feed is None and late.snapshot.frames is None  # from the store
    events = assert_complete_run(frames)
    assert events[-1]["event"] == "WorkflowCompleted"
    assert frames == stored
    assert (record.info.session_id, record.info.user_id, record.info.message) == ("s-1", "u-1", "m")
    assert record.status is RunStatus.COMPLETED


async def test_start_and_follow_refuses_an_unknown_workflow() -> None:
    async with open_store("memory") as store:
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 1))) as runtime:
            with pytest.raises(UnknownWorkflow, match="Workflow nope not found"):
                await runtime.start_and_follow("nope")
            assert await runtime.list_runs() == []


async def test_following_beyond_the_event_count_of_a_running_run_raises_index_beyond_run() -> None:
    reached, gate = trio.Event(), trio.Event()
    catalog = catalog_of(gated_workflow("gated", gate, before=2, reached=reached))
    async with open_store("memory") as store:
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("gated")
            with trio.fail_after(10):
                await reached.wait()
                await wait_published(runtime, info.run_id, 4)
                count = (await runtime.get_run(info.run_id)).event_count
                with pytest.raises(IndexBeyondRun, match=f"last_event_index {count} is beyond"):
                    await runtime.follow(info.run_id, count + 1)
                at_end = await runtime.follow(info.run_id, count)  # nothing missed: only new events
                assert at_end.missed == 0
                gate.set()
                await follow_all(runtime, info.run_id)
    assert count == 4


async def test_following_beyond_the_end_is_refused_without_disturbing_the_run(tmp_path: Path) -> None:
    """Bad input from one follower (guarantee 6) must not touch the run (guarantee 4): the run
    goes on and completes normally, with no error event in its history."""
    reached, gate = trio.Event(), trio.Event()
    catalog = catalog_of(gated_workflow("gated", gate, before=2, after=2, reached=reached))
    async with open_store(f"sqlite:{tmp_path / 'rt.db'}") as store:
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("gated")
            with trio.fail_after(10):
                await reached.wait()
                with pytest.raises(IndexBeyondRun):
                    await runtime.follow(info.run_id, 100)
                await trio.testing.wait_all_tasks_blocked()
                gate.set()
                frames = await follow_all(runtime, info.run_id)
            status = (await runtime.get_run(info.run_id)).status
    assert kinds(frames)[-1] == "WorkflowCompleted", kinds(frames)
    assert "WorkflowError" not in kinds(frames)
    assert status is RunStatus.COMPLETED
    assert len(frames) == 9


async def test_a_finished_run_ignores_the_start_index_and_replays_from_0() -> None:
    async with open_store("memory") as store:
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 5))) as runtime:
            info = await runtime.start("chatty")
            with trio.fail_after(10):
                full = await follow_all(runtime, info.run_id)
                from_three = await follow_all(runtime, info.run_id, 3)
                beyond = await follow_all(runtime, info.run_id, 1000)
                await runtime._registry.wait_until_idle()  # from the store from now on
                stored_beyond = await runtime.follow(info.run_id, 1000)
                from_store = await follow_all(runtime, info.run_id, 7)
    assert len(full) == 10
    assert from_three == beyond == from_store == full
    assert stored_beyond.start == 0 and stored_beyond.finished and stored_beyond.missed == 10


async def test_cancelling_a_running_run_ends_it_with_cancelled_then_completed(tmp_path: Path) -> None:
    reached = trio.Event()
    catalog = catalog_of(blocking_workflow("blocking", before=2, reached=reached))
    path = tmp_path / "rt.db"
    async with open_store(f"sqlite:{path}") as store:
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("blocking")
            with trio.fail_after(10):
                await reached.wait()
                follow = await runtime.follow(info.run_id)
                outcome = await runtime.cancel(info.run_id, reason="user pressed stop")
                frames: list[str] = []

                async def send(frame: str) -> None:
                    frames.append(frame)

                await follow.stream(send)
                again = await runtime.cancel(info.run_id)
            status = (await runtime.get_run(info.run_id)).status
    async with open_store(f"sqlite:{path}") as reopened:
        record = await reopened.get_run(info.run_id)
        history = await stored_frames(reopened, info.run_id)
    assert outcome.cancelling and outcome.run_id == info.run_id
    events = assert_complete_run(frames)
    assert [e["event"] for e in events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
    assert events[-2]["reason"] == "user pressed stop"
    assert events[-1]["status"] == "cancelled"
    assert status is RunStatus.CANCELLED
    assert record is not None and record.status is RunStatus.CANCELLED and record.event_count == len(frames)
    assert history == frames
    assert not again.cancelling and again.status is RunStatus.CANCELLED


async def test_cancelling_a_finished_run_changes_nothing_and_reports_its_status() -> None:
    catalog = catalog_of(chatty_workflow("chatty", 2), failing_workflow("failing"))
    async with open_store("memory") as store:
        async with open_runtime(store, catalog) as runtime:
            done = await runtime.start("chatty")
            failed = await runtime.start("failing")
            with trio.fail_after(10):
                done_frames = await follow_all(runtime, done.run_id)
                await follow_all(runtime, failed.run_id)
                await runtime._registry.wait_until_idle()
                done_outcome = await runtime.cancel(done.run_id)
                failed_outcome = await runtime.cancel(failed.run_id)
                after = await follow_all(runtime, done.run_id)
    assert (done_outcome.cancelling, done_outcome.status) == (False, RunStatus.COMPLETED)
    assert (failed_outcome.cancelling, failed_outcome.status) == (False, RunStatus.ERROR)
    assert after == done_frames


async def test_get_run_and_list_runs_report_live_counts_for_running_runs(tmp_path: Path) -> None:
    reached, gate = trio.Event(), trio.Event()
    catalog = catalog_of(gated_workflow("gated", gate, before=3, reached=reached), chatty_workflow("chatty", 4))
    async with open_store(f"sqlite:{tmp_path / 'rt.db'}") as store:
        async with open_runtime(store, catalog) as runtime:
            finished = await runtime.start("chatty")
            with trio.fail_after(10):
                await follow_all(runtime, finished.run_id)
                running = await runtime.start("gated")
                await reached.wait()
                await wait_published(runtime, running.run_id, 5)
                live_record = await runtime.get_run(running.run_id)
                listed = await runtime.list_runs()
                listed_running = await runtime.list_runs(status=RunStatus.RUNNING)
                listed_completed = await runtime.list_runs(status=RunStatus.COMPLETED)
                stored_running = await store.get_run(running.run_id)
                gate.set()
                await follow_all(runtime, running.run_id)
                await runtime._registry.wait_until_idle()
                final_record = await runtime.get_run(running.run_id)
                finished_record = await runtime.get_run(finished.run_id)
                limited = await runtime.list_runs(limit=1)
    assert live_record.status is RunStatus.RUNNING and live_record.event_count == 5
    assert stored_running is not None and stored_running.event_count == 5  # the durable ones
    assert [(r.info.run_id, r.status, r.event_count) for r in listed] == [
        (running.run_id, RunStatus.RUNNING, 5),
        (finished.run_id, RunStatus.COMPLETED, 9),
    ]
    assert [(r.info.run_id, r.event_count) for r in listed_running] == [(running.run_id, 5)]
    assert [r.info.run_id for r in listed_completed] == [finished.run_id]
    assert (final_record.status, final_record.event_count) == (RunStatus.COMPLETED, 8)
    assert final_record.finished_at is not None
    assert (finished_record.status, finished_record.event_count) == (RunStatus.COMPLETED, 9)
    assert [r.info.run_id for r in limited] == [running.run_id]


# -- shutdown -----------------------------------------------------------------------------------


async def test_leaving_the_runtime_cancels_running_runs_durably_and_leaves_no_task(tmp_path: Path) -> None:
    """Runs still running at exit end with WorkflowCancelled (reason "server shutting down") then
    WorkflowCompleted; their followers get both; the SQLite file, reopened, has them with status
    CANCELLED; and no task of the runtime outlives the context."""
    path = tmp_path / "rt.db"
    reached = [trio.Event() for _ in range(3)]
    catalog = catalog_of(
        *(blocking_workflow(f"blocking{i}", before=i, reached=reached[i]) for i in range(3)),
        chatty_workflow("chatty", 3),
    )
    tasks_before = task_count()
    followed: dict[str, list[str]] = {}
    with trio.fail_after(20):
        async with open_store(f"sqlite:{path}") as store:
            tasks_with_store = task_count()
            async with trio.open_nursery() as outside:
                async with open_runtime(store, catalog) as runtime:
                    done = await runtime.start("chatty")
                    await follow_all(runtime, done.run_id)
                    runs = [await runtime.start(f"blocking{i}") for i in range(3)]
                    for event in reached:
                        await event.wait()

                    watch = partial(follow_into, runtime, followed)
                    for info in runs:
                        await outside.start(watch, info.run_id)
                tasks_inside_store = task_count()
            assert runtime.live_runs == 0
        tasks_after = task_count()
    async with open_store(f"sqlite:{path}") as reopened:
        records = {info.run_id: await reopened.get_run(info.run_id) for info in runs}
        histories = {info.run_id: await stored_frames(reopened, info.run_id) for info in runs}
        done_record = await reopened.get_run(done.run_id)
    assert tasks_after == tasks_before
    assert tasks_inside_store == tasks_with_store  # the runtime left no task behind
    for i, info in enumerate(runs):
        events = assert_complete_run(followed[info.run_id])
        assert [e["event"] for e in events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
        assert events[-2]["reason"] == "server shutting down"
        assert len(events) == 4 + i
        assert histories[info.run_id] == followed[info.run_id]
        record = records[info.run_id]
        assert record is not None and record.status is RunStatus.CANCELLED
        assert record.event_count == len(events)
    assert done_record is not None and done_record.status is RunStatus.COMPLETED


async def _host(
    store: object,
    catalog: WorkflowCatalog,
    grace: float,
    leave: trio.Event,
    task_status: trio.TaskStatus[Runtime],
) -> None:
    async with open_runtime(store, catalog, shutdown_grace=grace) as runtime:  # type: ignore[arg-type]  # a wrapper standing in for a Store
        task_status.started(runtime)
        await leave.wait()


async def test_a_run_that_finishes_within_the_shutdown_grace_completes_normally(tmp_path: Path) -> None:
    """With shutdown_grace, leaving the runtime first refuses new runs (RuntimeClosing) and waits:
    a run that finishes meanwhile ends with WorkflowCompleted, not a cancellation."""
    path = tmp_path / "rt.db"
    reached, gate = trio.Event(), trio.Event()
    catalog = catalog_of(gated_workflow("gated", gate, before=1, after=2, reached=reached))
    leave = trio.Event()
    with trio.fail_after(20):
        async with open_store(f"sqlite:{path}") as store:
            async with trio.open_nursery() as nursery:
                runtime: Runtime = await nursery.start(_host, store, catalog, 30.0, leave)
                info = await runtime.start("gated")
                await reached.wait()
                leave.set()
                await trio.testing.wait_all_tasks_blocked()
                assert runtime.closing  # the shutdown began and is waiting for the run
                assert runtime.live_runs == 1
                with pytest.raises(RuntimeClosing, match="shutting down"):
                    await runtime.start("gated")
                gate.set()
            history = await stored_frames(store, info.run_id)
            record = await store.get_run(info.run_id)
            all_runs = await store.list_runs(10)
    events = assert_complete_run(history)
    assert events[-1]["event"] == "WorkflowCompleted" and "WorkflowCancelled" not in kinds(history)
    assert record is not None and record.status is RunStatus.COMPLETED
    assert [r.info.run_id for r in all_runs] == [info.run_id]  # the refused start left no trace


async def test_runs_outlasting_the_shutdown_grace_are_cancelled_others_complete(tmp_path: Path) -> None:
    reached, gate, stuck_reached = trio.Event(), trio.Event(), trio.Event()
    catalog = catalog_of(
        gated_workflow("gated", gate, before=1, after=1, reached=reached),
        blocking_workflow("stuck", reached=stuck_reached),
    )
    leave = trio.Event()
    with trio.fail_after(20):
        async with open_store(f"sqlite:{tmp_path / 'rt.db'}") as store:
            async with trio.open_nursery() as nursery:
                runtime: Runtime = await nursery.start(_host, store, catalog, 0.3, leave)
                finishing = await runtime.start("gated")
                stuck = await runtime.start("stuck")
                await reached.wait()
                await stuck_reached.wait()
                leave.set()
                await trio.testing.wait_all_tasks_blocked()
                assert runtime.closing
                gate.set()
            finishing_events = decode(await stored_frames(store, finishing.run_id))
            stuck_events = assert_complete_run(await stored_frames(store, stuck.run_id))
            statuses = [(await store.get_run(i.run_id)).status for i in (finishing, stuck)]  # type: ignore[union-attr]  # both runs are stored
    assert finishing_events[-1]["event"] == "WorkflowCompleted" and "status" not in finishing_events[-1]
    assert [e["event"] for e in stuck_events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
    assert stuck_events[-2]["reason"] == "server shutting down"
    assert statuses == [RunStatus.COMPLETED, RunStatus.CANCELLED]
    with pytest.raises(RuntimeClosing):
        await runtime.start("gated")


async def test_a_start_racing_with_shutdown_is_refused_or_gives_a_run_that_ends() -> None:
    """Guarantee 5 at the edge: `start` calls made just as the runtime is left must each either
    raise RuntimeClosing or return a run that exists and ends (cancelled) -- never hang, never
    return the id of a run that was never recorded. Repeated, since trio's scheduler picks the
    order of the racing tasks at random."""
    catalog = catalog_of(blocking_workflow("blocking"))
    for trial in range(20):
        results: list[object] = []
        async with open_store("memory") as store:

            async def starter(runtime: Runtime) -> None:
                try:
                    results.append(await runtime.start("blocking"))
                except RuntimeClosing as refused:
                    results.append(refused)

            with trio.move_on_after(3) as guard:
                async with trio.open_nursery() as outside:
                    async with open_runtime(store, catalog) as runtime:
                        for _ in range(3):
                            outside.start_soon(starter, runtime)
                        await trio.lowlevel.checkpoint()
            assert not guard.cancelled_caught, f"trial {trial}: a start() call never returned"
            assert len(results) == 3
            for result in results:
                if isinstance(result, RuntimeClosing):
                    continue
                assert isinstance(result, RunInfo)
                record = await store.get_run(result.run_id)
                assert record is not None, f"trial {trial}: start() returned a run never recorded"
                assert record.status is RunStatus.CANCELLED
                assert_complete_run(await stored_frames(store, result.run_id))


async def test_runtime_calls_after_the_runtime_closed_do_not_hang() -> None:
    """After the runtime's context is left, asking it about a finished run must answer (from the
    store) or raise -- the registry is gone, and no asker may wait forever for it."""
    async with open_store("memory") as store:
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 2))) as runtime:
            info = await runtime.start("chatty")
            frames = await follow_all(runtime, info.run_id)
        outcomes: list[str] = []
        for call in (lambda: runtime.follow(info.run_id), lambda: runtime.cancel(info.run_id)):
            with trio.move_on_after(2) as guard:
                try:
                    await call()
                    outcomes.append("answered")
                except Exception as error:
                    outcomes.append(type(error).__name__)
            if guard.cancelled_caught:
                outcomes.append("hung")
    assert len(frames) == 7
    assert "hung" not in outcomes, outcomes


# -- restart ------------------------------------------------------------------------------------


async def test_finished_runs_replay_byte_for_byte_after_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rt.db"
    reached = trio.Event()
    catalog = catalog_of(
        chatty_workflow("chatty", 6), failing_workflow("failing"), blocking_workflow("blocking", reached=reached)
    )
    async with open_store(f"sqlite:{path}") as store:
        async with open_runtime(store, catalog) as runtime:
            runs = [await runtime.start(w, message="m") for w in ("chatty", "failing", "blocking")]
            with trio.fail_after(10):
                await reached.wait()
                await runtime.cancel(runs[2].run_id)
                first = {info.run_id: await follow_all(runtime, info.run_id) for info in runs}
                await runtime._registry.wait_until_idle()
                first_records = {info.run_id: await runtime.get_run(info.run_id) for info in runs}
    async with open_store(f"sqlite:{path}") as store:
        async with open_runtime(store, catalog) as runtime:
            with trio.fail_after(10):
                second = {info.run_id: await follow_all(runtime, info.run_id, 2) for info in runs}
                second_records = {info.run_id: await runtime.get_run(info.run_id) for info in runs}
    assert second == first
    assert second_records == first_records
    assert [r.status for r in second_records.values()] == [RunStatus.COMPLETED, RunStatus.ERROR, RunStatus.CANCELLED]
    for frames in second.values():
        assert_complete_run(frames)


async def test_a_run_left_running_by_a_dead_process_is_closed_as_interrupted(tmp_path: Path) -> None:
    """A process died mid-run: CreateRun and some events are in the file, no FinishRun. The next
    open_runtime closes it with WorkflowError (reason "interrupted") at exactly the next index,
    status ERROR; followers replay up to it; finished runs and later reopenings are untouched."""
    path = tmp_path / "rt.db"
    info = RunInfo("dead-run", "chatty", "Chatty", "session-1", None, "hello")
    kinds_written = ["WorkflowStarted", "StepStarted", "StepProgress", "StepProgress"]
    written = [encode_event(info, i, kind, {"content": f"c{i}"}) for i, kind in enumerate(kinds_written)]
    async with open_store(f"sqlite:{path}") as store:
        await store.commit([CreateRun(RunRecord(info, RunStatus.RUNNING, time.time())), AppendEvents("dead-run", 0, written[:1])])
        await store.commit([AppendEvents("dead-run", 1, written[1:3])])
        await store.commit([AppendEvents("dead-run", 3, written[3:])])
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 2))) as runtime:
            survivor = await runtime.start("chatty")
            survivor_frames = await follow_all(runtime, survivor.run_id)
    async with open_store(f"sqlite:{path}") as store:
        assert await store.unfinished_runs() == []
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 2))) as runtime:
            with trio.fail_after(10):
                record = await runtime.get_run("dead-run")
                follow = await runtime.follow("dead-run", 2)
                frames: list[str] = []

                async def send(frame: str) -> None:
                    frames.append(frame)

                await follow.stream(send)
                survivor_again = await follow_all(runtime, survivor.run_id)
                errored = await runtime.list_runs(status=RunStatus.ERROR)
    async with open_store(f"sqlite:{path}") as store:
        async with open_runtime(store, catalog_of(chatty_workflow("chatty", 2))):
            pass
        history = await stored_frames(store, "dead-run")
    events = assert_complete_run(frames)
    assert frames[:4] == written
    assert events[-1]["event"] == "WorkflowError" and events[-1]["event_index"] == 4
    assert events[-1]["reason"] == "interrupted"
    assert (events[-1]["run_id"], events[-1]["session_id"], events[-1]["workflow_id"]) == ("dead-run", "session-1", "chatty")
    assert record.status is RunStatus.ERROR and record.event_count == 5
    assert follow.finished and follow.start == 0
    assert [r.info.run_id for r in errored] == ["dead-run"]
    assert survivor_again == survivor_frames and kinds(survivor_frames)[-1] == "WorkflowCompleted"
    assert history == frames  # closed once, not again at the next start


# -- a store several nodes share (a real redis-server) ---------------------------------------------


async def test_a_cancel_asked_while_the_owner_cannot_hear_still_cancels_its_run(
    redis_url: str,
) -> None:
    """Node two asks while node one's pub/sub connection is down (it reconnects after 50 ms at
    the soonest, and the ask takes well under that): the request reaches nobody live, and node
    one cancels the run once it hears again, from the run's record."""
    catalog = catalog_of(blocking_workflow("blocking"))
    async with (
        open_store(redis_url, node=NodeSettings("one", 2.0, 0.5)) as one_store,
        open_store(redis_url, node=NodeSettings("two", 2.0, 0.5)) as two_store,
        open_runtime(one_store, catalog) as one,
        open_runtime(two_store, catalog) as two,
    ):
        info = await one.start("blocking")
        await wait_published(one, info.run_id, 2)
        await kill_pubsub_connections(redis_url)
        outcome = await two.cancel(info.run_id, "asked while one could not hear")
        assert outcome.cancelling
        with trio.fail_after(10):
            frames = await follow_all(one, info.run_id)
    events = assert_complete_run(frames)
    assert [e["event"] for e in events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
    assert events[-2]["reason"] == "asked while one could not hear"

"""Following a run (actors/follow.py): every event of the subscription exactly once, in order,
whatever the timing (guarantee 2), slow followers falling back to history without blocking the
run or other followers, and rejoining after a crash of the run actor."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from actors import RunStatus, open_runtime, open_store
from actors.follow import PAGE
from tests.actors.helpers import (
    FaultyStore,
    appends_event,
    assert_complete_run,
    catalog_of,
    chatty_workflow,
    decode,
    follow_all,
    gated_workflow,
    indices,
    stored_frames,
    wait_published,
)

follower_plan = st.tuples(
    st.integers(0, 2),  # which run
    st.integers(0, 60),  # scheduler yields before subscribing
    st.floats(0, 1),  # start index, as a fraction of the events so far
    st.integers(0, 3),  # yields inside each send (a slow consumer)
    st.booleans(),  # takes the frames in batches (`stream_batches`) rather than one by one
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(3, 60), min_size=3, max_size=3),
    capacity=st.sampled_from([1, 2, 3, 1024]),
    plans=st.lists(follower_plan, min_size=1, max_size=8),
)
async def test_followers_subscribing_at_random_moments_get_each_event_exactly_once_in_order(
    sizes: list[int], capacity: int, plans: list[tuple[int, int, float, int, bool]]
) -> None:
    """Runs emit concurrently; each follower subscribes after a random number of scheduler turns
    from a random index within the run's current count, and consumes at its own pace. Each gets
    exactly the stored events from its start (0 if the run had finished) to the terminal one."""
    catalog = catalog_of(*(chatty_workflow(f"run{i}", events=n) for i, n in enumerate(sizes)))
    outcomes: list[tuple[str, int, int, bool, list[str]]] = []
    async with open_store("memory") as store:
        async with open_runtime(store, catalog, feed_capacity=capacity) as runtime:
            runs = [await runtime.start(f"run{i}") for i in range(3)]

            async def follower(
                run_no: int, pause: int, fraction: float, slowness: int, batched: bool
            ) -> None:
                run_id = runs[run_no].run_id
                for _ in range(pause):
                    await trio.sleep(0)
                count = (await runtime.get_run(run_id)).event_count
                wanted = int(fraction * count)
                follow = await runtime.follow(run_id, wanted)
                frames: list[str] = []

                async def send(frame: str) -> None:
                    for _ in range(slowness):
                        await trio.sleep(0)
                    frames.append(frame)

                async def send_batch(batch: Sequence[str]) -> None:
                    assert batch, "an empty batch"
                    for _ in range(slowness):
                        await trio.sleep(0)
                    frames.extend(batch)
                    if len(batch) > 1:
                        event("a batch of several frames")

                if batched:
                    await follow.stream_batches(send_batch)
                else:
                    await follow.stream(send)
                event("joined a running run at index > 0" if wanted and not follow.finished else "other")
                if follow.snapshot.feed is not None and follow.snapshot.feed.lagged:
                    event("fell behind and rejoined")
                outcomes.append((run_id, wanted, follow.start, follow.finished, frames))

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for plan in plans:
                        nursery.start_soon(follower, *plan)
                for info in runs:  # let every run finish before the runtime shuts down
                    await follow_all(runtime, info.run_id)
        histories = {info.run_id: await stored_frames(store, info.run_id) for info in runs}
    assert len(outcomes) == len(plans)
    for run_id, wanted, start, finished, frames in outcomes:
        assert start == (0 if finished else wanted)
        assert frames == histories[run_id][start:]
        assert_complete_run(frames, start)
    for info, size in zip(runs, sizes, strict=True):
        assert_complete_run(histories[info.run_id])
        assert len(histories[info.run_id]) == size + 5


async def test_a_slow_follower_does_not_block_the_run_or_a_fast_follower_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """feed_capacity=2; the slow follower is stuck in its first send until the fast follower has
    the terminal event: by then the run has finished (it was not blocked), the slow follower's
    feed was dropped, and it still gets every event exactly once from the history."""
    reached, gate = trio.Event(), trio.Event()
    catalog = catalog_of(gated_workflow("burst", gate, before=1, after=60, reached=reached))
    async with open_store(f"sqlite:{tmp_path / 'f.db'}") as store:
        async with open_runtime(store, catalog, feed_capacity=2) as runtime:
            info = await runtime.start("burst")
            with trio.fail_after(20):
                await reached.wait()
                slow = await runtime.follow(info.run_id)
                fast = await runtime.follow(info.run_id)
                fast_done = trio.Event()
                slow_frames: list[str] = []
                fast_frames: list[str] = []
                status_when_slow_resumed: list[RunStatus] = []

                async def slow_send(frame: str) -> None:
                    if not slow_frames:
                        await fast_done.wait()
                        status_when_slow_resumed.append((await runtime.get_run(info.run_id)).status)
                    slow_frames.append(frame)

                async def fast_send(frame: str) -> None:
                    fast_frames.append(frame)

                async def run_fast() -> None:
                    await fast.stream(fast_send)
                    fast_done.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(slow.stream, slow_send)
                    nursery.start_soon(run_fast)
                    gate.set()
        history = await stored_frames(store, info.run_id)
    assert status_when_slow_resumed == [RunStatus.COMPLETED]
    assert slow.snapshot.feed is not None and slow.snapshot.feed.lagged
    assert len(history) == 66
    assert fast_frames == history
    assert slow_frames == history
    assert_complete_run(slow_frames)


async def test_many_slow_followers_with_a_tiny_feed_each_get_everything_once() -> None:
    """Seeded random pauses for 12 followers over 3 runs with feed_capacity=1: every follower
    lags and rejoins repeatedly and still sees each event once, in order."""
    for seed in range(3):
        rng = random.Random(seed)
        catalog = catalog_of(chatty_workflow("chatty", events=80))
        results: list[tuple[str, list[str]]] = []
        async with open_store("memory") as store:
            async with open_runtime(store, catalog, feed_capacity=1) as runtime:
                runs = [await runtime.start("chatty") for _ in range(3)]
                with trio.fail_after(30):
                    async with trio.open_nursery() as nursery:
                        for i in range(12):
                            run_id = runs[i % 3].run_id
                            pauses = [rng.randint(0, 4) for _ in range(100)]

                            async def follower(run_id: str = run_id, pauses: list[int] = pauses) -> None:
                                frames: list[str] = []
                                follow = await runtime.follow(run_id)

                                async def send(frame: str) -> None:
                                    for _ in range(pauses[len(frames) % len(pauses)]):
                                        await trio.sleep(0)
                                    frames.append(frame)

                                await follow.stream(send)
                                results.append((run_id, frames))

                            nursery.start_soon(follower)
            histories = {info.run_id: await stored_frames(store, info.run_id) for info in runs}
        assert len(results) == 12
        for run_id, frames in results:
            assert frames == histories[run_id]
            assert_complete_run(frames)


async def test_a_follower_starting_at_the_current_count_gets_only_the_new_events() -> None:
    reached, gate = trio.Event(), trio.Event()
    catalog = catalog_of(gated_workflow("gated", gate, before=3, after=2, reached=reached))
    async with open_store("memory") as store:
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("gated")
            with trio.fail_after(10):
                await reached.wait()
                await wait_published(runtime, info.run_id, 5)  # started, step, 3 progress
                count = (await runtime.get_run(info.run_id)).event_count
                follow = await runtime.follow(info.run_id, count)
                assert not follow.finished and follow.missed == 0 and follow.run_id == info.run_id
                middle = await runtime.follow(info.run_id, 2)
                assert middle.missed == count - 2
                frames: list[str] = []

                async def send(frame: str) -> None:
                    frames.append(frame)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(follow.stream, send)
                    await trio.testing.wait_all_tasks_blocked()
                    gate.set()
                middle_frames = await follow_all(runtime, info.run_id, 2)
        history = await stored_frames(store, info.run_id)
    assert count == 5
    assert frames == history[5:]
    assert indices(frames) == list(range(5, 10))
    # the run finished meanwhile: a finished run replays in full
    assert middle_frames == history


async def test_a_finished_run_replays_from_the_store_across_several_pages() -> None:
    size = 2 * PAGE + 10
    catalog = catalog_of(chatty_workflow("long", events=size, yield_every=100))
    async with open_store("memory") as store:
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("long")
            with trio.fail_after(30):
                live = await follow_all(runtime, info.run_id)
                await runtime._registry.wait_until_idle()
                follow = await runtime.follow(info.run_id, 17)
                assert follow.finished and follow.start == 0 and follow.snapshot.frames is None
                replayed: list[str] = []

                async def send(frame: str) -> None:
                    replayed.append(frame)

                await follow.stream(send)
    assert len(live) == size + 5
    assert replayed == live
    assert_complete_run(replayed)


async def test_a_follower_gets_an_event_that_became_durable_but_was_never_published(
    tmp_path: Path,
) -> None:
    """The store made an event durable but raised (lost acknowledgement): the actor crashed before
    publishing it. A live follower sees the index jump, reads the missing event from the history,
    and still gets every event exactly once, ending with the crash error."""
    target: list[str] = []
    reached, gate = trio.Event(), trio.Event()
    catalog = catalog_of(gated_workflow("gated", gate, before=1, after=5, reached=reached))
    async with open_store(f"sqlite:{tmp_path / 'f.db'}") as inner:
        store = FaultyStore(
            inner, appends_event(lambda: target[0] if target else None, "StepProgress", nth=3), after=True
        )
        async with open_runtime(store, catalog) as runtime:
            info = await runtime.start("gated")
            target.append(info.run_id)
            with trio.fail_after(20):
                await reached.wait()
                follow = await runtime.follow(info.run_id)
                frames: list[str] = []

                async def send(frame: str) -> None:
                    frames.append(frame)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(follow.stream, send)
                    await trio.testing.wait_all_tasks_blocked()
                    gate.set()
        history = await stored_frames(inner, info.run_id)
    assert len(store.failed) == 1
    events = assert_complete_run(frames)
    assert frames == history
    lost = [json.loads(frame) for frame in store.failed_appends_of(info.run_id)[0].frames]
    for event in lost:  # durable though never published: the follower got them from the store
        assert events[event["event_index"]] == event
    assert [e["event"] for e in lost].count("StepProgress") >= 1
    if lost[-1]["event"] == "WorkflowCompleted":
        assert events[-1] == lost[-1]  # the durable terminal event is adopted, not doubled
    else:
        assert events[-1]["event_index"] == lost[-1]["event_index"] + 1
        assert events[-1]["reason"] == "crashed"

"""actors/timer.py: sleeps on the shared timer end no earlier than their deadline and at most a
grain after it (on an idle loop, here a mock clock), cancelled sleepers leave at once and are
never woken again, a stopping timer leaves its sleepers to finish on trio's own deadlines, and
run bodies under `open_runtime` sleep on the runtime's timer."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing
from trio.lowlevel import Task, add_instrument, current_task, remove_instrument
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import RunInfo, open_runtime, open_store, sleep
from actors.events import STEP_PROGRESS
from actors.timer import GRAIN, Timer, current_timer, installed
from actors.workflows.catalog import Emit, WorkflowCatalog
from tests.actors.helpers import follow_all, kinds

sleeps = st.lists(
    st.tuples(
        st.floats(0, 5),  # when the sleeper starts
        st.floats(0, 5),  # how long it sleeps
        st.one_of(st.none(), st.floats(0, 6)),  # when it is cancelled, if ever
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=sleeps)
def test_each_sleep_ends_within_a_grain_after_its_deadline_or_when_cancelled(
    plan: list[tuple[float, float, float | None]],
) -> None:
    outcomes: list[tuple[float, float, float | None, float, bool]] = []

    async def main() -> None:
        timer = Timer()

        async def sleeper(start: float, seconds: float, cancel_at: float | None) -> None:
            await trio.sleep_until(start)
            with trio.CancelScope(deadline=math.inf if cancel_at is None else cancel_at) as scope:
                await timer.sleep(seconds)
            outcomes.append((start, seconds, cancel_at, trio.current_time(), scope.cancelled_caught))

        async with trio.open_nursery() as nursery:
            await nursery.start(timer.run)
            async with trio.open_nursery() as sleepers:
                for start, seconds, cancel_at in plan:
                    sleepers.start_soon(sleeper, start, seconds, cancel_at)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(outcomes) == len(plan)
    for start, seconds, cancel_at, ended, cancelled in outcomes:
        deadline = start + seconds
        if cancelled:
            assert cancel_at is not None and ended == pytest.approx(max(cancel_at, start))
            assert ended <= deadline + GRAIN
        elif seconds == 0:
            assert ended == pytest.approx(start)
        else:
            assert deadline <= ended <= deadline + GRAIN + 1e-9
            assert cancel_at is None or cancel_at >= deadline


class Wakeups(trio.abc.Instrument):
    """When `task` was scheduled to run again after it blocked."""

    def __init__(self) -> None:
        self.task: Task | None = None
        self.times: list[float] = []

    def task_scheduled(self, task: Task) -> None:
        if task is self.task:
            self.times.append(trio.current_time())


async def test_a_stopping_timer_leaves_its_sleepers_to_sleep_until_their_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The timer held the sleep: its stop (at 1) wakes the sleeper, which sleeps on to 10."""
    timer = Timer()
    ended: list[float] = []
    wakeups = Wakeups()

    async def sleeper() -> None:
        wakeups.task = current_task()
        await timer.sleep(10)
        ended.append(trio.current_time())

    add_instrument(wakeups)
    try:
        async with trio.open_nursery() as sleepers:
            async with trio.open_nursery() as nursery:
                await nursery.start(timer.run)
                sleepers.start_soon(sleeper)
                await trio.sleep(1)
                nursery.cancel_scope.cancel()
            assert not timer.running
    finally:
        remove_instrument(wakeups)
    assert wakeups.times == [pytest.approx(1), pytest.approx(10)]
    assert ended == [pytest.approx(10)]


async def test_sleep_is_trios_sleep_when_no_timer_runs(autojump_clock: trio.testing.MockClock) -> None:
    timer = Timer()
    with installed(timer):  # installed, but its task never started
        with trio.fail_after(10):  # a sleeper left to this timer would never be woken
            await sleep(3)
    assert trio.current_time() == pytest.approx(3)
    with pytest.raises(ValueError):
        await sleep(-1)
    async with trio.open_nursery() as nursery:  # started now, the timer wakes no one early
        await nursery.start(timer.run)
        with installed(timer):
            await sleep(1)
        assert 4 <= trio.current_time() <= 4 + GRAIN + 1e-9
        nursery.cancel_scope.cancel()


async def test_run_bodies_sleep_on_the_runtimes_timer(autojump_clock: trio.testing.MockClock) -> None:
    """On the mock clock a sleep the timer holds ends a grain after its deadline (trio's own
    ends at the deadline): the timer wakes sleepers a grain after the earliest is due."""
    seen: list[tuple[bool, float]] = []

    class Sleepy:
        id = "sleepy"
        name = "Sleepy"
        description = "sleeps, and notes whether the runtime's timer held the sleep"

        async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
            timer = current_timer()
            assert timer is not None
            began = trio.current_time()
            await sleep(5)
            seen.append((timer.running, trio.current_time() - began))
            await emit(STEP_PROGRESS, {"step_name": "slept", "step_index": 0})
            return {"content": "done"}

    catalog = WorkflowCatalog()
    catalog.add(Sleepy())
    async with open_store("memory") as store, open_runtime(store, catalog) as runtime:
        assert current_timer() is None  # installed for the runtime's tasks, not for its caller
        info = await runtime.start("sleepy")
        frames = await follow_all(runtime, info.run_id)
    assert kinds(frames)[-2:] == [STEP_PROGRESS, "WorkflowCompleted"]
    assert seen == [(True, pytest.approx(5 + GRAIN))]
    assert trio.current_time() >= 5

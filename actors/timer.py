"""`sleep` for workflow bodies: many sleeping runs for the cost of a few trio deadlines.

`trio.sleep` gives every sleep a cancel scope with a deadline and ends it by cancelling that
scope, so each wake-up raises a `Cancelled` through the sleeper's frames and catches it again.
That costs about 60-100 us of CPU per sleep. Runs that tick every few seconds pay it on every
event: it was a fifth of the server's CPU under `reconnect-storm`. 6,000 tasks sleeping 2 s at a
time, staggered, took 31% of a core.

A `Timer` keeps the sleepers in one heap. A sleeping task parks (`wait_task_rescheduled`), and one
timer task wakes `GRAIN` after the earliest deadline and reschedules every sleeper due by then.
The same 6,000 sleepers take 10-12% of a core. A sleep never ends before its deadline, and on an
idle loop it ends at most `GRAIN` after it. A cancelled sleeper leaves at once, as from
`trio.sleep`; its heap entry stays until its deadline passes.

`open_runtime` runs a timer and installs it for every task it starts, run bodies included.
`sleep` uses the timer of the runtime it runs under, and is `trio.sleep` anywhere else. When a
timer stops, the tasks still sleeping on it finish their sleeps with `trio.sleep_until`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

GRAIN = 0.002  # how late a sleep may end, so that one wake-up serves the sleepers due together

_current: ContextVar[Timer | None] = ContextVar("runcast_timer", default=None)


def current_timer() -> Timer | None:
    """The timer `sleep` uses in this task, if any."""
    return _current.get()


async def sleep(seconds: float) -> None:
    """`trio.sleep(seconds)`, on the timer of the runtime this task runs under, if any."""
    timer = _current.get()
    if timer is None:
        await trio.sleep(seconds)
    else:
        await timer.sleep(seconds)


@contextmanager
def installed(timer: Timer) -> Iterator[None]:
    """Within this block, and in every task started from it, `sleep` uses `timer`."""
    token = _current.set(timer)
    try:
        yield
    finally:
        _current.reset(token)


# A heap entry is a list `[deadline, sequence, task]`: lists compare natively, element by element,
# and the unique `sequence` (ties on the deadline wake in the order they went to sleep) keeps the
# task out of every comparison. An attrs class with `order=True` compares through Python-level
# tuples: with 10,000 sleepers its comparisons cost more than the rest of a run's event.
# A cancelled sleeper's task is set to None.
_Sleeper = list[Any]
_DEADLINE, _TASK = 0, 2


class Timer:
    def __init__(self, grain: float = GRAIN) -> None:
        self.grain = grain
        self.running = False
        self._sleepers: list[_Sleeper] = []
        self._sequence = itertools.count()
        self._wake_at = math.inf
        self._earlier = trio.Event()  # a sleeper is due before `_wake_at`

    async def sleep(self, seconds: float) -> None:
        """As `trio.sleep`, the same errors included."""
        if not self.running or not seconds > 0 or not math.isfinite(seconds):
            await trio.sleep(seconds)
            return
        deadline = trio.current_time() + seconds
        sleeper: _Sleeper = [deadline, next(self._sequence), current_task()]
        heapq.heappush(self._sleepers, sleeper)
        if deadline + self.grain < self._wake_at:
            self._earlier.set()

        def abort(_: object) -> Abort:
            sleeper[_TASK] = None
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)
        if not self.running:  # woken because the timer stopped: finish the sleep without it
            await trio.sleep_until(deadline)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Wake sleepers until cancelled."""
        self.running = True
        task_status.started()
        try:
            while True:
                self._wake_due(trio.current_time())
                self._earlier = trio.Event()
                self._wake_at = self._sleepers[0][_DEADLINE] + self.grain if self._sleepers else math.inf
                with trio.move_on_at(self._wake_at):
                    await self._earlier.wait()
        finally:
            self.running = False
            self._wake_due(math.inf)

    def _wake_due(self, now: float) -> None:
        sleepers = self._sleepers
        while sleepers and sleepers[0][_DEADLINE] <= now:
            task = heapq.heappop(sleepers)[_TASK]
            if task is not None:
                reschedule(task)

"""Supervision: OTP-style restart policy and crash isolation for the runtime's actors.

A `Supervisor` runs each child in a nursery it owns. When a child raises, the supervisor logs it
and, by the child's `Restart` kind, starts its `recover` incarnation or gives it up; a crash never
reaches the supervisor's nursery, so siblings are not disturbed (one_for_one).

Where this differs from OTP, on purpose: restart intensity is counted per child, not per
supervisor. Runs are children too, and a burst of crashing runs must never take down the registry
or the server (guarantee 4); with per-child counting a child that keeps crashing is given up alone.
Cancellation is never treated as a crash: it always propagates.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import attrs
import trio

log = logging.getLogger(__name__)


class Restart(enum.Enum):
    PERMANENT = "permanent"  # restarted whenever it stops, even normally
    TRANSIENT = "transient"  # restarted only after a crash
    TEMPORARY = "temporary"  # never restarted


@attrs.frozen
class ChildSpec:
    """How to run one child. `recover(error)` is the incarnation started after a crash; it defaults
    to starting afresh. `give_up(error)` is awaited once when the child is given up, for a last
    clean-up (its own failure is logged). `on_exit(error)` runs once when the child is done for good: `None` after a
    normal end, the last error when it was given up."""

    name: str
    start: Callable[[], Awaitable[None]]
    restart: Restart = Restart.TRANSIENT
    recover: Callable[[Exception], Awaitable[None]] | None = None
    give_up: Callable[[Exception], Awaitable[None]] | None = None
    on_exit: Callable[[Exception | None], None] | None = None


@attrs.define
class RestartBudget:
    """At most `intensity` restarts within any `period` seconds (OTP's MaxR / MaxT)."""

    intensity: int
    period: float
    _times: deque[float] = attrs.field(factory=deque)

    def allow(self, now: float) -> bool:
        while self._times and now - self._times[0] > self.period:
            self._times.popleft()
        if len(self._times) >= self.intensity:
            return False
        self._times.append(now)
        return True


class Supervisor:
    """one_for_one supervision of children started with `start_child`."""

    def __init__(self, nursery: trio.Nursery, *, intensity: int = 3, period: float = 5.0) -> None:
        self._nursery = nursery
        self.intensity = intensity
        self.period = period
        self.crashes = 0

    def start_child(self, spec: ChildSpec) -> None:
        self._nursery.start_soon(self._supervise, spec, name=spec.name)

    async def _supervise(self, spec: ChildSpec) -> None:
        budget = RestartBudget(self.intensity, self.period)
        incarnation: Callable[[], Awaitable[None]] = spec.start
        while True:
            try:
                await incarnation()
            except Exception as raised:
                error = root_cause(raised)
                self.crashes += 1
                if spec.restart is Restart.TEMPORARY or not budget.allow(trio.current_time()):
                    log.error("child %s crashed; giving it up", spec.name, exc_info=error)
                    await _give_up(spec, error)
                    _notify_exit(spec, error)
                    return
                log.error("child %s crashed; restarting it", spec.name, exc_info=error)
                incarnation = _recovery(spec, error)
                continue
            if spec.restart is Restart.PERMANENT:
                if not budget.allow(trio.current_time()):
                    log.error("child %s keeps ending; giving it up", spec.name)
                    _notify_exit(spec, None)
                    return
                incarnation = spec.start
                continue
            _notify_exit(spec, None)
            return


def root_cause(error: Exception) -> Exception:
    """A crash inside an actor's nursery arrives wrapped in exception groups: unwrap the ones
    holding a single error, so logs and recovery see what actually went wrong."""
    while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _recovery(spec: ChildSpec, error: Exception) -> Callable[[], Awaitable[None]]:
    recover = spec.recover
    if recover is None:
        return spec.start

    async def incarnation() -> None:
        await recover(error)

    return incarnation


async def _give_up(spec: ChildSpec, error: Exception) -> None:
    if spec.give_up is None:
        return
    try:
        await spec.give_up(error)
    except Exception:
        log.exception("giving up child %s failed", spec.name)


def _notify_exit(spec: ChildSpec, error: Exception | None) -> None:
    if spec.on_exit is not None:
        spec.on_exit(error)

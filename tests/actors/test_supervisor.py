"""actors/supervisor.py: restart kinds, per-child restart intensity/period, crash isolation
(guarantee 4), and cancellation never mistaken for a crash. Period logic runs on trio's MockClock
(`autojump_clock`): sleeps advance virtual time only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import pytest
import trio
import trio.testing

from actors.supervisor import ChildSpec, Restart, RestartBudget, Supervisor, root_cause


@attrs.define
class Recorder:
    """What a child's hooks saw: starts, recoveries (with their error) and exits."""

    starts: int = 0
    recovered: list[Exception] = attrs.field(factory=list)
    exits: list[Exception | None] = attrs.field(factory=list)
    exited: trio.Event = attrs.field(factory=trio.Event)

    def on_exit(self, error: Exception | None) -> None:
        self.exits.append(error)
        self.exited.set()


class Crash(Exception):
    pass


# --- root_cause --------------------------------------------------------------------------------


def test_root_cause_unwraps_nested_single_error_groups() -> None:
    error = Crash("inner")
    wrapped = ExceptionGroup("outer", [ExceptionGroup("middle", [error])])
    assert root_cause(wrapped) is error


def test_root_cause_keeps_groups_of_several_errors_and_plain_errors() -> None:
    several = ExceptionGroup("two", [Crash("a"), Crash("b")])
    assert root_cause(several) is several
    inner_several = ExceptionGroup("outer", [several])
    assert root_cause(inner_several) is several
    plain = Crash("plain")
    assert root_cause(plain) is plain


# --- RestartBudget -----------------------------------------------------------------------------


def test_restart_budget_allows_intensity_restarts_within_period() -> None:
    budget = RestartBudget(intensity=2, period=10.0)
    assert budget.allow(0.0)
    assert budget.allow(1.0)
    assert not budget.allow(5.0)  # a third within 10 s
    assert budget.allow(10.5)  # t=0 has left the window
    assert not budget.allow(10.9)


def test_restart_budget_of_zero_allows_nothing() -> None:
    assert not RestartBudget(intensity=0, period=1.0).allow(0.0)


# --- restart kinds -----------------------------------------------------------------------------


async def test_transient_child_is_restarted_via_recover_after_a_crash() -> None:
    rec = Recorder()
    first = Crash("first")

    async def start() -> None:
        rec.starts += 1
        raise first

    async def recover(error: Exception) -> None:
        rec.recovered.append(error)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery)
            supervisor.start_child(
                ChildSpec("t", start, Restart.TRANSIENT, recover=recover, on_exit=rec.on_exit)
            )
    assert rec.starts == 1
    assert rec.recovered == [first]
    assert rec.exits == [None]  # the recovered incarnation ended normally: done for good
    assert supervisor.crashes == 1


async def test_transient_child_is_not_restarted_after_a_normal_end() -> None:
    rec = Recorder()

    async def start() -> None:
        rec.starts += 1
        await trio.lowlevel.checkpoint()

    async def recover(error: Exception) -> None:
        rec.recovered.append(error)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery)
            supervisor.start_child(
                ChildSpec("t", start, Restart.TRANSIENT, recover=recover, on_exit=rec.on_exit)
            )
    assert (rec.starts, rec.recovered, rec.exits, supervisor.crashes) == (1, [], [None], 0)


async def test_without_recover_a_crashed_child_starts_afresh() -> None:
    rec = Recorder()

    async def start() -> None:
        rec.starts += 1
        if rec.starts == 1:
            raise Crash("once")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            Supervisor(nursery).start_child(ChildSpec("t", start, on_exit=rec.on_exit))
    assert rec.starts == 2
    assert rec.exits == [None]


async def test_permanent_child_is_restarted_after_a_normal_end() -> None:
    rec = Recorder()
    third_start = trio.Event()

    async def start() -> None:
        rec.starts += 1
        if rec.starts == 3:
            third_start.set()
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            Supervisor(nursery).start_child(
                ChildSpec("p", start, Restart.PERMANENT, on_exit=rec.on_exit)
            )
            await third_start.wait()
            nursery.cancel_scope.cancel()
    assert rec.starts == 3
    assert rec.exits == []  # cancelled, never "done"


async def test_permanent_child_is_restarted_via_recover_after_a_crash() -> None:
    rec = Recorder()
    recovering = trio.Event()

    async def start() -> None:
        rec.starts += 1
        raise Crash("permanent crash")

    async def recover(error: Exception) -> None:
        rec.recovered.append(error)
        recovering.set()
        await trio.sleep_forever()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            Supervisor(nursery).start_child(
                ChildSpec("p", start, Restart.PERMANENT, recover=recover, on_exit=rec.on_exit)
            )
            await recovering.wait()
            nursery.cancel_scope.cancel()
    assert rec.starts == 1
    assert [str(e) for e in rec.recovered] == ["permanent crash"]
    assert rec.exits == []


async def test_temporary_child_is_never_restarted() -> None:
    crashed, ended = Recorder(), Recorder()
    error = Crash("temporary")

    async def crash() -> None:
        crashed.starts += 1
        raise error

    async def end() -> None:
        ended.starts += 1

    async def recover(_: Exception) -> None:
        crashed.recovered.append(_)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery, intensity=10)
            supervisor.start_child(
                ChildSpec("c", crash, Restart.TEMPORARY, recover=recover, on_exit=crashed.on_exit)
            )
            supervisor.start_child(ChildSpec("e", end, Restart.TEMPORARY, on_exit=ended.on_exit))
    assert (crashed.starts, crashed.recovered, crashed.exits) == (1, [], [error])
    assert (ended.starts, ended.exits) == (1, [None])


# --- intensity / period ------------------------------------------------------------------------


def crash_loop(rec: Recorder, delays: list[float]) -> tuple[
    Callable[[], Awaitable[None]], Callable[[Exception], Awaitable[None]]
]:
    """A child whose n-th incarnation sleeps `delays[n]` then crashes with `Crash(n)`; once the
    delays are used up an incarnation ends normally."""

    async def incarnation() -> None:
        n = rec.starts + len(rec.recovered) - 1  # 0-based number of this incarnation
        if n >= len(delays):
            return
        await trio.sleep(delays[n])
        raise Crash(n)

    async def start() -> None:
        rec.starts += 1
        await incarnation()

    async def recover(error: Exception) -> None:
        rec.recovered.append(error)
        await incarnation()

    return start, recover


async def test_child_crashing_more_than_intensity_times_in_period_is_given_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """intensity=3: the first crash and three restarts' crashes use the budget; the fourth crash
    gives the child up and on_exit gets that last error."""
    rec = Recorder()
    start, recover = crash_loop(rec, [0.1] * 100)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery, intensity=3, period=5.0)
            supervisor.start_child(ChildSpec("loop", start, recover=recover, on_exit=rec.on_exit))
    assert rec.starts == 1
    assert [str(e) for e in rec.recovered] == ["0", "1", "2"]  # each recover gets the last crash
    assert [str(e) for e in rec.exits] == ["3"]  # given up with the 4th incarnation's error
    assert isinstance(rec.exits[0], Crash)
    assert supervisor.crashes == 4


async def test_crashes_spread_beyond_the_period_are_always_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec = Recorder()
    start, recover = crash_loop(rec, [6.0] * 12)  # one crash per 6 s, period 5 s
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery, intensity=1, period=5.0)
            supervisor.start_child(ChildSpec("slow", start, recover=recover, on_exit=rec.on_exit))
    assert len(rec.recovered) == 12
    assert rec.exits == [None]  # the 13th incarnation ended normally
    assert supervisor.crashes == 12


async def test_budget_window_slides(autojump_clock: trio.testing.MockClock) -> None:
    """intensity=2, period=10: crashes at t=0, 1, 5 give up; at t=0, 1, 11.5 do not."""
    given_up, kept = Recorder(), Recorder()
    start_a, recover_a = crash_loop(given_up, [0.0, 1.0, 4.0, 0.0])
    start_b, recover_b = crash_loop(kept, [0.0, 1.0, 10.5])
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery, intensity=2, period=10.0)
            supervisor.start_child(
                ChildSpec("a", start_a, recover=recover_a, on_exit=given_up.on_exit)
            )
            supervisor.start_child(
                ChildSpec("b", start_b, recover=recover_b, on_exit=kept.on_exit)
            )
    assert [str(e) for e in given_up.exits] == ["2"]
    assert len(given_up.recovered) == 2
    assert kept.exits == [None]
    assert len(kept.recovered) == 3


async def test_restart_intensity_is_counted_per_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three children each crashing 3 times with intensity=3 are all restarted: budgets are not
    shared, so a burst of crashing runs never adds up to giving up a healthy sibling."""
    recs = [Recorder() for _ in range(3)]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery, intensity=3, period=5.0)
            for i, rec in enumerate(recs):
                start, recover = crash_loop(rec, [0.0, 0.0, 0.0])
                supervisor.start_child(
                    ChildSpec(f"c{i}", start, recover=recover, on_exit=rec.on_exit)
                )
    for rec in recs:
        assert rec.exits == [None]
        assert len(rec.recovered) == 3
    assert supervisor.crashes == 9


async def test_a_sibling_keeps_running_undisturbed_while_another_child_is_given_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """one_for_one: the crash loop and the giving up never cancel or restart the sibling, and
    never reach the supervisor's nursery."""
    crashing, sibling = Recorder(), Recorder()
    start, recover = crash_loop(crashing, [0.5] * 100)
    ticks: list[float] = []
    stop_sibling = trio.Event()

    async def sibling_start() -> None:
        sibling.starts += 1
        while not stop_sibling.is_set():
            ticks.append(trio.current_time())
            with trio.move_on_after(0.25):
                await stop_sibling.wait()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery, intensity=3, period=5.0)
            supervisor.start_child(ChildSpec("sibling", sibling_start, on_exit=sibling.on_exit))
            supervisor.start_child(
                ChildSpec("crashing", start, recover=recover, on_exit=crashing.on_exit)
            )
            await crashing.exited.wait()
            ticks_when_given_up = len(ticks)
            await trio.sleep(1.0)
            assert len(ticks) > ticks_when_given_up  # still working after the crash loop
            assert sibling.exits == []
            stop_sibling.set()
            await sibling.exited.wait()
    assert isinstance(crashing.exits[0], Crash)
    assert sibling.starts == 1
    assert sibling.recovered == []
    assert sibling.exits == [None]


async def test_permanent_child_ending_normally_in_a_loop_is_bounded_by_the_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """RestartBudget: "at most `intensity` restarts within any `period`" (OTP MaxR/MaxT counts
    every restart, including a permanent child's after a normal exit). A permanent child that
    keeps returning at once must be given up, not restarted in a busy loop forever."""
    rec = Recorder()
    runaway = trio.Event()

    async def start() -> None:
        rec.starts += 1
        if rec.starts > 3 + 1:
            runaway.set()  # more restarts than the budget allows
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            Supervisor(nursery, intensity=3, period=5.0).start_child(
                ChildSpec("p", start, Restart.PERMANENT, on_exit=rec.on_exit)
            )
            async with trio.open_nursery() as waiters:

                async def wait_for(event: trio.Event) -> None:
                    await event.wait()
                    waiters.cancel_scope.cancel()

                waiters.start_soon(wait_for, runaway)
                waiters.start_soon(wait_for, rec.exited)
            nursery.cancel_scope.cancel()
    assert not runaway.is_set(), f"restarted {rec.starts - 1} times within the period"
    assert rec.starts == 4
    assert len(rec.exits) == 1


# --- crash isolation and cancellation ----------------------------------------------------------


async def test_error_raised_inside_a_childs_nursery_reaches_recover_unwrapped() -> None:
    rec = Recorder()

    async def failing_task() -> None:
        raise Crash("deep")

    async def start() -> None:
        rec.starts += 1
        async with trio.open_nursery() as inner:
            inner.start_soon(failing_task)

    async def recover(error: Exception) -> None:
        rec.recovered.append(error)
        async with trio.open_nursery() as inner:
            inner.start_soon(failing_task)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            Supervisor(nursery, intensity=1).start_child(
                ChildSpec("n", start, recover=recover, on_exit=rec.on_exit)
            )
    assert [type(e) for e in rec.recovered] == [Crash]
    assert [type(e) for e in rec.exits] == [Crash]
    assert str(rec.exits[0]) == "deep"


async def test_cancellation_is_never_treated_as_a_crash() -> None:
    """Cancelling the supervisor's nursery stops every child without a restart, a recover call or
    an on_exit, and the crash count stays 0."""
    recs = {kind: Recorder() for kind in Restart}
    all_started = trio.Event()

    def make(rec: Recorder) -> tuple[
        Callable[[], Awaitable[None]], Callable[[Exception], Awaitable[None]]
    ]:
        async def start() -> None:
            rec.starts += 1
            if all(r.starts for r in recs.values()):
                all_started.set()
            await trio.sleep_forever()

        async def recover(error: Exception) -> None:
            rec.recovered.append(error)

        return start, recover

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery)
            for kind, rec in recs.items():
                start, recover = make(rec)
                supervisor.start_child(
                    ChildSpec(kind.value, start, kind, recover=recover, on_exit=rec.on_exit)
                )
            await all_started.wait()
            nursery.cancel_scope.cancel()
    for rec in recs.values():
        assert (rec.starts, rec.recovered, rec.exits) == (1, [], [])
    assert supervisor.crashes == 0


async def test_a_child_cancelling_itself_is_not_a_crash() -> None:
    """A child whose own cancel scope fires (a deadline inside the child) and which then ends
    normally is a normal end, not a crash."""
    rec = Recorder()

    async def start() -> None:
        rec.starts += 1
        with trio.move_on_after(0):
            await trio.sleep_forever()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery)
            supervisor.start_child(ChildSpec("self", start, on_exit=rec.on_exit))
    assert (rec.starts, rec.exits, supervisor.crashes) == (1, [None], 0)


async def test_base_exceptions_other_than_errors_propagate() -> None:
    """Only Exceptions are crashes: a KeyboardInterrupt-like BaseException is not swallowed."""
    rec = Recorder()

    class Stop(BaseException):
        pass

    async def start() -> None:
        rec.starts += 1
        raise Stop

    with pytest.RaisesGroup(Stop):
        async with trio.open_nursery() as nursery:
            Supervisor(nursery).start_child(ChildSpec("b", start, on_exit=rec.on_exit))
    assert (rec.starts, rec.exits) == (1, [])


# --- give_up -----------------------------------------------------------------------------------


async def test_give_up_is_awaited_once_with_the_last_error_before_on_exit() -> None:
    order: list[str] = []
    rec = Recorder()
    errors: list[Exception] = []

    async def start() -> None:
        rec.starts += 1
        raise Crash(f"crash {rec.starts}")

    async def give_up(error: Exception) -> None:
        await trio.lowlevel.checkpoint()
        errors.append(error)
        order.append("give_up")

    def on_exit(error: Exception | None) -> None:
        order.append("on_exit")
        rec.on_exit(error)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            Supervisor(nursery, intensity=1).start_child(
                ChildSpec("g", start, give_up=give_up, on_exit=on_exit)
            )
    assert rec.starts == 2
    assert [str(e) for e in errors] == ["crash 2"]
    assert rec.exits == errors
    assert order == ["give_up", "on_exit"]


async def test_give_up_is_not_called_after_a_normal_end_and_its_failure_is_contained() -> None:
    calls: list[str] = []
    rec_ok, rec_bad = Recorder(), Recorder()

    async def ends() -> None:
        await trio.lowlevel.checkpoint()

    async def crashes() -> None:
        raise Crash("once")

    async def give_up(error: Exception) -> None:
        calls.append(str(error))
        raise RuntimeError("clean-up failed too")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(nursery)
            supervisor.start_child(ChildSpec("ok", ends, give_up=give_up, on_exit=rec_ok.on_exit))
            supervisor.start_child(
                ChildSpec(
                    "bad", crashes, Restart.TEMPORARY, give_up=give_up, on_exit=rec_bad.on_exit
                )
            )
    assert calls == ["once"]
    assert rec_ok.exits == [None]
    assert [str(e) for e in rec_bad.exits] == ["once"]  # on_exit still runs

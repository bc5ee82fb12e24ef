"""actors/runlog.py, alone and without I/O: a hypothesis state machine drives a `RunLog` through
random appends, takes, commits that land or fail, crashes and adoptions, and subscriptions with
feeds of random sizes, against a plain model of what the store holds. After every step:

- the history is the store's events 0..n-1, with no gap and nothing twice;
- every subscriber got the events from its start index exactly once, in order, as far as its
  feed was not dropped (a dropped feed's follower reads the rest from the history);
- the terminal event is the last, and nothing follows it;
- a log refuses what its state does not allow, and a crashed incarnation's queue never reaches
  the store.
"""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors.events import RunInfo, RunStatus
from actors.runlog import (
    TRANSITIONS,
    IndexBeyondRun,
    RunLog,
    RunLogError,
    RunLost,
    RunState,
    Step,
)
from actors.stats import RuntimeStats
from actors.store.base import (
    AppendEvents,
    ClaimRun,
    CreateRun,
    FinishRun,
    RunRecord,
    StorageFailed,
    StoreError,
    Write,
)
from actors.store.fence import check

INFO = RunInfo("r", "wf", "Workflow", "s", None, "")


def frame(index: int, terminal: bool = False) -> str:
    return json.dumps({"event_index": index, "terminal": terminal})


def index_of(text: str) -> int:
    return int(json.loads(text)["event_index"])


@attrs.define(eq=False)
class ListSubscriber:
    """A subscriber holding at most `capacity` frames, as `actors.feed.Feed` does; it records
    what it was pushed, and drops out (returns False) when a batch does not fit or ends the
    run."""

    start: int
    capacity: int
    got: list[str] = attrs.field(factory=list)
    dropped: bool = False
    ended: bool = False
    failure: Exception | None = None

    def push(self, first: int, frames: list[str], *, last: bool = False) -> bool:
        if len(self.got) + len(frames) > self.capacity:
            self.dropped = True
            return False
        self.got += frames
        if last:
            self.ended = True
            return False
        return True

    def close(self, failure: Exception | None = None) -> None:
        self.dropped = True
        self.failure = failure


@attrs.define
class StoreModel:
    """What a store holds of the run, applied through the fence as a real store applies it."""

    record: RunRecord | None = None
    events: list[str] = attrs.field(factory=list)

    def commit(self, writes: list[Write]) -> None:
        records = check(writes, lambda run_id: self.record)  # raises WriteRefused
        for write in writes:
            if isinstance(write, AppendEvents):
                self.events += write.frames
        self.record = records["r"]


class RunLogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.failures: list[StoreError] = []
        self.log = RunLog(INFO, 1.0, RuntimeStats(), self.failures.append)
        self.store = StoreModel()
        self.taken: list[Write] = []
        self.subscribers: list[tuple[ListSubscriber, list[str]]] = []  # and its backlog

    # -- the run's side ------------------------------------------------------------------------

    @rule()
    def append(self) -> None:
        if self.log.state is not RunState.OPEN:
            with pytest.raises((RunLogError, StoreError)):
                self.log.append(frame(self.log.next_index))
            return
        self.log.append(frame(self.log.next_index))

    @precondition(lambda self: self.log.state is RunState.OPEN)
    @rule()
    def end(self) -> None:
        self.log.end(frame(self.log.next_index, terminal=True), RunStatus.COMPLETED, 2.0)

    @rule()
    def crash(self) -> None:
        """The actor crashed, perhaps with writes in flight: its queue goes."""
        queued_before = list(self.log.queued)
        self.log.crashed()
        if self.log.state is not RunState.FINISHED:
            assert self.log.queued == [] and self.log.take() == []
            assert not set(queued_before) & set(self.store.events)

    @precondition(lambda self: self.log.state is RunState.BROKEN and not self.taken)
    @rule()
    def adopt(self) -> None:
        """The recovery adopts what the store holds, as `RunActor._close_from_store` does."""
        self.log.adopt(self.store.record, list(self.store.events))
        assert self.log.history == self.store.events

    # -- the publisher's side ------------------------------------------------------------------

    @precondition(lambda self: not self.taken)
    @rule()
    def take(self) -> None:
        self.taken = self.log.take()
        if self.log.state is RunState.BROKEN:
            assert self.taken == []

    @precondition(lambda self: bool(self.taken))
    @rule(lands=st.booleans())
    def commit(self, lands: bool) -> None:
        writes, self.taken = self.taken, []
        if lands:
            self.store.commit(writes)
            self.log.committed()
        else:
            self.log.failed(StorageFailed("disk full"))
            assert self.log.state is RunState.BROKEN and self.failures

    # -- subscribers ---------------------------------------------------------------------------

    @rule(back=st.integers(0, 5), capacity=st.integers(1, 8))
    def subscribe(self, back: int, capacity: int) -> None:
        start = max(len(self.log.history) - back, 0)
        subscriber = ListSubscriber(start, capacity)
        try:
            found = self.log.subscribe(start, subscriber)
        except RunLost:
            assert self.log.lost is not None
            return
        if not found.live:
            assert self.log.status.finished and found.first == 0
            assert list(found.frames) == self.log.history
            return
        self.subscribers.append((subscriber, list(found.frames)))

    @rule()
    def subscribe_beyond_the_end(self) -> None:
        if self.log.status.finished or self.log.lost is not None:
            return
        with pytest.raises(IndexBeyondRun):
            self.log.subscribe(len(self.log.history) + 1, ListSubscriber(0, 1))

    @invariant()
    def history_is_the_stores_events_without_gap(self) -> None:
        history = self.log.history
        assert [index_of(f) for f in history] == list(range(len(history)))
        assert history == self.store.events[: len(history)]
        assert len(self.store.events) - len(history) <= sum(
            len(w.frames) for w in self.taken if isinstance(w, AppendEvents)
        )

    @invariant()
    def every_subscriber_got_each_event_once_in_order(self) -> None:
        for subscriber, backlog in self.subscribers:
            seen = backlog + subscriber.got
            assert [index_of(f) for f in seen] == list(
                range(subscriber.start, subscriber.start + len(seen))
            )
            if not subscriber.dropped and not subscriber.ended:
                assert len(seen) == len(self.log.history) - subscriber.start

    @invariant()
    def the_terminal_event_is_last(self) -> None:
        terminal = [i for i, f in enumerate(self.log.history) if json.loads(f)["terminal"]]
        assert terminal in ([], [len(self.log.history) - 1])
        assert (terminal != []) == (self.log.state is RunState.FINISHED)


TestRunLog = RunLogMachine.TestCase
TestRunLog.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_every_transition_leads_somewhere_the_table_names() -> None:
    """The table is total over what the log does: FINISHED has no way out but itself."""
    assert {state for state, _ in TRANSITIONS} == {
        RunState.OPEN, RunState.ENDING, RunState.BROKEN
    }
    assert TRANSITIONS[(RunState.BROKEN, Step.ADOPT)] is RunState.OPEN


def test_a_taken_first_write_creates_the_run_and_an_adopted_one_claims_it() -> None:
    log = RunLog(INFO, 1.0, RuntimeStats(), lambda failure: None)
    log.append(frame(0))
    first = log.take()
    assert isinstance(first[0], CreateRun) and isinstance(first[1], AppendEvents)
    log.committed()
    log.crashed()
    log.adopt(RunRecord(INFO, RunStatus.RUNNING, 1.0, event_count=1), [frame(0)])
    log.end(frame(1, terminal=True), RunStatus.ERROR, 2.0)
    claim, append, finish = log.take()
    assert claim == ClaimRun("r", 2)
    assert (append.first, append.epoch) == (1, 2)  # type: ignore[union-attr]  # an AppendEvents
    assert isinstance(finish, FinishRun) and (finish.event_count, finish.epoch) == (2, 2)


def test_a_lost_run_ends_its_feeds_with_the_reason_and_refuses_subscriptions() -> None:
    log = RunLog(INFO, 1.0, RuntimeStats(), lambda failure: None)
    subscriber = ListSubscriber(0, 10)
    log.subscribe(0, subscriber)
    log.lose(StorageFailed("disk full"))
    assert isinstance(subscriber.failure, RunLost) and "disk full" in str(subscriber.failure)
    with pytest.raises(RunLost, match="disk full"):
        log.subscribe(0, ListSubscriber(0, 10))
    log.found()
    log.subscribe(0, ListSubscriber(0, 10))

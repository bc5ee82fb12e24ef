"""The run log: one run's events from append to publication, as a synchronous state machine.

A `RunLog` owns a run's index counter, the frames appended and not yet taken by a commit
(`queued`), those taken and not yet durable (`in_flight`), the published `history`, the
subscribers' feeds, the terminal state, and the epoch its writes carry (the store's fence, see
`actors.store.base`). It imports no trio and does no I/O: the run actor (`actors.run`) drives it,
and the publisher (`actors.publisher`) takes its writes and tells it how the commit went. Every
method is a plain function, so nothing runs between taking a subscriber's snapshot and
registering its feed, or between adding a published batch to the history and pushing it to the
feeds: each subscriber gets every event exactly once, by construction, and no added `await` can
break that.

The states and the steps between them, `TRANSITIONS`:

    state      step         next       when
    OPEN       END          ENDING     the terminal event is appended (`end`)
    ENDING     PUBLISH_END  FINISHED   the terminal event is durable and published (`committed`)
    OPEN       FAIL         BROKEN     a commit failed (`failed`)
    ENDING     FAIL         BROKEN
    any but    CRASH        BROKEN     the actor crashed: what was queued goes (`crashed`)
     FINISHED
    BROKEN     FAIL         BROKEN     an in-flight commit failed after the crash
    BROKEN     PUBLISH_END  FINISHED   an in-flight commit carrying the end landed after the crash
    BROKEN     ADOPT        OPEN       the store's history replaces the log's (`adopt`)
    BROKEN     ADOPT_END    FINISHED   ... and it already ends

Events are appended in OPEN only; a BROKEN log hands nothing over for commit. A subscriber's feed
(`Subscriber`, see `actors.feed`) gets each published batch without waiting; one too full for a
batch is dropped, and its follower catches up from the history.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs

from actors.events import RunInfo, RunStatus
from actors.stats import RuntimeStats
from actors.store.base import (
    FIRST_EPOCH,
    AppendEvents,
    ClaimRun,
    CreateRun,
    FinishRun,
    RunRecord,
    StorageFailed,
    StoreError,
    Write,
)


class RunState(enum.Enum):
    OPEN = "open"
    ENDING = "ending"
    FINISHED = "finished"
    BROKEN = "broken"


class Step(enum.Enum):
    END = "end"
    PUBLISH_END = "publish the end"
    FAIL = "fail"
    CRASH = "crash"
    ADOPT = "adopt"
    ADOPT_END = "adopt an ended history"


OPEN, ENDING, FINISHED, BROKEN = RunState.OPEN, RunState.ENDING, RunState.FINISHED, RunState.BROKEN

TRANSITIONS: dict[tuple[RunState, Step], RunState] = {
    (OPEN, Step.END): ENDING,
    (ENDING, Step.PUBLISH_END): FINISHED,
    (OPEN, Step.FAIL): BROKEN,
    (ENDING, Step.FAIL): BROKEN,
    (OPEN, Step.CRASH): BROKEN,
    (ENDING, Step.CRASH): BROKEN,
    (BROKEN, Step.CRASH): BROKEN,
    (BROKEN, Step.FAIL): BROKEN,
    (BROKEN, Step.PUBLISH_END): FINISHED,
    (BROKEN, Step.ADOPT): OPEN,
    (BROKEN, Step.ADOPT_END): FINISHED,
}


class RunLogError(RuntimeError):
    """A step the log's state does not allow: a bug in its driver, never a client's doing."""


class RunLost(RuntimeError):
    """The run has no terminal event and the store cannot take one now: its events end here."""

    def __init__(self, run_id: str, why: str) -> None:
        super().__init__(f"run {run_id} is lost: {why}")
        self.run_id = run_id


class IndexBeyondRun(ValueError):
    def __init__(self, run_id: str, last_event_index: int, event_count: int) -> None:
        super().__init__(
            f"last_event_index {last_event_index} is beyond the last event of run {run_id}"
            f" (it has {event_count} events, indices 0..{event_count - 1})"
        )


class Subscriber(Protocol):
    def push(self, first: int, frames: list[str], *, last: bool = False) -> bool:
        """Take published frames from index `first`; False once it takes no more."""

    def close(self, failure: Exception | None = None) -> None: ...


@attrs.frozen
class Subscription:
    """What a subscriber found: `frames[i]` is the event of index `first + i`; `live` if its feed
    was registered (the run is not finished)."""

    status: RunStatus
    event_count: int
    first: int
    frames: Sequence[str]
    live: bool


class RunLog:
    # One per live run: without a __dict__, a live run holds 2-3 KiB less (hold, 2,000 runs).
    __slots__ = (
        "_claim", "_feeds", "_finish", "_finish_in_flight", "_on_failure", "created_at", "epoch",
        "failure", "finished_at", "history", "in_flight", "info", "lost", "next_index", "queued",
        "state", "stats", "status",
    )

    def __init__(
        self,
        info: RunInfo,
        created_at: float,
        stats: RuntimeStats,
        on_failure: Callable[[StoreError], None],
    ) -> None:
        """`on_failure` is called when a commit of the log's writes failed."""
        self.info = info
        self.created_at = created_at
        self.stats = stats
        self._on_failure = on_failure
        self.state = OPEN
        self.epoch = FIRST_EPOCH
        self.history: list[str] = []
        self.queued: list[str] = []
        self.in_flight: list[str] = []
        self.next_index = 0
        self.status = RunStatus.RUNNING
        self.finished_at: float | None = None
        self.failure: StoreError | None = None  # why the log is BROKEN, if a commit said so
        self.lost: StoreError | None = None  # the store cannot take the run's end (yet)
        self._finish: FinishRun | None = None  # the terminal event's write, once appended
        self._finish_in_flight: FinishRun | None = None  # ... once taken for commit
        self._claim: ClaimRun | None = None  # the first write after an adoption
        self._feeds: set[Subscriber] = set()

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def subscriber_count(self) -> int:
        return len(self._feeds)

    def record(self) -> RunRecord:
        """What the store would say of this run, with the published event count."""
        return RunRecord(
            self.info, self.status, self.created_at, self.finished_at, len(self.history), self.epoch
        )

    def _step(self, step: Step) -> None:
        next_state = TRANSITIONS.get((self.state, step))
        if next_state is None:
            raise RunLogError(f"run {self.run_id}: cannot {step.value} in state {self.state.name}")
        self.state = next_state

    # -- the run's side --------------------------------------------------------------------------

    def append(self, frame: str) -> bool:
        """Queue the frame of the event of index `next_index`; whether the queue was empty (the
        publisher is then to be told the run is ready)."""
        if self.state is not OPEN:
            raise self._refusal()
        self.next_index += 1
        self.queued.append(frame)
        return len(self.queued) == 1

    def end(self, frame: str, status: RunStatus, finished_at: float) -> bool:
        """`append` the run's terminal event; nothing may follow it."""
        ready = self.append(frame)
        self._step(Step.END)
        self._finish = FinishRun(self.run_id, status, finished_at, self.next_index, self.epoch)
        return ready

    def _refusal(self) -> Exception:
        if self.failure is not None:
            return self.failure  # nothing more until the run is recovered
        return RunLogError(f"run {self.run_id} takes no events in state {self.state.name}")

    def crashed(self) -> None:
        """The actor crashed: what was queued is not durable and goes with it, and nothing is
        taken for commit until `adopt`. In-flight writes still end in `committed` or
        `failed`."""
        if self.state is FINISHED:
            return
        self._step(Step.CRASH)
        self.queued = []
        self._finish = None

    def adopt(self, record: RunRecord | None, history: list[str]) -> None:
        """After `crashed` or `failed`: the store's `record` of the run (None if it never got
        there) and its `history` replace the log's, and what was queued goes. A run still running there is taken over for the next
        epoch: the log's first write then claims it (`ClaimRun`)."""
        if self.in_flight:
            raise RunLogError(f"run {self.run_id}: adopted with writes in flight")
        self.history = history
        self.next_index = len(history)
        self.queued = []
        self._finish = None
        self.failure = None
        if record is not None and record.status.finished:
            self.status = record.status
            self.finished_at = record.finished_at
            self._step(Step.ADOPT_END)
            return
        if record is not None:
            self.epoch = record.epoch + 1
            self._claim = ClaimRun(self.run_id, self.epoch)
        self._step(Step.ADOPT)

    # -- the publisher's side (`actors.publisher.PublishingRun`) ----------------------------------

    def take(self) -> list[Write]:
        """Hand over what is queued as writes; they are in flight until `committed` or
        `failed`. Nothing while BROKEN."""
        if self.state is BROKEN or not self.queued:
            return []
        frames = self.in_flight = self.queued
        self.queued = []
        first = self.next_index - len(frames)
        writes: list[Write] = [AppendEvents(self.run_id, first, frames, self.epoch)]
        if self._claim is not None:
            writes.insert(0, self._claim)
            self._claim = None
        elif first == 0:
            writes.insert(0, CreateRun(RunRecord(self.info, RunStatus.RUNNING, self.created_at)))
        if self._finish is not None:  # the terminal event is the last one appended
            writes.append(self._finish)
            self._finish_in_flight, self._finish = self._finish, None
        return writes

    def committed(self) -> None:
        """The writes last taken are durable: publish their frames to the history and to every
        feed."""
        frames, self.in_flight = self.in_flight, []
        if not frames:
            return
        first = len(self.history)
        stats = self.stats
        stats.events_appended += len(frames)
        if first == 0:
            stats.runs_started += 1
        finish, self._finish_in_flight = self._finish_in_flight, None
        last = finish is not None
        if finish is not None:
            stats.runs_finished[finish.status] += 1
            self.status = finish.status
            self.finished_at = finish.finished_at
            self._step(Step.PUBLISH_END)
        self.history += frames
        if self._feeds:
            self._feeds = {feed for feed in self._feeds if feed.push(first, frames, last=last)}

    def failed(self, failure: StoreError) -> None:
        """The writes last taken could not be made durable: nothing more is taken, and the
        driver is told (`on_failure`)."""
        self.in_flight = []
        self._finish_in_flight = None
        self.failure = failure
        self._step(Step.FAIL)
        self._on_failure(failure)

    # -- subscribers -----------------------------------------------------------------------------

    def subscribe(self, start: int, feed: Subscriber) -> Subscription:
        """The history from `start` (all of it once finished) and, for a run not finished, `feed`
        registered for what is published next. Raises IndexBeyondRun, RunLost."""
        count = len(self.history)
        if self.status.finished:
            return Subscription(self.status, count, 0, self.history, live=False)
        if self.lost is not None:
            raise RunLost(self.run_id, f"the store cannot record its end: {self.lost}")
        if start > count:
            raise IndexBeyondRun(self.run_id, start - 1, count)
        self._feeds.add(feed)
        return Subscription(self.status, count, start, self.history[start:], live=True)

    def lose(self, failure: StoreError) -> None:
        """The store cannot take the run's end: every feed ends with RunLost, and subscriptions
        are refused until the run is adopted again and ends."""
        self.lost = failure
        lost = RunLost(self.run_id, f"the store cannot record its end: {failure}")
        for feed in self._feeds:
            feed.close(lost)
        self._feeds.clear()

    def found(self) -> None:
        """The run's end landed after it was lost."""
        self.lost = None

    def close_feeds(self) -> None:
        """End every feed; their followers read the rest from the store."""
        for feed in self._feeds:
            feed.close()
        self._feeds.clear()

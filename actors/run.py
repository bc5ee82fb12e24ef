"""The run actor: one per run, driving its run log (`actors.runlog`) and its workflow body.

Its tasks (the mailbox loop and the body) live in the actor's own nursery. Appending an event
is: take the log's next index, encode once, queue the frame in the log and, if the log's queue
was empty, tell the runtime's publisher (see `actors.publisher`). The publisher takes each ready
run's log as one write, commits the writes of many runs at once and then has each log publish
its batch: add the frames to its history and push them, without waiting, into every
subscriber's bounded feed (`actors.feed`). So an event is published only once durable, and a
body that emits quickly runs ahead of the store by at most `MAX_QUEUED` events instead of
waiting a round trip per event. The run's own last events (`_emit_durably`) wait until they are
published; when no publisher runs (the runtime is shutting down) the run commits and publishes
them itself.

Subscribing and publishing are plain calls into the log, so a subscriber gets every event
exactly once: those before its snapshot in the backlog, the rest live. A feed too full for a
published batch is dropped and marked lagged; its follower reads what it missed from the
history and subscribes again (see `actors.follow`). A slow subscriber thus never blocks the run
or other subscribers, and never loses events.

If the actor itself crashes (a store failure, a bug in its own code), its supervisor starts
`recover`: the log drops what was queued and not durable before anything awaits, the durable
history is reloaded and adopted, and the run is closed with a terminal `WorkflowError` (reason
`storage` after a storage failure, else `crashed`), which its subscribers receive. The closing
writes claim the run for the next epoch in the same commit (see `actors.store.base`), so the
store refuses anything the crashed incarnation still had on its way. While the store cannot
write at all, the run's subscribers are told the run is lost (`RunLost`, naming the storage
error) and the close is tried again, every few seconds, until it lands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import attrs
import trio

from actors.actor import Mailbox, Reply, serve_mailbox
from actors.events import (
    TERMINAL_EVENTS,
    WORKFLOW_CANCELLED,
    WORKFLOW_COMPLETED,
    WORKFLOW_ERROR,
    WORKFLOW_STARTED,
    EventEncoder,
    RunInfo,
    RunStatus,
    encode_event,
    final_status,
)
from actors.feed import Feed
from actors.publisher import Publisher
from actors.runlog import IndexBeyondRun, RunLog, RunLost, RunState
from actors.store.base import (
    AppendEvents,
    ClaimRun,
    FinishRun,
    OwnershipLost,
    RunRecord,
    StorageFailed,
    Store,
    StoreError,
    Write,
)
from actors.workflows.catalog import WorkflowDefinition, WorkflowFailed

log = logging.getLogger(__name__)

DEFAULT_FEED_CAPACITY = 1024
MAX_QUEUED = 256  # events a body may emit ahead of the store before `emit` waits
YIELD_EVERY = 64  # a body emitting in a tight loop lets other tasks run after this many events
RUN_LEVEL_EVENTS = TERMINAL_EVENTS | {WORKFLOW_STARTED, WORKFLOW_CANCELLED}
DEFAULT_MAX_RUN_EVENTS = 1_000_000
CLOSING_EVENTS = 2  # the most a run appends after its body: WorkflowCancelled, WorkflowCompleted
SMALLEST_MAX_RUN_EVENTS = 1 + CLOSING_EVENTS  # WorkflowStarted and the closing events


class RunEventLimitReached(Exception):
    """A body's event refused: with it, the run's closing events could take the run past
    `max_run_events`. A body lets it propagate; the run ends with a `WorkflowError` naming the
    limit."""

    def __init__(self, max_run_events: int) -> None:
        super().__init__(
            f"the run would exceed {max_run_events} events, the server's limit per run"
            " (--max-run-events)"
        )


CLOSE_RETRY_FIRST = 0.5  # seconds before a run that could not be closed is tried again
CLOSE_RETRY_LAST = 5.0  # the longest wait between tries


@attrs.frozen
class Snapshot:
    """A run as one subscriber found it. `frames[i]` is the event of index `first + i`; `frames`
    is None when the history is to be read from the store. `feed` is None once the run is
    finished: nothing more will come."""

    run_id: str
    status: RunStatus
    event_count: int
    first: int
    frames: Sequence[str] | None
    feed: Feed | None


@attrs.frozen
class Subscribe:
    start: int
    reply: Reply[Snapshot]


@attrs.frozen
class Cancel:
    """Answered with whether this request cancels the run, and the run's status."""

    reason: str
    reply: Reply[tuple[bool, RunStatus]]


RunMessage = Subscribe | Cancel


def closing_writes(record: RunRecord, error: str, reason: str) -> list[Write]:
    """The writes that take a run over from the writer of its `record` and close it at its
    next index with a terminal `WorkflowError`."""
    epoch, index = record.epoch + 1, record.event_count
    run_id = record.info.run_id
    frame = encode_event(record.info, index, WORKFLOW_ERROR, {"error": error, "reason": reason})
    return [
        ClaimRun(run_id, epoch),
        AppendEvents(run_id, index, [frame], epoch),
        FinishRun(run_id, RunStatus.ERROR, time.time(), index + 1, epoch),
    ]


def crash_fields(crash: Exception) -> dict[str, Any]:
    """The `WorkflowError` of a run whose actor crashed with `crash`."""
    if isinstance(crash, StorageFailed):
        return {"error": f"storage failed: {crash}", "reason": "storage"}
    if isinstance(crash, OwnershipLost):
        return {"error": f"interrupted: {crash}", "reason": "interrupted"}
    return {"error": f"run actor crashed: {type(crash).__name__}: {crash}", "reason": "crashed"}


class RunActor:
    def __init__(
        self,
        info: RunInfo,
        workflow: WorkflowDefinition,
        store: Store,
        publisher: Publisher,
        *,
        feed_capacity: int = DEFAULT_FEED_CAPACITY,
        max_run_events: int = DEFAULT_MAX_RUN_EVENTS,
    ) -> None:
        self.info = info
        self._encoder = EventEncoder(info)
        self.workflow = workflow
        self.store = store
        self.publisher = publisher
        self.feed_capacity = feed_capacity
        self.max_run_events = max_run_events
        self.mailbox: Mailbox[RunMessage] = Mailbox.open(f"run {info.run_id}")
        self._body_scope = trio.CancelScope()
        self._cancel_reason: str | None = None
        self.log = RunLog(info, time.time(), publisher.stats, self._failed)

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def history(self) -> list[str]:
        return self.log.history

    @property
    def status(self) -> RunStatus:
        return self.log.status

    @property
    def subscriber_count(self) -> int:
        return self.log.subscriber_count

    def record(self) -> RunRecord:
        """What the store would say of this run, with the live event count."""
        return self.log.record()

    # -- incarnations started by the supervisor ------------------------------------------------

    async def run(self) -> None:
        """First incarnation: run the workflow body to its terminal event."""
        await self._serving_mailbox(self._execute)

    async def recover(self, crash: Exception) -> None:
        """After a crash: close the run from its durable history with a terminal error."""
        await self._serving_mailbox(partial(self._end_after_crash, crash))

    async def _serving_mailbox(self, work: Callable[[], Awaitable[None]]) -> None:
        """Serve the mailbox while `work` runs. Then the mailbox takes no more messages: its task
        answers those queued from the final state and returns (in trio, a task that returns
        costs half as much as one cancelled), and the run refuses everything from then on."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_mailbox, self.mailbox, self._handle)
            await work()
            self.mailbox.finish()
        self.abandon()

    async def give_up(self, crash: Exception) -> None:
        """The supervisor stopped restarting this run: record its end if the store still lets us,
        then refuse everything (followers finish from the store)."""
        try:
            await self._end_after_crash(crash)
        except Exception:
            log.exception("run %s: could not record the end of a given-up run", self.run_id)
        self.abandon()

    async def _end_after_crash(self, crash: Exception) -> None:
        """Adopt the durable history; unless it already ends, close it with a terminal error.
        While the store cannot write (or, in a shared store, takes no run of this node until it
        has its lease again), tell the subscribers the run is lost and try again."""
        self.log.crashed()
        while self.log.in_flight and self.publisher.running:
            await self.publisher.round_ended()  # the store must not change under the reload
        retry = CLOSE_RETRY_FIRST
        while self.log.state is not RunState.FINISHED:
            try:
                await self._close_from_store(crash)
            except (StorageFailed, OwnershipLost) as failure:
                if self.log.lost is None:
                    log.error("run %s is lost until the store takes its end: %s", self.run_id, failure)
                self.log.lose(failure)  # the failed commit left the log BROKEN: adopt again
                await trio.sleep(retry)
                retry = min(retry * 2, CLOSE_RETRY_LAST)
        self.log.found()

    async def _close_from_store(self, crash: Exception) -> None:
        """The store is the truth after a crash: it may hold events never published (the commit
        succeeded but its acknowledgement was lost), the terminal one included."""
        record = await self.store.get_run(self.run_id)
        count = 0 if record is None else record.event_count
        history = self.log.history
        if count != len(history):
            history = await self.store.read_events(self.run_id, 0, count)
        self.log.adopt(record, history)
        if self.log.state is RunState.FINISHED:
            return
        if not self.log.history:
            self._append(WORKFLOW_STARTED, {})
        await self._emit_durably(WORKFLOW_ERROR, crash_fields(crash))

    # -- the body ----------------------------------------------------------------------------

    async def _execute(self) -> None:
        self._append(WORKFLOW_STARTED, {})
        kind, fields = WORKFLOW_ERROR, {}
        try:
            with self._body_scope:
                fields = await self.workflow.execute(self.info, self._emit_step_event)
                kind = WORKFLOW_COMPLETED
        except (WorkflowFailed, RunEventLimitReached) as failure:
            fields = {"error": str(failure)}
        except Exception as error:
            log.warning("run %s: workflow body raised", self.run_id, exc_info=error)
            fields = {"error": f"{type(error).__name__}: {error}"}
        if self.log.failure is not None:
            # The actor could not record an event, whatever the body made of that: this is a
            # crash of the actor, for its supervisor to recover, not a failure of the body.
            raise self.log.failure
        if self._body_scope.cancelled_caught:
            reason = self._cancel_reason or "cancelled"
            self._append(WORKFLOW_CANCELLED, {"reason": reason})
            kind, fields = WORKFLOW_COMPLETED, {"status": "cancelled", "reason": reason}
        await self._emit_durably(kind, fields)

    async def _emit_step_event(self, kind: str, fields: dict[str, Any]) -> None:
        """The `emit` a workflow body gets (the run's own start and end events are the actor's):
        queue an event for the publisher; wait only while the body is `MAX_QUEUED` ahead.

        Yielding to the scheduler on every event would cost more than the rest of the append,
        so a body emitting in a tight loop yields every `YIELD_EVERY` events (and its events
        reach the publisher in batches); cancellation is still seen at every emit. An event
        that would leave no room for the run's closing events within `max_run_events` is
        refused with RunEventLimitReached (and so is every one after it)."""
        if kind in RUN_LEVEL_EVENTS:
            raise ValueError(f"a workflow body cannot emit {kind}; the run emits it")
        log_ = self.log
        if log_.next_index + 1 + CLOSING_EVENTS > self.max_run_events:
            raise RunEventLimitReached(self.max_run_events)
        self._append(kind, fields)
        queued = len(log_.queued)
        if queued >= MAX_QUEUED or not self.publisher.running:
            await self._until_published(log_.next_index)
        elif queued % YIELD_EVERY == 0:
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()

    async def _emit_durably(self, kind: str, fields: dict[str, Any]) -> None:
        """Queue an event and return once it (and everything before it) is published."""
        self._append(kind, fields)
        await self._until_published(self.log.next_index)

    async def _until_published(self, count: int) -> None:
        """Wait for the publisher to publish the first `count` events, or publish them ourselves
        once no publisher runs; raises the store's failure."""
        log_ = self.log
        while len(log_.history) < count and self.publisher.running and log_.failure is None:
            await self.publisher.round_ended()
        if log_.failure is not None:
            raise log_.failure
        if len(log_.history) < count:
            await self._flush()

    def _append(self, kind: str, fields: dict[str, Any]) -> None:
        log_ = self.log
        frame = self._encoder.encode(log_.next_index, kind, fields)
        if kind in TERMINAL_EVENTS:
            status = final_status(kind, cancelled=self._body_scope.cancelled_caught)
            assert status is not None
            ready = log_.end(frame, status, time.time())
        else:
            ready = log_.append(frame)
        if ready:  # otherwise the publisher has this run among its ready ones
            self.publisher.ready(log_)

    def _failed(self, failure: StoreError) -> None:
        """A commit of the log's writes failed: the body (which may be waiting on something else
        for hours) is cancelled; the run actor then crashes, and its supervisor recovers the
        run from the store."""
        self._body_scope.cancel()

    async def _flush(self) -> None:
        """Commit and publish everything queued, in order, when no publisher runs; raises the
        store's failure. Only the body (or the recovery) calls it: one flush at a time."""
        log_ = self.log
        while log_.queued and log_.failure is None:
            with trio.CancelScope(shield=True):
                await self.publisher.commit_alone(log_, log_.take())
        if log_.failure is not None:
            raise log_.failure

    # -- the mailbox -------------------------------------------------------------------------

    async def _handle(self, message: RunMessage) -> None:
        self._answer(message)

    def _answer(self, message: RunMessage) -> None:
        if isinstance(message, Subscribe):
            try:
                snapshot = self._subscribe(message.start)
            except (IndexBeyondRun, RunLost) as refused:
                message.reply.fail(refused)  # the asker's to handle: the run carries on
            else:
                message.reply.set(snapshot)
        elif isinstance(message, Cancel):
            message.reply.set((self._cancel(message.reason), self.status))
        else:
            raise TypeError(f"run actor got a message it does not understand: {message!r}")

    def subscribe_before_start(self) -> Snapshot:
        """A subscription from the first event, for whoever creates the actor, before it runs."""
        return self._subscribe(0)

    def _subscribe(self, start: int) -> Snapshot:
        feed = Feed(self.feed_capacity)
        found = self.log.subscribe(start, feed)
        return Snapshot(
            self.run_id, found.status, found.event_count, found.first, found.frames,
            feed if found.live else None,
        )

    def _cancel(self, reason: str) -> bool:
        if self.status.finished or self._body_scope.cancel_called:
            return False
        self._cancel_reason = reason
        self._body_scope.cancel()
        return True

    def abandon(self) -> None:
        """Refuse further messages and end every feed; followers then read the store. Also what
        the supervisor's exit hook calls when it gives a crashing run up."""
        self.mailbox.close()
        self.log.close_feeds()

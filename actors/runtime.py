"""`open_runtime`: the public entry point of the actor runtime.

It closes the runs a previous process left running (each gets a terminal `WorkflowError` with
reason `interrupted` at its next index), then opens the root nursery holding the publisher (which
commits and publishes every run's events), the runs supervisor and the registry, and yields a
`Runtime`: start runs, follow them, cancel them, list them. On exit it shuts down in order: refuse
new runs, give running runs `shutdown_grace` seconds to finish, cancel the rest (each records
`WorkflowCancelled` and `WorkflowCompleted`), wait for their final events to be durable, and only
then cancel what is left.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TypeVar

import attrs
import trio

from actors.actor import ActorGone, Address, Reply
from actors.events import RunInfo, RunStatus
from actors.excerpt import excerpt
from actors.follow import Follow, Resubscribe
from actors.publisher import Publisher
from actors.registry import (
    CancelAll,
    Lookup,
    Registry,
    RegistryClosed,
    RegistryMessage,
    StartRun,
    StopAccepting,
)
from actors.run import (
    DEFAULT_FEED_CAPACITY,
    RunActor,
    DEFAULT_MAX_RUN_EVENTS,
    Cancel,
    RunMessage,
    Snapshot,
    Subscribe,
    closing_writes,
)
from actors.runlog import IndexBeyondRun
from actors.stats import RuntimeStats
from actors.store.base import (
    CancelRequested,
    CheckWritable,
    LeaseLost,
    Notice,
    OwnershipLost,
    RunCursor,
    RunRecord,
    SharedStore,
    StorageFailed,
    Store,
    StoreError,
    WriteRefused,
)
from actors.supervisor import ChildSpec, Restart, Supervisor
from actors.timer import Timer, installed
from actors.workflows.catalog import WorkflowCatalog, WorkflowDefinition

log = logging.getLogger(__name__)
T = TypeVar("T")

SHUTDOWN_REASON = "server shutting down"
CANCELLED_RUNS_DEADLINE = 10.0  # seconds for cancelled runs to record their end at shutdown


class UnknownRun(LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run {excerpt(run_id)} not found")
        self.run_id = run_id


class RuntimeClosing(RuntimeError):
    def __init__(self) -> None:
        super().__init__("the server is shutting down and starts no new runs")


class StoreUnavailable(RuntimeError):
    """New runs are refused while the store cannot write (or, in a shared store, while this
    node holds no live lease)."""

    def __init__(self, failure: StoreError) -> None:
        super().__init__(f"the store cannot write, so no new run starts: {failure}")


@attrs.frozen
class CancelOutcome:
    run_id: str
    cancelling: bool  # False: the run had already finished (or was being cancelled)
    status: RunStatus


class Runtime:
    def __init__(self, store: Store, catalog: WorkflowCatalog, registry: Registry) -> None:
        self.store = store
        self.catalog = catalog
        self._registry = registry
        self.closing = False

    @property
    def live_runs(self) -> int:
        return len(self._registry.live)

    @property
    def live_run_ids(self) -> list[str]:
        return list(self._registry.live)

    @property
    def storage_failure(self) -> StorageFailed | None:
        """The store's error while its writes fail (or, for a shared store, while this node
        cannot reach it); None once a write has landed again."""
        failure = self._registry.publisher.storage_failure
        if failure is None and isinstance(self.store, SharedStore) and self.store.failure:
            return StorageFailed(self.store.failure)
        return failure

    @property
    def stats(self) -> RuntimeStats:
        return self._registry.stats

    @property
    def live_subscribers(self) -> int:
        """Live feeds of running runs (a follower of a finished run holds none)."""
        return sum(actor.subscriber_count for actor in self._registry.live.values())

    async def start(
        self,
        workflow_id: str,
        message: str = "",
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> RunInfo:
        """Start a run of `workflow_id`; raises UnknownWorkflow, RuntimeClosing."""
        return await self.start_workflow(
            self.catalog.get(workflow_id), message, session_id, user_id
        )

    async def start_and_follow(
        self,
        workflow_id: str,
        message: str = "",
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> Follow:
        """`start`, then `follow` from the first event, in one request: the subscription is
        taken when the run is created, so a run that ends at once is still followed live
        instead of read back from the store."""
        _, snapshot = await self._start(
            self.catalog.get(workflow_id), message, session_id, user_id, subscribe=True
        )
        assert snapshot is not None
        return self._following(snapshot, 0)

    async def start_workflow(
        self,
        workflow: WorkflowDefinition,
        message: str = "",
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> RunInfo:
        """Start a run of a workflow that is not in the catalog (a graph run, made per request);
        raises RuntimeClosing."""
        info, _ = await self._start(workflow, message, session_id, user_id, subscribe=False)
        return info

    async def _start(
        self,
        workflow: WorkflowDefinition,
        message: str,
        session_id: str | None,
        user_id: str | None,
        *,
        subscribe: bool,
    ) -> tuple[RunInfo, Snapshot | None]:
        if self.closing:
            raise RuntimeClosing()
        await self._check_writable()
        info = RunInfo(
            run_id=str(uuid.uuid4()),
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            session_id=session_id or str(uuid.uuid4()),
            user_id=user_id,
            message=message,
        )
        snapshot: Snapshot | None = await self._ask_registry(
            lambda reply: StartRun(info, workflow, subscribe, reply)
        )
        return info, snapshot

    async def _check_writable(self) -> None:
        """While the store's writes fail, a start first writes a little; it is refused with
        StoreUnavailable unless that lands (and then the store counts as writable again)."""
        publisher = self._registry.publisher
        if self.storage_failure is None:
            return
        try:
            await publisher.commit([CheckWritable(time.time())])
        except (StorageFailed, OwnershipLost) as failure:
            raise StoreUnavailable(failure) from None

    async def _ask_registry(self, make: Callable[[Reply[T]], RegistryMessage]) -> T:
        """Ask the registry; once it is closed (shutdown began, or the runtime has exited) every
        request is refused with RuntimeClosing instead of waiting."""
        try:
            return await self._registry.address.ask(make)
        except (ActorGone, RegistryClosed):
            raise RuntimeClosing() from None

    async def follow(self, run_id: str, start: int = 0, *, replay_in_full: bool = True) -> Follow:
        """Subscribe to `run_id` from event `start`. A finished run replays in full (`start` is
        ignored) unless `replay_in_full` is False: then it too is followed from `start`, which
        may be its event count (nothing is owed) and no more. Raises UnknownRun,
        IndexBeyondRun."""
        snapshot = await self._subscribe(run_id, start)
        if not snapshot.status.finished:
            return self._following(snapshot, start)
        if replay_in_full:
            return self._following(snapshot, 0)
        if start > snapshot.event_count:
            raise IndexBeyondRun(run_id, start - 1, snapshot.event_count)
        return self._following(snapshot, start)

    def _following(self, snapshot: Snapshot, start: int) -> Follow:
        self.stats.subscriptions += 1
        return Follow(snapshot, start, self._resubscriber(snapshot.run_id), self.store.read_events)

    def _resubscriber(self, run_id: str) -> Resubscribe:
        """How a follower of `run_id` subscribes again from its cursor."""
        return partial(self._subscribe, run_id)

    async def _subscribe(self, run_id: str, start: int) -> Snapshot:
        address: Address[RunMessage] | None = await self._ask_registry(
            lambda reply: Lookup(run_id, reply)
        )
        if address is not None:
            try:
                return await address.ask(lambda reply: Subscribe(start, reply))
            except ActorGone:
                pass  # it finished meanwhile: the store has all of it
        record = await self.store.get_run(run_id)
        if record is None:
            raise UnknownRun(run_id)
        if isinstance(self.store, SharedStore) and not record.status.finished:
            return await self._watch(self.store, record, start)
        count = record.event_count
        if not record.status.finished:
            count = await self.store.count_events(run_id)
            if start > count:
                raise IndexBeyondRun(run_id, start - 1, count)
        return Snapshot(run_id, record.status, count, 0, None, None)

    async def _watch(self, store: SharedStore, record: RunRecord, start: int) -> Snapshot:
        """A run another node holds: its live events through the store, subscribed before the
        record is read again (the history up to that count comes from the store)."""
        run_id = record.info.run_id
        feed = await store.watch(run_id, self._registry.feed_capacity)
        try:
            found = await self.store.get_run(run_id)
            assert found is not None  # a run's record is never removed
            if start > found.event_count:
                raise IndexBeyondRun(run_id, start - 1, found.event_count)
        except BaseException:
            feed.close()
            raise
        if found.status.finished:
            feed.close()
            return Snapshot(run_id, found.status, found.event_count, 0, None, None)
        return Snapshot(run_id, found.status, found.event_count, 0, None, feed)

    async def cancel(self, run_id: str, reason: str = "cancelled by request") -> CancelOutcome:
        """Ask a run to stop; it ends with `WorkflowCancelled` then `WorkflowCompleted`. A run
        another node of a shared store holds is asked through the store."""
        outcome = await self.cancel_here(run_id, reason)
        if outcome is not None:
            return outcome
        record = await self.store.get_run(run_id)
        if record is None:
            raise UnknownRun(run_id)
        if isinstance(self.store, SharedStore) and not record.status.finished:
            cancelling = await self.store.request_cancel(run_id, reason)
            return CancelOutcome(run_id, cancelling, record.status)
        return CancelOutcome(run_id, False, record.status)

    async def cancel_here(self, run_id: str, reason: str) -> CancelOutcome | None:
        """Cancel `run_id` if a run actor of this node holds it; None if none does."""
        address: Address[RunMessage] | None = await self._ask_registry(
            lambda reply: Lookup(run_id, reply)
        )
        if address is None:
            return None
        try:
            answer: tuple[bool, RunStatus] = await address.ask(lambda reply: Cancel(reason, reply))
        except ActorGone:
            return None
        return CancelOutcome(run_id, *answer)

    async def cancel_all(self, reason: str) -> int:
        """Cancel every run this node holds; how many."""
        return await self._ask_registry(lambda reply: CancelAll(reason, reply))

    def _live_record(self, actor: RunActor) -> RunRecord:
        record = actor.record()
        if isinstance(self.store, SharedStore):
            return attrs.evolve(record, node=self.store.node_id)
        return record

    async def get_run(self, run_id: str) -> RunRecord:
        actor = self._registry.live.get(run_id)
        if actor is not None:
            return self._live_record(actor)
        record = await self.store.get_run(run_id)
        if record is None:
            raise UnknownRun(run_id)
        return record

    async def history(self, run_id: str) -> tuple[RunRecord, list[str]]:
        """The run and every frame it has so far (a live run's from memory). Raises UnknownRun."""
        actor = self._registry.live.get(run_id)
        if actor is not None:
            return self._live_record(actor), list(actor.history)
        record = await self.store.get_run(run_id)
        if record is None:
            raise UnknownRun(run_id)
        count = record.event_count
        if not record.status.finished:
            count = await self.store.count_events(run_id)
        return record, await self.store.read_events(run_id, 0, count)

    async def list_runs(
        self,
        limit: int = 100,
        status: RunStatus | None = None,
        *,
        workflow_id: str | None = None,
        run_id_prefix: str | None = None,
        before: RunCursor | None = None,
    ) -> list[RunRecord]:
        """A page of the store's runs, newest first, as `Store.list_runs` filters it; live runs
        report their current event count."""
        records = await self.store.list_runs(
            limit, status, workflow_id=workflow_id, run_id_prefix=run_id_prefix, before=before
        )
        live = self._registry.live
        return [self._live_record(live[r.info.run_id]) if r.info.run_id in live else r
                for r in records]

    async def count_runs(self) -> dict[RunStatus, int]:
        """The store's runs by status, every status included."""
        return await self.store.count_runs()

    async def shutdown(self, grace: float) -> None:
        self.closing = True
        try:
            await self._ask_registry(StopAccepting)
        except RuntimeClosing:
            return  # shut down already
        with trio.move_on_after(grace):
            await self._registry.wait_until_idle()
        if self._registry.live:
            count = await self.cancel_all(SHUTDOWN_REASON)
            log.info("shutdown: cancelled %d running runs", count)
        with trio.move_on_after(CANCELLED_RUNS_DEADLINE):
            await self._registry.wait_until_idle()


async def close_interrupted_runs(store: Store) -> int:
    """Give each run a previous process left RUNNING (in a shared store: each run whose owner's
    lease is gone) its terminal event at the store's next index for it, taking it over from the
    writer that left it; returns how many. A run another node closes first is left to it.
    Raises StorageFailed when the store cannot write."""
    closed = 0
    shared = isinstance(store, SharedStore)
    error = (
        "interrupted: the node running it stopped or lost its lease" if shared
        else "interrupted: the server stopped while this run was running"
    )
    for record in await store.unfinished_runs():
        try:
            await store.commit(closing_writes(record, error=error, reason="interrupted"))
        except WriteRefused:
            continue  # another node took it over first, or its writer came back
        closed += 1
    if closed:
        log.info("closed %d interrupted runs", closed)
    return closed


async def sweep_orphaned_runs(store: SharedStore) -> None:
    """Every node of a shared store closes the runs whose owner's lease is gone, every
    `sweep_period` seconds (jittered, so that nodes spread their sweeps)."""
    while True:
        await trio.sleep(store.sweep_period * random.uniform(0.5, 1.0))
        try:
            await close_interrupted_runs(store)
        except StorageFailed as failure:
            log.warning("could not sweep for interrupted runs: %s", failure)


async def heed_notices(store: SharedStore, runtime: Runtime) -> None:
    """Act on what the store tells this node (until the runtime closes)."""
    async for notice in store.notices():
        try:
            await heed(notice, store, runtime)
        except RuntimeClosing:
            return


async def heed(notice: Notice, store: SharedStore, runtime: Runtime) -> None:
    """Cancel the runs other nodes asked this one to cancel, also those asked for while it could
    not hear; when its lease was lost, stop every run it holds (their writes are refused; each
    is closed)."""
    if isinstance(notice, LeaseLost):
        log.error("%s: stopping its %d runs", notice.why, runtime.live_runs)
        await runtime.cancel_all(notice.why)
        return
    if isinstance(notice, CancelRequested):
        requested = {notice.run_id: notice.reason}
    else:
        try:
            requested = await store.requested_cancels(runtime.live_run_ids)
        except StorageFailed as failure:
            log.warning("could not read the cancel requests of this node's runs: %s", failure)
            return
    for run_id, reason in requested.items():
        await runtime.cancel_here(run_id, reason)


@asynccontextmanager
async def open_runtime(
    store: Store,
    catalog: WorkflowCatalog,
    *,
    feed_capacity: int = DEFAULT_FEED_CAPACITY,
    shutdown_grace: float = 0.0,
    max_run_events: int = DEFAULT_MAX_RUN_EVENTS,
) -> AsyncIterator[Runtime]:
    try:
        await close_interrupted_runs(store)
    except StorageFailed as failure:
        # Served all the same: what clients saw is durable, and the next start closes them.
        log.error("could not close the runs a previous process left running: %s", failure)
        storage_failure: StorageFailed | None = failure
    else:
        storage_failure = None
    registry: Registry | None = None
    timer = Timer()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(timer.run)
            publisher = Publisher(store, RuntimeStats())
            publisher.storage_failure = storage_failure
            await nursery.start(publisher.run)
            runs = Supervisor(nursery)
            registry = Registry(
                store, publisher, runs, feed_capacity=feed_capacity, max_run_events=max_run_events
            )
            root = Supervisor(nursery, intensity=3, period=5.0)
            with installed(timer):  # for the registry, and so for the runs it starts
                root.start_child(ChildSpec("registry", registry.run, restart=Restart.PERMANENT))
            runtime = Runtime(store, catalog, registry)
            if isinstance(store, SharedStore):
                nursery.start_soon(sweep_orphaned_runs, store)
                nursery.start_soon(heed_notices, store, runtime)
            try:
                yield runtime
            finally:
                with trio.CancelScope(shield=True):
                    await runtime.shutdown(shutdown_grace)
                nursery.cancel_scope.cancel()
    finally:
        if registry is not None:
            registry.mailbox.close()  # whatever is still queued, or comes later, is refused
